"""``liquidflow inspect MODEL --out DIR``: figures and one HTML report on how a trained model works."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def _load_npz(path: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(path) as f:
        keys = set(f.files)
        name = "x" if "x" in keys else "inputs" if "inputs" in keys else None
        if name is None:
            raise typer.BadParameter(
                f"{path} must hold an array 'x' (or 'inputs') of shape (B, T, I); found {sorted(keys)}"
            )
        out: dict[str, Any] = {"x": f[name]}
        for key in ("timespans", "mask"):
            if key in keys:
                out[key] = f[key]
    return out


def _data_from_metadata(meta: dict[str, Any], path: str | None, split: str, samples: int) -> dict[str, Any]:
    from liquidflow.data import collate_series
    from liquidflow.training import dataset_from_metadata

    dataset, _ = dataset_from_metadata(meta, path, split=split, labels=False)
    items = [dataset[i] for i in range(min(len(dataset), samples))]
    batch = collate_series(items, pad_to=meta.get("pad_to"))
    return {"x": batch["x"], "timespans": batch["timespans"], "mask": batch["mask"]}


def inspect(
    model: Annotated[Path, typer.Argument(help="checkpoint file written by liquidflow (train / save_model)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the figures and report.html")],
    data: Annotated[
        str | None,
        typer.Option(
            help="data to analyse: an .npz with x (B, T, I) (optional: timespans, mask), or a csv/parquet file "
            "read the way the model was trained. Default: the training run's data (--split) if the checkpoint "
            "describes it, else a noise probe."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="split of the training data: train, val, test or all")] = "test",
    samples: Annotated[int, typer.Option(min=1, help="at most this many sequences are analysed")] = 256,
    steps: Annotated[int, typer.Option(min=1, help="integrated-gradient steps")] = 32,
    reduce: Annotated[str, typer.Option(help="sequence outputs: attribute the 'last' step or the 'mean'")] = "last",
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Draw the wiring, neuron dynamics and sensory->motor influence of MODEL into OUT/report.html."""
    from liquidflow.interpret import inspect_model

    from ._models import is_risk_model, liquid_core, load_checkpoint

    net, meta = load_checkpoint(model)
    if is_risk_model(net):  # a maintenance model: its liquid core, on the log-transformed features
        net = liquid_core(net, model)
        logs = meta.get("preprocessing", {}).get("log_features", [])
        typer.echo(f"note: failure-risk model: its liquid core, on inputs with log(x) taken first for {logs}")
    arrays: dict[str, Any] = {}
    if data is not None and data.endswith(".npz"):
        arrays = _load_npz(Path(data))
    elif data is not None or "data_config" in meta:
        try:
            arrays = _data_from_metadata(meta, data, split, samples)
        except Exception as e:  # the run's data may be gone or unreadable here: say so, then probe
            if data is not None:
                raise typer.BadParameter(f"cannot read {data}: {e}", param_hint="--data") from e
            typer.echo(f"note: could not rebuild the training data ({type(e).__name__}: {e}); using a noise probe")
    output_names = meta.get("output_names")
    if output_names is None and isinstance(meta.get("classes"), list):
        output_names = [f"class {c}" for c in meta["classes"]]
    try:
        path = inspect_model(
            net,
            out,
            arrays.get("x"),
            arrays.get("timespans"),
            arrays.get("mask"),
            input_names=meta.get("input_names"),
            output_names=output_names,
            metadata=meta,
            steps=steps,
            reduce=reduce,
            max_samples=samples,
            progress=progress,
        )
    except TypeError as e:
        raise typer.BadParameter(f"{e} (inspect explains LTC and CfC models)", param_hint="MODEL") from e
    typer.echo(f"wrote {path} (figures in {out})")


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
