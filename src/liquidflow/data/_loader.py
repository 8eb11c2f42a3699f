"""Preprocessing fitted on the training split, padding with masks, and the torch Dataset/DataLoader."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ._series import IrregularSeries

IGNORE_INDEX = -100  # padded per-step class labels (torch's cross-entropy default ignore_index)


@dataclass
class Preprocessor:
    """Missing-value handling and normalisation statistics, fitted on the training split only.

    ``transform`` forward-fills missing readings (NaN) with the last observed value of the same
    sequence (``forward_fill=True``), fills what is left (leading gaps, or everything when forward
    fill is off) with the training mean, and appends a 0/1 indicator channel ``<name>_missing`` for
    every feature that had missing readings in the training split (``indicators=True``).

    ``input_mean``/``input_std`` are the statistics for every model input channel (features from the
    observed training readings; indicators 0 and 1): store them in the model with
    ``model.set_normalization(prep.input_mean, prep.input_std)`` so it normalises raw inputs itself.
    """

    feature_names: list[str]
    mean: np.ndarray
    std: np.ndarray
    forward_fill: bool = True
    indicators: bool = True
    indicator_features: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, train: IrregularSeries, forward_fill: bool = True, indicators: bool = True) -> Preprocessor:
        allv = np.concatenate(train.values)  # (sum T, F)
        observed = ~np.isnan(allv)
        empty = [n for n, k in zip(train.feature_names, observed.sum(0), strict=True) if k == 0]
        if empty:
            raise ValueError(f"feature(s) {empty} have no observed value in the training split; drop them")
        mean = np.nanmean(allv, axis=0)
        std = np.nanstd(allv, axis=0)
        std = np.where(std > 1e-8, std, 1.0)
        ind = [n for n, miss in zip(train.feature_names, (~observed).any(0), strict=True) if miss] if indicators else []
        return cls(list(train.feature_names), mean, std, forward_fill, indicators, ind)

    @property
    def input_names(self) -> list[str]:
        return list(self.feature_names) + [f"{n}_missing" for n in self.indicator_features]

    @property
    def input_mean(self) -> np.ndarray:
        return np.concatenate([self.mean, np.zeros(len(self.indicator_features))])

    @property
    def input_std(self) -> np.ndarray:
        return np.concatenate([self.std, np.ones(len(self.indicator_features))])

    def transform(self, series: IrregularSeries) -> IrregularSeries:
        """Filled values (no NaN left) plus indicator channels; everything else unchanged."""
        if list(series.feature_names) != self.feature_names:
            raise ValueError(
                f"series has features {series.feature_names}; the preprocessor was fitted on {self.feature_names}"
            )
        cols = [self.feature_names.index(n) for n in self.indicator_features]
        out = []
        for v in series.values:
            missing = np.isnan(v)
            x = forward_fill(v) if self.forward_fill else v.copy()
            x = np.where(np.isnan(x), self.mean[None, :], x)
            if cols:
                x = np.concatenate([x, missing[:, cols].astype(np.float64)], axis=1)
            out.append(x)
        return replace(series, values=out, feature_names=self.input_names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "mean": [float(m) for m in self.mean],
            "std": [float(s) for s in self.std],
            "forward_fill": self.forward_fill,
            "indicators": self.indicators,
            "indicator_features": list(self.indicator_features),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        return cls(
            list(d["feature_names"]),
            np.asarray(d["mean"], dtype=np.float64),
            np.asarray(d["std"], dtype=np.float64),
            bool(d["forward_fill"]),
            bool(d["indicators"]),
            list(d["indicator_features"]),
        )


def forward_fill(values: np.ndarray) -> np.ndarray:
    """Replace each NaN in (T, F) by the last observed value above it in the same column (leading NaN stay)."""
    v = np.asarray(values, dtype=np.float64)
    T = v.shape[0]
    idx = np.where(~np.isnan(v), np.arange(T)[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = v[idx, np.arange(v.shape[1])[None, :]]
    return out


class SeriesDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """A torch Dataset over an IrregularSeries without NaN (apply a Preprocessor first).

    Items are dicts: ``x`` (T, F) float32, ``timespans`` (T,) float32, ``y`` (label tensor or absent),
    ``index`` (position in the series). ``task`` decides the label dtype: class indices (int64) for
    classification tasks, float32 with a trailing output axis for regression/forecast.
    """

    def __init__(self, series: IrregularSeries, task: str | None = None) -> None:
        for i, v in enumerate(series.values):
            if np.isnan(v).any():
                raise ValueError(
                    f"sequence {i} (entity {series.entities[i]!r}) has missing values (NaN); "
                    "fill them with a Preprocessor (forward fill + indicators) first"
                )
        if task is not None and series.labels is not None:
            per_step = task in ("step_classification", "forecast")
            if per_step != (series.label_level == "step"):
                raise ValueError(
                    f"task {task!r} needs {'per-step' if per_step else 'per-sequence'} labels; "
                    f"the series has label_level={series.label_level!r}"
                )
        self.series = series
        self.task = task
        self.per_step = series.label_level == "step"
        self.x = [torch.as_tensor(v, dtype=torch.float32) for v in series.values]
        self.ts = [torch.as_tensor(s, dtype=torch.float32) for s in series.timespans]
        self.y: list[torch.Tensor] | None = None
        if series.labels is not None:
            classify = task in ("classification", "step_classification") if task else series.classes is not None
            if classify:
                self.y = [torch.as_tensor(np.asarray(y), dtype=torch.int64) for y in series.labels]
            else:
                ys = []
                for y in series.labels:
                    t = torch.as_tensor(np.asarray(y, dtype=np.float64), dtype=torch.float32)
                    if series.label_level == "step" and t.dim() == 1:
                        t = t[:, None]
                    elif series.label_level == "sequence" and t.dim() == 0:
                        t = t[None]
                    ys.append(t)
                self.y = ys

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"x": self.x[i], "timespans": self.ts[i], "index": torch.tensor(i)}
        if self.y is not None:
            item["y"] = self.y[i]
        return item


def collate_series(
    items: Sequence[dict[str, torch.Tensor]], pad_to: int | None = None, per_step: bool | None = None
) -> dict[str, torch.Tensor]:
    """Pad a list of items to the longest (or ``pad_to``) length; padding is marked False in ``mask``.

    Padded steps hold x = 0, timespans = 1, per-step class labels = -100 (ignored by the loss),
    per-step real targets = 0.
    """
    T = max(int(it["x"].shape[0]) for it in items)
    if pad_to is not None:
        if pad_to < T:
            raise ValueError(f"pad_to={pad_to} is shorter than the longest sequence in the batch ({T} steps)")
        T = pad_to
    B, F = len(items), int(items[0]["x"].shape[1])
    x = torch.zeros(B, T, F)
    ts = torch.ones(B, T)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b, it in enumerate(items):
        n = it["x"].shape[0]
        x[b, :n] = it["x"]
        ts[b, :n] = it["timespans"]
        mask[b, :n] = True
    out = {"x": x, "timespans": ts, "mask": mask, "index": torch.stack([it["index"] for it in items])}
    if "y" in items[0]:
        ys = [it["y"] for it in items]
        if per_step is None:  # guess: one label per step in every item
            per_step = all(y.dim() >= 1 and y.shape[0] == it["x"].shape[0] for y, it in zip(ys, items, strict=True))
        if per_step:
            fill = IGNORE_INDEX if ys[0].dtype == torch.int64 else 0.0
            y = torch.full((B, T, *ys[0].shape[1:]), fill, dtype=ys[0].dtype)
            for b, yb in enumerate(ys):
                y[b, : yb.shape[0]] = yb
            out["y"] = y
        else:
            out["y"] = torch.stack(ys)
    return out


class ShardedSampler(torch.utils.data.Sampler[int]):
    """Index order for training: seeded per epoch, and sharded across processes under DDP.

    The order depends only on (seed, epoch), so a resumed run sees the same batches as an
    uninterrupted one (Lightning calls ``set_epoch`` each epoch). When torch.distributed is
    initialised with W processes, process r takes positions r, r + W, r + 2W ... of that order
    (padded by wrapping so every process gets the same count): a global batch of W x B equals a
    single-process batch of W*B. Use it with ``Trainer(use_distributed_sampler=False)``.
    """

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0) -> None:
        self.n, self.shuffle, self.seed, self.epoch = int(n), bool(shuffle), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @staticmethod
    def _world() -> tuple[int, int]:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self):  # type: ignore[no-untyped-def]
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        rank, world = self._world()
        if world > 1:
            total = -(-self.n // world) * world
            order = (order * (total // max(self.n, 1) + 1))[:total]
            order = order[rank::world]
        return iter(order)

    def __len__(self) -> int:
        _, world = self._world()
        return -(-self.n // world)


def make_loader(
    dataset: SeriesDataset,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    pad_to: int | None = None,
    num_workers: int = 0,
    drop_last: bool = False,
    shard: bool = False,
) -> torch.utils.data.DataLoader:  # type: ignore[type-arg]
    """A DataLoader with padding collation; shuffling is seeded per epoch (see ShardedSampler).

    ``shard=True``: under DDP each process reads its share (``ShardedSampler``); the training loop
    uses it with Lightning's ``use_distributed_sampler=False``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    collate = functools.partial(collate_series, pad_to=pad_to, per_step=dataset.per_step)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ShardedSampler(len(dataset), shuffle, seed)
        if shard
        else (ShardedSampler(len(dataset), True, seed) if shuffle else None),
        collate_fn=collate,
        num_workers=num_workers,
        drop_last=drop_last,
    )
