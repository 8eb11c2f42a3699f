"""Evaluate models under perturbations, tabulate, plot; train small models for the experiment.

``evaluate(models, dataset, perturbations)`` runs every model on every perturbed copy of the
dataset (each perturbation draws its randomness once, from ``seed``, so all models see the same
perturbed data) and returns a :class:`RobustnessTable`. :func:`aggregate_seeds` turns one table per
seed into a table of means with the spread over seeds (``std``, sample standard deviation).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data import IrregularSeries, SeriesDataset, make_loader
from ._perturb import Clean, Perturbation, Resamplable

CLASSIFICATION = ("classification", "step_classification")


@dataclass
class RobustnessTable:
    """Rows of ``{model, perturbation, family, strength, metric, value, steps}`` (one per model x perturbation).

    A table made by :func:`aggregate_seeds` holds the mean over seeds in ``value`` and adds ``std``
    (sample standard deviation, ddof=1), ``values`` (one per seed) and ``seeds`` to every row; its
    markdown shows "mean ± std" and its plot error bars (± std).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    metric: str = "accuracy"

    @property
    def seeds(self) -> list[int] | None:
        """The seeds of an aggregated table (:func:`aggregate_seeds`), None for a single-seed table."""
        if self.rows and all("std" in r for r in self.rows):
            return list(self.rows[0]["seeds"])
        return None

    def to_frame(self) -> Any:
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def value(self, model: str, perturbation: str) -> float:
        """The metric of ``model`` under the perturbation labelled ``perturbation`` (e.g. ``drop_random@0.2``)."""
        for r in self.rows:
            if r["model"] == model and r["perturbation"] == perturbation:
                return float(r["value"])
        raise KeyError(f"no row for model {model!r} and perturbation {perturbation!r}")

    def std(self, model: str, perturbation: str) -> float:
        """The standard deviation over seeds of the metric (aggregated tables; 0.0 for a single-seed table)."""
        for r in self.rows:
            if r["model"] == model and r["perturbation"] == perturbation:
                return float(r.get("std", 0.0))
        raise KeyError(f"no row for model {model!r} and perturbation {perturbation!r}")

    def models(self) -> list[str]:
        return list(dict.fromkeys(r["model"] for r in self.rows))

    def perturbations(self) -> list[str]:
        return list(dict.fromkeys(r["perturbation"] for r in self.rows))

    def to_markdown(self, digits: int = 3) -> str:
        """A markdown table: one row per perturbation, one column per model (the metric, or "mean ± std")."""
        models = self.models()
        steps = {r["perturbation"]: r["steps"] for r in self.rows}
        spread = self.seeds is not None
        head = f"| perturbation | mean steps | {' | '.join(models)} |"
        sep = "|---|---:|" + "---:|" * len(models)
        lines = [head, sep]
        for p in self.perturbations():
            if spread:
                cells = [f"{self.value(m, p):.{digits}f} ± {self.std(m, p):.{digits}f}" for m in models]
            else:
                cells = [f"{self.value(m, p):.{digits}f}" for m in models]
            lines.append(f"| {p} | {steps[p]:.0f} | {' | '.join(cells)} |")
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Metric vs perturbation strength: one panel per family, one line per model; saved to ``path``.

        An aggregated table (:func:`aggregate_seeds`) plots the mean with error bars of ± one std over seeds.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        families = [f for f in dict.fromkeys(r["family"] for r in self.rows) if f != "clean"]
        spread = self.seeds is not None
        clean = {r["model"]: (r["value"], r.get("std", 0.0)) for r in self.rows if r["family"] == "clean"}
        cols = min(4, max(len(families), 1))
        nrows = (len(families) + cols - 1) // cols or 1
        fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.8 * nrows), squeeze=False)
        for ax, fam in zip(axes.flat, families, strict=False):
            for m in self.models():
                pts = sorted(
                    (r["strength"], r["value"], r.get("std", 0.0))
                    for r in self.rows
                    if r["family"] == fam and r["model"] == m
                )
                if fam != "sampling_rate" and m in clean:
                    pts = [(0.0, *clean[m]), *pts]
                if fam == "sampling_rate" and m in clean:
                    pts = sorted([(1.0, *clean[m]), *pts])
                xs, ys, es = zip(*pts, strict=True)
                if spread:
                    ax.errorbar(xs, ys, yerr=es, fmt="o-", capsize=3, label=m)
                else:
                    ax.plot(xs, ys, "o-", label=m)
            ax.set_title(fam)
            ax.set_xlabel("rate factor" if fam == "sampling_rate" else "strength")
            if fam == "sampling_rate":
                ax.set_xscale("log")
            ax.set_ylabel(self.metric)
        for ax in list(axes.flat)[len(families) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=8)
        if spread:
            fig.suptitle(f"mean ± std over {len(self.seeds or [])} seeds", fontsize=10)
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
        plt.close(fig)
        return out


