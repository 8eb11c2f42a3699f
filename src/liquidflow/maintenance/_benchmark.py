"""One comparison on one fleet: the liquid model and the baselines, same machines, same metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ._models import LIQUID_KINDS, RiskModel
from ._pipeline import (
    AmplitudeAlarm,
    Sequences,
    TrainConfig,
    export_bytes,
    predict_sequences,
    score_metrics,
    split_machines,
    step_latency_us,
    to_sequences,
    train_model,
)
from ._simulate import FEATURES

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

NAMES = {
    "threshold": "Amplitude alarm",
    "cfc": "CfC+AutoNCP",
    "ltc": "LTC+NCP",
    "lstm": "LSTM",
    "gru": "GRU",
    "transformer": "Transformer",
}

#: metrics averaged over training seeds (the others are the first seed's model's)
SEED_METRICS = ("auroc", "auprc", "lead_time_days", "false_alarms_per_machine_month", "rul_mae_days", "train_seconds")

#: (metric key, row label, format) in table order
ROWS: tuple[tuple[str, str, str], ...] = (
    ("auroc", "AUROC (fails within H)", "{:.3f}"),
    ("auprc", "AUPRC (fails within H)", "{:.3f}"),
    ("lead_time_days", "Alarm lead time, mean (days)", "{:.2f}"),
    ("detected_of", "Failures alarmed within H", "{}"),
    ("false_alarms_per_machine_month", "False alarms / machine-month", "{:.2f}"),
    ("rul_mae_days", "RUL MAE, last 2H (days)", "{:.2f}"),
    ("parameters", "Parameters", "{:,}"),
    ("effective_parameters", "Parameters less wiring zeros", "{:,}"),
    ("model_bytes", "Model bytes (exported)", "{:,}"),
    ("step_latency_us", "Step latency (µs, 1 machine)", "{:.0f}"),
    ("train_seconds", "Train time (s)", "{:.1f}"),
)


@dataclass
class Benchmark:
    """Everything a comparison produced (see :func:`run_benchmark`)."""

    metrics: dict[str, dict[str, Any]]  #: model key -> metric -> value
    models: dict[str, RiskModel]
    alarm: AmplitudeAlarm
    test: Sequences
    risk: dict[str, np.ndarray]  #: model key -> (M, T) risk on the test machines (alarm: amplitude)
    horizon_days: float
    budget: float
    features: list[str]
    split: dict[str, list[int]]
    config: TrainConfig
    val_thresholds: dict[str, float] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """Metric rows, one column per model, as formatted strings."""
        import pandas as pd

        cols = {}
        for key, m in self.metrics.items():
            col = []
            for metric, _, fmt in ROWS:
                v = m.get(metric)
                if v is None or (isinstance(v, float) and not np.isfinite(v)):
                    col.append("—")
                elif f"{metric}_std" in m:  # several training seeds: mean ± std
                    col.append(f"{fmt.format(v)} ± {fmt.format(m[f'{metric}_std'])}")
                else:
                    col.append(fmt.format(v))
            cols[NAMES.get(key, key)] = col
        return pd.DataFrame(cols, index=[label for _, label, _ in ROWS])

    def table_text(self) -> str:
        """The table as aligned plain text (what the demo prints)."""
        t = self.table()
        head = ["Metric", *t.columns]
        rows = [[idx, *t.loc[idx].tolist()] for idx in t.index]
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

        def fmt(r: list[Any]) -> str:
            return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

        lines = [fmt(head), "  ".join("-" * w for w in widths), *[fmt(r) for r in rows]]
        return "\n".join([*lines, "", self.bytes_note()])

    def bytes_note(self) -> str:
        """How the model bytes were measured, per model."""
        by: dict[str, list[str]] = {}
        for key, m in self.metrics.items():
            if key != "threshold":
                by.setdefault(str(m.get("bytes_measure", "float32 weights")), []).append(NAMES.get(key, key))
        parts = [f"{how} for {', '.join(names)}" for how, names in by.items()]
        note = "Model bytes: " + "; ".join(parts) + "; the amplitude alarm stores 2 floats."
        seeds = next((m["seeds"] for m in self.metrics.values() if "seeds" in m), None)
        if seeds:
            note += (f"\nmean ± std over training seeds {seeds} (same machines); the rows without ± are"
                     f" seed {seeds[0]}'s models.")  # fmt: skip
        return note

    def table_markdown(self) -> str:
        t = self.table()
        lines = ["| Metric | " + " | ".join(t.columns) + " |", "|---" * (len(t.columns) + 1) + "|"]
        lines += ["| " + idx + " | " + " | ".join(t.loc[idx].tolist()) + " |" for idx in t.index]
        return "\n".join([*lines, "", self.bytes_note()])


def run_benchmark(
    df: pd.DataFrame,
    *,
    liquid: str = "cfc",
    baselines: Sequence[str] = ("lstm", "gru", "transformer"),
    features: Sequence[str] | None = None,
    horizon_days: float | None = None,
    budget: float = 0.5,
    config: TrainConfig | None = None,
    seed: int = 0,
    train_seeds: Sequence[int] | None = None,
    recipes: Mapping[str, TrainConfig] | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> Benchmark:
    """Split machines (train / val / test), fit the amplitude alarm and train every model on the
    training machines (best epoch on validation), then score all of them on the test machines.

    ``budget`` is the false-alarm budget per machine-month at which alarm thresholds are set.
    ``train_seeds``: train every neural model once per seed (same machines); the metrics are the
    means, with ``<metric>_std`` beside them (population std) and the table shows mean ± std; the
    models, risks and thresholds kept are the first seed's. ``recipes``: a training config per model
    kind (e.g. the tuned ones of :data:`TUNED_RECIPES`); kinds not in it use ``config``.
    """
    say = log or (lambda s: None)
    if liquid not in LIQUID_KINDS:
        raise ValueError(f"liquid must be one of {LIQUID_KINDS}; got {liquid!r}")
    feats = list(features) if features is not None else [f for f in FEATURES if f in df.columns]
    H = float(horizon_days if horizon_days is not None else df.attrs.get("horizon_days", 14.0))
    cfg = config or TrainConfig(seed=seed)
    seqs = to_sequences(df, feats, horizon_days=H)
    split = split_machines(seqs.ids, seed=seed)
    train, val, test = (seqs.subset(split[k]) for k in ("train", "val", "test"))
    say(f"machines: {len(train.ids)} train, {len(val.ids)} validation, {len(test.ids)} test")

    metrics: dict[str, dict[str, Any]] = {}
    risk: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    alarm = AmplitudeAlarm().fit(train, feats, budget)
    score = alarm.score(test)
    m: dict[str, Any] = dict(score_metrics(test, score, budget))
    m.update(
        parameters=2,
        effective_parameters=2,
        model_bytes=8,
        step_latency_us=float("nan"),
        train_seconds=time.perf_counter() - t0,
        tuned=f"{alarm.feature}, EMA span {alarm.span}",
    )
    metrics["threshold"] = m
    risk["threshold"] = _unflatten(test, score)
    say(f"amplitude alarm tuned: {alarm.feature} with EMA span {alarm.span}")

    models: dict[str, RiskModel] = {}
    val_thresholds: dict[str, float] = {}
    seeds = list(train_seeds) if train_seeds else [cfg.seed]
    for kind in (liquid, *baselines):
        say(f"training {NAMES.get(kind, kind)}" + (f" with seeds {seeds}" if len(seeds) > 1 else ""))
        kcfg = (recipes or {}).get(kind, cfg)
        runs = []
        for s in seeds:
            res = train_model(kind, train, val, feats, horizon_days=H, config=replace(kcfg, seed=s),
                              progress=progress, label=NAMES.get(kind, kind))  # fmt: skip
            r, rul = predict_sequences(res.model, test)
            sm = dict(score_metrics(test, test.flat(r), budget, test.flat(rul), res.model.rul_cap_days))
            runs.append((res, r, {**sm, "train_seconds": res.train_seconds}))
        res, r = runs[0][0], runs[0][1]
        m = dict(runs[0][2])
        model = res.model
        if len(runs) > 1:
            for key in SEED_METRICS:
                vals = np.array([float(x[2][key]) for x in runs])
                vals = vals[np.isfinite(vals)]  # e.g. no lead time where no failure was alarmed
                m[key], m[f"{key}_std"] = (float(vals.mean()), float(vals.std())) if vals.size else (math.nan, math.nan)
            m["seeds"] = seeds
            m["per_seed"] = [{key: float(x[2][key]) for key in SEED_METRICS} for x in runs]
        nbytes, how = export_bytes(model)
        m.update(
            parameters=model.parameter_count(),
            effective_parameters=model.parameter_count(effective=True),
            model_bytes=nbytes,
            bytes_measure=how,
            step_latency_us=step_latency_us(model),
            best_epoch=res.best_epoch,
        )
        if len(val.ids):
            vr, _ = predict_sequences(model, val)
            val_thresholds[kind] = float(score_metrics(val, val.flat(vr), budget)["threshold"])
        metrics[kind] = m
        risk[kind] = r
        models[kind] = model
        say(
            f"  {NAMES.get(kind, kind)}: AUPRC {m['auprc']:.3f}"
            + (f" ± {m['auprc_std']:.3f}" if "auprc_std" in m else "")
            + f", lead time {m['lead_time_days']:.2f} d ({m['train_seconds']:.1f} s per run)"
        )
    for m in metrics.values():
        m["detected_of"] = f"{m['detected']}/{m['failures']}"
    return Benchmark(metrics, models, alarm, test, risk, H, budget, feats, split, cfg, val_thresholds)


def _unflatten(seqs: Sequences, flat: np.ndarray) -> np.ndarray:
    out = np.zeros(seqs.x.shape[:2])
    pos = 0
    for i, n in enumerate(seqs.lengths):
        out[i, :n] = flat[pos : pos + n]
        pos += int(n)
    return out
