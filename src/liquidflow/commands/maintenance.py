"""``liquidflow maintenance``: failure-risk models for a fleet, on your own readings.

Readings are a long-format table (CSV or Parquet): one row per reading with a machine id column,
a timestamp column (datetimes, or numbers in hours), numeric feature columns and, to train or
evaluate, ``rul_days`` (days to failure; empty / inf for machines that do not fail) and/or
``fails_within_h`` (0/1). ``liquidflow maintenance simulate`` writes such a table.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

maintenance_app = typer.Typer(
    help="Predictive maintenance: simulate a fleet, train, evaluate, monitor a stream.", no_args_is_help=True
)


def read_table(path: Path) -> Any:
    """A CSV or Parquet file as a DataFrame (by extension)."""
    import pandas as pd

    if not Path(path).exists():
        raise typer.BadParameter(f"no such file: {path}")
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt", ".gz"):
        df = pd.read_csv(path)
        if "rul_days" in df.columns:
            df["rul_days"] = pd.to_numeric(df["rul_days"], errors="coerce").fillna(float("inf"))
        return df
    raise typer.BadParameter(f"unknown file type {suffix!r} for {path}; use .csv or .parquet")


def write_table(df: Any, path: Path) -> None:
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        df.to_parquet(path, index=False)
    elif suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        raise typer.BadParameter(f"unknown file type {suffix!r} for {path}; use .csv or .parquet")


def _features(df: Any, features: str | None, entity: str, time_col: str) -> list[str]:
    from liquidflow.maintenance import FEATURES

    if features:
        return [f.strip() for f in features.split(",") if f.strip()]
    if all(f in df.columns for f in FEATURES):
        return list(FEATURES)
    skip = {entity, time_col, "rul_days", "fails_within_h", "fault_type", "severity"}
    return [c for c in df.columns if c not in skip and str(df[c].dtype) != "object"]


@maintenance_app.command("simulate")
def simulate_cmd(
    out: Annotated[Path, typer.Argument(help="output file (.csv or .parquet)")],
    machines: Annotated[int, typer.Option(help="machines in the fleet")] = 60,
    days: Annotated[float, typer.Option(help="days simulated")] = 60.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    horizon_days: Annotated[float, typer.Option(help="H in fails_within_h")] = 14.0,
    wake_period_h: Annotated[float, typer.Option(help="nominal hours between sensor wake-ups")] = 3.0,
) -> None:
    """Simulate a fleet (docs/maintenance-physics.md) and write its readings."""
    from liquidflow.maintenance import simulate

    df = simulate(machines, days, seed=seed, horizon_days=horizon_days, wake_period_h=wake_period_h)
    write_table(df, out)
    typer.echo(f"wrote {len(df):,} readings of {df['machine_id'].nunique()} machines to {out}")


@maintenance_app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Argument(help="readings (.csv or .parquet) with targets")],
    out: Annotated[Path, typer.Option("--out", "-o", help="where to save the model")] = Path("maintenance_model.lf"),
    kind: Annotated[str, typer.Option(help="cfc (CfC + AutoNCP), ltc (LTC + NCP), lstm, gru or transformer")] = "cfc",
    features: Annotated[
        str | None, typer.Option(help="comma-separated feature columns (default: the simulator's, or all numeric)")
    ] = None,
    entity: Annotated[str, typer.Option(help="machine id column")] = "machine_id",
    time_col: Annotated[str, typer.Option("--time", help="timestamp column")] = "timestamp",
    horizon_days: Annotated[
        float, typer.Option(help="H: fails_within_h = rul_days <= H when the column is absent")
    ] = 14.0,
    epochs: Annotated[int, typer.Option(help="training epochs")] = 25,
    units: Annotated[int, typer.Option(help="liquid neurons")] = 16,
    hidden: Annotated[int, typer.Option(help="baseline hidden size")] = 32,
    budget: Annotated[float, typer.Option(help="false alarms per machine-month for the saved alarm threshold")] = 0.5,
    val_fraction: Annotated[
        float, typer.Option(help="share of machines held out to pick the epoch and threshold")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Train a risk model on your readings; saves it with its alarm threshold (set on held-out machines)."""
    from liquidflow.maintenance import (
        KINDS,
        TrainConfig,
        predict_sequences,
        save_risk_model,
        score_metrics,
        split_machines,
        to_sequences,
        train_model,
    )

    if kind not in KINDS:
        raise typer.BadParameter(f"unknown kind {kind!r}; allowed: {', '.join(KINDS)}", param_hint="--kind")
    df = read_table(data)
    feats = _features(df, features, entity, time_col)
    try:
        seqs = to_sequences(df, feats, entity=entity, time_col=time_col, horizon_days=horizon_days)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="DATA") from e
    if seqs.y is None or seqs.rul is None:
        raise typer.BadParameter("training needs a rul_days column (days to failure; inf if none)", param_hint="DATA")
    split = split_machines(seqs.ids, seed=seed, val=0.0, test=val_fraction)
    train, val = seqs.subset(split["train"]), seqs.subset(split["test"])
    cfg = TrainConfig(epochs=epochs, units=units, hidden=hidden, seed=seed)
    res = train_model(kind, train, val, feats, horizon_days=horizon_days, config=cfg, progress=progress)
    risk, rul = predict_sequences(res.model, val)
    m = score_metrics(val, val.flat(risk), budget, val.flat(rul), res.model.rul_cap_days)
    save_risk_model(
        res.model,
        str(out),
        extra={"threshold": m["threshold"], "budget": budget, "entity": entity, "time_col": time_col},
    )
    typer.echo(
        f"trained {kind} on {len(train.ids)} machines in {res.train_seconds:.1f} s "
        f"({res.model.parameter_count():,} parameters); saved to {out}"
    )
    typer.echo(json.dumps({"validation": _jsonable(m)}, indent=1))