def aggregate_seeds(tables: Mapping[int, RobustnessTable]) -> RobustnessTable:
    """One table per seed (``{seed: table}``, same models and perturbations) -> mean and spread over seeds.

    Each row of the result has ``value`` = the mean over seeds, ``std`` = the sample standard
    deviation (ddof=1), ``values`` = the per-seed values in the order of ``seeds``, ``seeds``, and
    ``steps`` = the mean of the per-seed mean steps. Needs at least two seeds.
    """
    seeds = list(tables)
    if len(seeds) < 2:
        raise ValueError(f"aggregate_seeds needs tables from at least 2 seeds; got seeds {seeds}")
    first = tables[seeds[0]]
    keys = [(r["model"], r["perturbation"]) for r in first.rows]
    for s in seeds[1:]:
        t = tables[s]
        other = [(r["model"], r["perturbation"]) for r in t.rows]
        if other != keys or t.metric != first.metric:
            raise ValueError(
                f"tables must have the same models, perturbations and metric; seed {s} has "
                f"{t.models()} x {t.perturbations()} ({t.metric}), seed {seeds[0]} has "
                f"{first.models()} x {first.perturbations()} ({first.metric})"
            )
    out = RobustnessTable(metric=first.metric)
    for i, base in enumerate(first.rows):
        values = np.array([tables[s].rows[i]["value"] for s in seeds], dtype=float)
        steps = np.array([tables[s].rows[i]["steps"] for s in seeds], dtype=float)
        out.rows.append(
            {
                "model": base["model"],
                "perturbation": base["perturbation"],
                "family": base["family"],
                "strength": base["strength"],
                "metric": base["metric"],
                "value": float(values.mean()),
                "std": float(values.std(ddof=1)),
                "values": values.tolist(),
                "seeds": seeds,
                "steps": float(steps.mean()),
            }
        )
    return out


def score(model: torch.nn.Module, series: IrregularSeries, batch_size: int = 256) -> float:
    """Accuracy (classification tasks) or mean squared error (others) of ``model`` on ``series``."""
    task = getattr(model, "task", None)
    if task is None:
        raise TypeError(f"model must be a SequenceModel (with a .task); got {type(model).__name__}")
    ds = SeriesDataset(series, task=task)
    if ds.y is None:
        raise ValueError("the series has no labels; robustness needs labelled data")
    right, total, sq = 0, 0, 0.0
    model.eval()
    with torch.no_grad():
        for batch in make_loader(ds, batch_size):
            p = model(batch["x"], timespans=batch["timespans"], mask=batch["mask"])
            y = batch["y"]
            if task in CLASSIFICATION:
                keep = y != -100
                right += int((p.argmax(-1) == y)[keep].sum())
                total += int(keep.sum())
            else:
                if model.per_step:  # type: ignore[attr-defined]
                    p, y = p[batch["mask"]], y[batch["mask"]]
                sq += float(((p - y) ** 2).sum())
                total += int(y.numel())
    if task in CLASSIFICATION:
        return right / max(total, 1)
    return sq / max(total, 1)


