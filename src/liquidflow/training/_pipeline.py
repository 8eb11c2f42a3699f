"""From a DataConfig to train/val/test datasets, and back again from a checkpoint's metadata.

The pipeline is: read (synthetic or file) -> optional forecast targets / windows -> split (by entity
for files; independent draws for synthetic tasks) -> Preprocessor fitted on the training split ->
SeriesDataset. Everything needed to repeat it on new data (the data config, the fitted
preprocessor, the class names) is stored in the checkpoint metadata, so ``evaluate`` and ``predict``
apply exactly the training-time transformation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import IrregularSeries, Preprocessor, SeriesDataset, ucr_splits, walker2d_splits
from ..data.synthetic import damped_spirals, xor_events
from ._config import XOR_PAPER_SEEDS, DataConfig


@dataclass
class PreparedData:
    train: SeriesDataset
    val: SeriesDataset
    test: SeriesDataset
    preprocessor: Preprocessor
    task: str
    output_size: int
    classes: list[Any] | None
    pad_to: int | None

    @property
    def input_size(self) -> int:
        return len(self.preprocessor.input_names)

    def metadata(self, cfg: DataConfig) -> dict[str, Any]:
        return {
            "data_config": dataclasses.asdict(cfg),
            "preprocessor": self.preprocessor.to_dict(),
            "task": self.task,
            "classes": self.classes,
            "input_names": self.preprocessor.input_names,
            "pad_to": self.pad_to,
        }


def _default_task(cfg: DataConfig, series: IrregularSeries) -> str:
    if cfg.task is not None:
        return cfg.task
    if cfg.source == "xor":
        return "classification"
    if cfg.source == "spirals":
        return "regression"
    if cfg.source == "walker2d":
        return "forecast"
    classify = series.classes is not None
    if series.label_level == "step" and cfg.window is not None and cfg.window_label == "last":
        return "classification" if classify else "regression"
    if series.label_level == "step":
        return "step_classification" if classify else "forecast"
    return "classification" if classify else "regression"


def read_source(cfg: DataConfig, path: str | None = None) -> IrregularSeries:
    """Read a long-format file named by the config (or ``path``) into an IrregularSeries."""
    path = path or cfg.path
    kw: dict[str, Any] = {
        "entity": cfg.entity,
        "time": cfg.time,
        "features": cfg.features,
        "target": cfg.target,
        "target_level": cfg.target_level,
        "target_kind": cfg.target_kind,
        "sort": cfg.sort,
        "time_unit": cfg.time_unit,
        "time_scale": cfg.time_scale,
    }
    assert path is not None
    if cfg.source == "parquet" or str(path).endswith(".parquet"):
        return IrregularSeries.from_parquet(path, **kw)
    return IrregularSeries.from_csv(path, **kw)


def shape_series(cfg: DataConfig, series: IrregularSeries, task: str) -> IrregularSeries:
    """Forecast targets and windows, as the config asks."""
    if task == "forecast" and series.labels is None:
        series = series.forecast_targets(cfg.horizon)
    if cfg.window is not None:
        label = (
            cfg.window_label
            if series.label_level == "step" and task not in ("forecast", "step_classification")
            else "keep"
        )
        series = series.windows(cfg.window, cfg.stride, label=label)
    return series


def _xor_part(cfg: DataConfig, k: int) -> IrregularSeries:
    """Split k (0 train, 1 validation, 2 test) of the XOR task."""
    n = (cfg.n_train, cfg.n_val, cfg.n_test)[k]
    scale = cfg.xor_time_scale
    if cfg.xor_encoding == "paper":
        return xor_events(n, cfg.max_bits, seed=XOR_PAPER_SEEDS[k] + cfg.seed, time_scale=scale, encoding="paper")
    return xor_events(n, cfg.max_bits, seed=cfg.seed * 3 + k, time_scale=scale)


def _walker2d_parts(cfg: DataConfig) -> list[IrregularSeries]:
    assert cfg.path is not None
    return list(walker2d_splits(cfg.path, seq_len=cfg.window or 64, stride=cfg.stride))


def _ucr_parts(cfg: DataConfig) -> list[IrregularSeries]:
    assert cfg.path is not None and cfg.name is not None
    train, test = ucr_splits(cfg.name, cfg.path)
    fit, val = train.split_random((1.0 - cfg.val_fraction, cfg.val_fraction), seed=cfg.seed)
    return [fit, val, test]


def prepare_data(cfg: DataConfig) -> PreparedData:
    """Build the three datasets and the preprocessor (fitted on the training split only)."""
    pad_to = cfg.pad_to
    if cfg.source == "xor":
        parts = [_xor_part(cfg, k) for k in range(3)]
        pad_to = pad_to or cfg.max_bits + 1
        task = _default_task(cfg, parts[0])
    elif cfg.source == "walker2d":
        parts = _walker2d_parts(cfg)
        task = _default_task(cfg, parts[0])
        if task != "forecast":
            raise ValueError(f"data.source='walker2d' supports task forecast only; got {task!r}")
    elif cfg.source == "ucr":
        parts = _ucr_parts(cfg)
        task = _default_task(cfg, parts[0])
    elif cfg.source == "spirals":
        parts = [
            damped_spirals(n, cfg.length, cfg.mean_gap, cfg.noise, cfg.missing, seed=cfg.seed * 3 + k)
            for k, n in enumerate((cfg.n_train, cfg.n_val, cfg.n_test))
        ]
        task = _default_task(cfg, parts[0])
        if task == "forecast":
            parts = [dataclasses.replace(p, labels=None, label_level=None).forecast_targets(cfg.horizon) for p in parts]
    else:
        series = read_source(cfg)
        task = _default_task(cfg, series)
        if series.labels is None and task != "forecast":
            raise ValueError(f"task {task!r} needs labels: set data.target to the label column")
        series = shape_series(cfg, series, task)
        parts = list(series.split_by_entity(cfg.split, seed=cfg.seed))
    if task == "forecast" and cfg.source == "xor":
        raise ValueError("data.source='xor' supports task classification only")
    prep = Preprocessor.fit(parts[0], forward_fill=cfg.forward_fill, indicators=cfg.indicators)
    ds = [SeriesDataset(prep.transform(p), task) for p in parts]
    classes = parts[0].classes
    if task in ("classification", "step_classification"):
        if classes is None:
            raise ValueError(f"task {task!r} needs class labels; the target looks real-valued (set data.target_kind)")
        output_size = len(classes)
    else:
        assert parts[0].labels is not None
        first = np.asarray(parts[0].labels[0], dtype=np.float64)
        output_size = 1 if first.ndim == (1 if task == "forecast" else 0) else int(first.shape[-1])
    return PreparedData(ds[0], ds[1], ds[2], prep, task, output_size, classes, pad_to)


def dataset_from_metadata(
    meta: dict[str, Any], path: str | None = None, split: str = "test", labels: bool = True
) -> tuple[SeriesDataset, IrregularSeries]:
    """Rebuild evaluation data the way the model was trained: same config, the stored preprocessor.

    ``path`` replaces the data file (for csv/parquet sources). ``split``: "test"/"val"/"train"
    reproduce that split of the training run; "all" uses every sequence of the file.
    """
    cfg = DataConfig(**meta["data_config"]) if path is None else DataConfig(**{**meta["data_config"], "path": path})
    task = meta["task"]
    prep = Preprocessor.from_dict(meta["preprocessor"])
    splits = {"train": 0, "val": 1, "test": 2}
    if split not in (*splits, "all"):
        raise ValueError(f"split must be one of {[*splits, 'all']}; got {split!r}")
    if cfg.source == "walker2d":
        if path is not None:
            cfg = dataclasses.replace(cfg, path=path)
        series = _walker2d_parts(cfg)[splits.get(split, 2)]  # "all": the test split (the protocol's windows)
    elif cfg.source == "ucr":
        if path is not None:
            cfg = dataclasses.replace(cfg, path=path)
        series = _ucr_parts(cfg)[splits.get(split, 2)]  # "all": the TEST file
    elif cfg.source in ("xor", "spirals"):
        k = splits.get(split, 2)
        n = (cfg.n_train, cfg.n_val, cfg.n_test)[k]
        if cfg.source == "xor":
            series = _xor_part(cfg, k)
        else:
            series = damped_spirals(n, cfg.length, cfg.mean_gap, cfg.noise, cfg.missing, seed=cfg.seed * 3 + k)
            if task == "forecast":
                series = dataclasses.replace(series, labels=None, label_level=None).forecast_targets(cfg.horizon)
    else:
        file_features = [n for n in prep.feature_names if not (task == "forecast" and n == "next_dt")]
        cfg = dataclasses.replace(cfg, features=file_features)
        if not labels:
            cfg = dataclasses.replace(cfg, target=None)
        series = read_source(cfg)
        if series.classes is not None and meta.get("classes") is not None and series.classes != meta["classes"]:
            lookup = {c: i for i, c in enumerate(meta["classes"])}
            unknown = [c for c in series.classes if c not in lookup]
            if unknown:
                raise ValueError(f"the data has classes {unknown} that the model was not trained on {meta['classes']}")
            assert series.labels is not None
            remap = np.array([lookup[c] for c in series.classes])
            series = dataclasses.replace(series, labels=[remap[y] for y in series.labels], classes=meta["classes"])
        if labels or task == "forecast":
            series = shape_series(cfg, series, task)
        elif cfg.window is not None:
            series = series.windows(cfg.window, cfg.stride)
        if split != "all":
            series = series.split_by_entity(cfg.split, seed=cfg.seed)[splits[split]]
    return SeriesDataset(prep.transform(series), task if series.labels is not None else None), series
