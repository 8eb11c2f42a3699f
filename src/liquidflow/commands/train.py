"""``liquidflow train | evaluate | predict | info``: training runs and checkpoints from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ._models import one_line


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=1))


@contextmanager
def _data_errors_as_one_line() -> Iterator[None]:
    """A missing or unreadable data file, or data the config cannot use: one line, exit status 1."""
    try:
        yield
    except (OSError, ValueError) as e:
        typer.echo(f"Error: {one_line(e)}", err=True)
        raise typer.Exit(1) from e


def train(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML or JSON config file")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder (overrides out_dir)")] = None,
    data: Annotated[str | None, typer.Option(help="data source: xor, spirals, or a .csv / .parquet file")] = None,
    target: Annotated[str | None, typer.Option(help="label column of a CSV/Parquet file")] = None,
    task: Annotated[str | None, typer.Option(help="classification, step_classification, regression, forecast")] = None,
    model: Annotated[str | None, typer.Option(help="cfc, ltc, lstm, gru or transformer")] = None,
    units: Annotated[int | None, typer.Option(help="hidden units")] = None,
    wiring: Annotated[str | None, typer.Option(help="cfc/ltc wiring: autoncp, random, fully_connected")] = None,
    epochs: Annotated[int | None, typer.Option(help="training epochs")] = None,
    batch_size: Annotated[int | None, typer.Option(help="batch size per process")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    seeds: Annotated[
        str | None, typer.Option(help="several training seeds, comma-separated: one run each, mean ± std")
    ] = None,
    devices: Annotated[str | None, typer.Option(help="devices/processes for Lightning (e.g. 2, or auto)")] = None,
    strategy: Annotated[str | None, typer.Option(help="Lightning strategy (auto, ddp, ddp_spawn, ...)")] = None,
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu or auto")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="any config value as section.key=value (repeatable)")
    ] = None,
    resume: Annotated[Path | None, typer.Option(help="Lightning .ckpt to resume (out/checkpoints/last.ckpt)")] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Train a model from a config file and/or flags; writes model.lf, results.json and curve.png."""
    from liquidflow.training import TrainConfig, fit

    try:
        cfg = TrainConfig.from_file(config) if config is not None else TrainConfig()
    except (OSError, ValueError) as e:
        raise typer.BadParameter(one_line(e), param_hint="--config") from e
    overrides: list[str] = []
    if data is not None:
        if data in ("xor", "spirals"):
            overrides.append(f"data.source={data}")
        else:
            kind = "parquet" if data.endswith(".parquet") else "csv"
            overrides += [f"data.source={kind}", f"data.path={json.dumps(data)}"]
    pairs: list[tuple[str, Any]] = [
        ("data.target", target),
        ("data.task", task),
        ("model.kind", model),
        ("model.units", units),
        ("model.wiring", wiring),
        ("trainer.epochs", epochs),
        ("trainer.batch_size", batch_size),
        ("trainer.lr", lr),
        ("trainer.seed", seed),
        ("trainer.devices", devices),
        ("trainer.strategy", strategy),
        ("trainer.accelerator", accelerator),
    ]
    overrides += [f"{k}={json.dumps(v)}" if isinstance(v, str) else f"{k}={v}" for k, v in pairs if v is not None]
    overrides += list(set_ or [])
    overrides.append(f"trainer.progress={'true' if progress else 'false'}")
    if out is not None:
        overrides.append(f"out_dir={json.dumps(str(out))}")
    try:
        cfg = cfg.with_overrides(overrides)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if (
        cfg.trainer.devices not in ("auto", -1)
        and isinstance(cfg.trainer.devices, str)
        and cfg.trainer.devices.isdigit()
    ):
        cfg.trainer.devices = int(cfg.trainer.devices)
    if seeds is not None:
        from liquidflow.training import fit_seeds

        try:
            chosen = [int(v) for v in seeds.split(",") if v.strip()]
        except ValueError as e:
            raise typer.BadParameter(f"--seeds must be comma-separated integers; got {seeds!r}") from e
        if resume is not None:
            raise typer.BadParameter("--resume continues one run; it cannot be combined with --seeds")
        with _data_errors_as_one_line():
            multi = fit_seeds(cfg, chosen)
        if multi:
            _echo_json({k: v for k, v in multi["summary"].items() if k.startswith("test_")})
            typer.echo(f"per-seed runs in {cfg.out_dir}/seed<k>/; summary in {cfg.out_dir}/seeds.json")
        return
    with _data_errors_as_one_line():
        results = fit(cfg, resume=resume)
    if results:
        summary = {k: results[k] for k in ("task", "model", "epochs_run", "best_epoch", "val", "test", "model_path")}
        _echo_json(summary)