def evaluate(
    models: Mapping[str, torch.nn.Module],
    dataset: IrregularSeries | Resamplable,
    perturbations: Sequence[Perturbation],
    seed: int = 0,
    batch_size: int = 256,
) -> RobustnessTable:
    """Score every model on every perturbed copy of ``dataset``; returns a :class:`RobustnessTable`.

    ``dataset``: an IrregularSeries, or a re-samplable source (``.series`` and ``.sample(rate, seed)``,
    e.g. :class:`OscillatorTask`), which :class:`Resample` needs. A :class:`Clean` row is added
    first if ``perturbations`` has none. Metric: accuracy for classification, MSE otherwise.
    """
    if not models:
        raise ValueError("models is empty; pass a dict name -> SequenceModel")
    source: Resamplable | None = None
    if isinstance(dataset, IrregularSeries):
        series = dataset
    elif hasattr(dataset, "sample") and hasattr(dataset, "series"):
        source = dataset
        series = dataset.series  # type: ignore[attr-defined]
    else:
        raise TypeError(f"dataset must be an IrregularSeries or a re-samplable task; got {type(dataset).__name__}")
    perts = list(perturbations)
    for p in perts:
        if not isinstance(p, Perturbation):
            raise TypeError(f"perturbations must be Perturbation objects; got {type(p).__name__}")
    if not any(isinstance(p, Clean) for p in perts):
        perts.insert(0, Clean())
    tasks = {getattr(m, "task", None) for m in models.values()}
    metric = "accuracy" if tasks <= set(CLASSIFICATION) else "mse"
    table = RobustnessTable(metric=metric)
    for k, p in enumerate(perts):
        rng = np.random.default_rng([seed, k])
        data = p.apply(series, rng, source)
        steps = float(np.mean(data.lengths))
        for name, model in models.items():
            t0 = time.perf_counter()
            value = score(model, data, batch_size)
            table.rows.append(
                {
                    "model": name,
                    "perturbation": p.label,
                    "family": p.name,
                    "strength": p.strength,
                    "metric": metric,
                    "value": value,
                    "steps": steps,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
            )
    return table


def train_classifier(
    kind: str,
    series: IrregularSeries,
    num_classes: int,
    units: int = 16,
    epochs: int = 20,
    batch_size: int = 32,
    lr: float = 0.01,
    seed: int = 0,
    progress: bool = False,
    **kw: Any,
) -> torch.nn.Module:
    """A small sequence classifier (``build_model(kind)``) trained by the library's in-memory loop
    (:func:`liquidflow.training.train_loop`: AdamW, a per-step cosine schedule down to 5 % of ``lr``,
    gradient norm clipped at 1, the last epoch's weights; seeded).

    Normalisation statistics come from ``series``. ``kw`` goes to ``build_model`` (e.g. ``backbone_units``).
    """
    from ..training import LoopConfig, build_model, train_loop

    torch.manual_seed(seed)
    allv = np.concatenate(series.values)
    model = build_model(
        kind,
        series.num_features,
        num_classes,
        units=units,
        task="classification",
        input_mean=np.nanmean(allv, 0),
        input_std=np.nanstd(allv, 0),
        **kw,
    )
    loader = make_loader(SeriesDataset(series, task="classification"), batch_size, shuffle=True, seed=seed)

    def batches(epoch: int) -> Any:
        loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
        return loader

    def loss_fn(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
        logits = net(batch["x"], timespans=batch["timespans"], mask=batch["mask"])
        return F.cross_entropy(logits, batch["y"]), float(batch["y"].shape[0])

    config = LoopConfig(
        epochs=epochs,
        lr=lr,
        optimizer="adamw",
        schedule="cosine",
        schedule_interval="step",
        steps_per_epoch=len(loader),
        eta_min_fraction=0.05,
        gradient_clip=1.0,
        restore_best=False,
    )
    train_loop(model, batches, loss_fn, config, progress=progress, label=f"train {kind}")
    model.eval()
    return model