def _jsonable(m: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in m.items()}


@maintenance_app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Path, typer.Argument(help="readings (.csv or .parquet) with targets")],
    model: Annotated[
        Path, typer.Option("--model", "-m", help="a model saved by `liquidflow maintenance train` or the demo")
    ],
    entity: Annotated[str, typer.Option(help="machine id column")] = "machine_id",
    time_col: Annotated[str, typer.Option("--time", help="timestamp column")] = "timestamp",
    budget: Annotated[float, typer.Option(help="false alarms per machine-month for the alarm threshold")] = 0.5,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the metrics here")] = None,
) -> None:
    """AUROC / AUPRC, alarm lead time at the false-alarm budget and RUL error of a model on readings."""
    from liquidflow.maintenance import predict_sequences, score_metrics, to_sequences

    from ._models import load_risk

    m_, _ = load_risk(model)
    df = read_table(data)
    try:
        seqs = to_sequences(df, m_.features, entity=entity, time_col=time_col, horizon_days=m_.horizon_days)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="DATA") from e
    if seqs.y is None or seqs.rul is None:
        raise typer.BadParameter("evaluation needs a rul_days column", param_hint="DATA")
    risk, rul = predict_sequences(m_, seqs)
    m = _jsonable(score_metrics(seqs, seqs.flat(risk), budget, seqs.flat(rul), m_.rul_cap_days))
    m.update(machines=len(seqs.ids), readings=int(seqs.lengths.sum()), parameters=m_.parameter_count())
    for k, v in m.items():
        typer.echo(f"{k:32s} {v:.4g}" if isinstance(v, float) else f"{k:32s} {v}")
    if json_out is not None:
        Path(json_out).write_text(json.dumps(m, indent=1))


@maintenance_app.command("monitor")
def monitor_cmd(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="a model saved by `liquidflow maintenance train` or the demo")
    ],
    threshold: Annotated[
        float | None, typer.Option(help="alarm threshold on the risk (default: the one saved with the model)")
    ] = None,
    entity: Annotated[str, typer.Option(help="machine id column")] = "machine_id",
    time_col: Annotated[str, typer.Option("--time", help="timestamp column")] = "timestamp",
    alarms_only: Annotated[bool, typer.Option(help="print only readings where an alarm turns on")] = False,
) -> None:
    """Read readings as CSV on stdin (header first), one at a time, and print each machine's risk,
    predicted RUL and alarm as CSV on stdout, line by line, as they arrive."""
    import torch

    from liquidflow.maintenance import Monitor

    from ._models import load_risk

    torch.set_num_threads(1)  # one reading at a time: thread hand-offs would cost more than the math
    risk_model, meta = load_risk(model)
    mon = Monitor(risk_model, threshold=threshold if threshold is not None else float(meta.get("threshold", 0.5)))
    reader = csv.reader(sys.stdin)
    header = next(reader, None)
    if header is None:
        raise typer.BadParameter("no input on stdin: expected CSV with a header line", param_hint="stdin")
    header = [h.strip() for h in header]
    missing = [c for c in (entity, time_col, *mon.features) if c not in header]
    if missing:
        typer.echo(f"error: stdin CSV is missing columns {missing}; header is {header}", err=True)
        raise typer.Exit(2)
    ie, it = header.index(entity), header.index(time_col)
    jf = [header.index(f) for f in mon.features]
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow([entity, time_col, "risk", "rul_days", "alarm"])
    for lineno, row in enumerate(reader, start=2):
        if not row:
            continue
        ts: Any = row[it]
        try:
            ts = float(ts)
        except ValueError:
            pass
        try:
            r = mon.update(row[ie], ts, [float(row[j]) for j in jf])
        except ValueError as e:
            typer.echo(f"error: line {lineno}: {e}", err=True)
            raise typer.Exit(1) from e
        if alarms_only and not r.onset:
            continue
        out.writerow([r.machine_id, row[it], f"{r.risk:.6f}", f"{r.rul_days:.3f}", int(r.alarm)])
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.add_typer(maintenance_app, name="maintenance")