def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="a model.lf written by train")],
    data: Annotated[Path | None, typer.Option(help="CSV/Parquet file (default: the training data of the run)")] = None,
    split: Annotated[str, typer.Option(help="train, val, test (the run's split) or all")] = "test",
    out: Annotated[Path | None, typer.Option(help="write the metrics here as JSON")] = None,
) -> None:
    """Metrics of a checkpoint on data prepared exactly as in training."""
    from liquidflow.training import dataset_from_metadata, evaluate_model

    from ._models import load_trained

    model, meta = load_trained(checkpoint, "evaluate")
    ds, _ = dataset_from_metadata(meta, None if data is None else str(data), split)
    metrics = {"checkpoint": str(checkpoint), "split": split, "sequences": len(ds)}
    metrics.update(evaluate_model(model, ds, pad_to=meta.get("pad_to")))  # type: ignore[arg-type]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(metrics, indent=1))
    _echo_json(metrics)


def predict(
    checkpoint: Annotated[Path, typer.Argument(help="a model.lf written by train")],
    data: Annotated[Path | None, typer.Option(help="CSV/Parquet file (default: the training data of the run)")] = None,
    out: Annotated[Path, typer.Option(help="output CSV")] = Path("predictions.csv"),
    split: Annotated[str, typer.Option(help="all, or train/val/test of the run's split")] = "all",
) -> None:
    """Predictions for every sequence (or step) of a data file, written as CSV."""
    import pandas as pd

    from liquidflow.training import dataset_from_metadata, predict_model

    from ._models import load_trained

    model, meta = load_trained(checkpoint, "predict")
    ds, series = dataset_from_metadata(meta, None if data is None else str(data), split, labels=False)
    preds = predict_model(model, ds, pad_to=meta.get("pad_to"))  # type: ignore[arg-type]
    classes = meta.get("classes")
    rows = []
    for i, p in enumerate(preds):
        steps = p if model.per_step else p[None]  # type: ignore[union-attr]
        times = series.times[i] if model.per_step else series.times[i][-1:]  # type: ignore[union-attr]
        for t, q in zip(times, steps, strict=True):
            row: dict[str, Any] = {"entity": series.entities[i], "sequence": i, "time": float(t)}
            if classes is not None:
                row["prediction"] = classes[int(q.argmax())]
                row.update({f"p_{c}": float(v) for c, v in zip(classes, q, strict=True)})
            else:
                row.update({f"y{k}": float(v) for k, v in enumerate(q)})
            rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)
    typer.echo(f"wrote {len(rows)} predictions to {out}")


def describe_checkpoint(path: Path) -> dict[str, Any]:
    """Parameters, synapses, state size and the data pipeline of a checkpoint, as a dict."""
    from ._models import is_risk_model, load_checkpoint

    model, meta = load_checkpoint(path, "CHECKPOINT")
    core: Any = getattr(model, "core", model)
    wiring = getattr(core, "wiring", None)
    info: dict[str, Any] = {
        "checkpoint": str(path),
        "class": type(model).__name__,
        "core": type(core).__name__,
        "task": getattr(model, "task", None),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "trainable_parameters": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "state_size": int(getattr(core, "state_size", 0)),
        "input_size": int(core.input_size),
        "output_size": int(getattr(model, "output_size", getattr(core, "out_features", 0))),
    }
    if wiring is not None:
        info["wiring"] = type(wiring).__name__
        info["units"] = int(wiring.units)
        info["synapses"] = int(wiring.synapse_count)
        info["sensory_synapses"] = int(wiring.sensory_synapse_count)
    if hasattr(model, "input_mean"):
        info["input_names"] = meta.get("input_names")
        info["input_mean"] = [round(float(v), 6) for v in model.input_mean.tolist()]  # type: ignore[operator]
        info["input_std"] = [round(float(v), 6) for v in model.input_std.tolist()]  # type: ignore[operator]
    if is_risk_model(model):  # a maintenance model: what a monitor or a gateway needs
        info["kind"] = model.kind
        info["input_names"] = meta.get("input_names", list(model.features))
        info["output_names"] = meta.get("output_names")
        for key in ("threshold", "budget", "horizon_days", "rul_cap_days", "preprocessing", "converted_from"):
            if key in meta:
                info[key] = meta[key]
    for key in ("classes", "metrics", "best_epoch"):
        if key in meta:
            info[key] = meta[key]
    return info


def info(checkpoint: Annotated[Path, typer.Argument(help="a .lf checkpoint")]) -> None:
    """Parameters, synapses, state size, inputs and metrics of a checkpoint (JSON)."""
    _echo_json(describe_checkpoint(checkpoint))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
    app.command("info")(info)
