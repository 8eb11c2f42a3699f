"""One comparison on one fleet: the liquid model and the baselines, same machines, same metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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

#: (metric key, row label, format) in table order
ROWS: tuple[tuple[str, str, str], ...] = (
    ("auroc", "AUROC (fails within H)", "{:.3f}"),
    ("auprc", "AUPRC (fails within H)", "{:.3f}"),
    ("lead_time_days", "Alarm lead time, mean (days)", "{:.2f}"),
    ("detected_of", "Failures alarmed within H", "{}"),
    ("false_alarms_per_machine_month", "False alarms / machine-month", "{:.2f}"),
    ("rul_mae_days", "RUL MAE, last 2H (days)", "{:.2f}"),
    ("parameters", "Parameters", "{:,}"),
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
        return "Model bytes: " + "; ".join(parts) + "; the amplitude alarm stores 2 floats."

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
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> Benchmark:
    """Split machines (train / val / test), fit the amplitude alarm and train every model on the
    training machines (best epoch on validation), then score all of them on the test machines.

    ``budget`` is the false-alarm budget per machine-month at which alarm thresholds are set.
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
    for kind in (liquid, *baselines):
        say(f"training {NAMES.get(kind, kind)}")
        res = train_model(
            kind, train, val, feats, horizon_days=H, config=cfg, progress=progress, label=NAMES.get(kind, kind)
        )
        model = res.model
        r, rul = predict_sequences(model, test)
        m = dict(score_metrics(test, test.flat(r), budget, test.flat(rul), model.rul_cap_days))
        nbytes, how = export_bytes(model)
        m.update(
            parameters=model.parameter_count(),
            model_bytes=nbytes,
            bytes_measure=how,
            step_latency_us=step_latency_us(model),
            train_seconds=res.train_seconds,
            best_epoch=res.best_epoch,
        )
        if len(val.ids):
            vr, _ = predict_sequences(model, val)
            val_thresholds[kind] = float(score_metrics(val, val.flat(vr), budget)["threshold"])
        metrics[kind] = m
        risk[kind] = r
        models[kind] = model
        say(
            f"  {NAMES.get(kind, kind)}: AUPRC {m['auprc']:.3f}, lead time {m['lead_time_days']:.2f} d "
            f"({res.train_seconds:.1f} s)"
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
