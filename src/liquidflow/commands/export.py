"""``liquidflow export``: a checkpoint to ONNX or standalone C, with an optional footprint report."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class Format(str, Enum):
    c = "c"
    onnx = "onnx"


class CDtype(str, Enum):
    float32 = "float32"
    int8 = "int8"


class OnnxMode(str, Enum):
    step = "step"
    sequence = "sequence"


def export(
    model: Annotated[Path, typer.Argument(help="checkpoint file written by liquidflow.checkpoint.save_model")],
    format: Annotated[Format, typer.Option("--format", "-f", help="c (header + source) or onnx")] = Format.c,
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (c) or .onnx file / folder")] = Path("export"),
    prefix: Annotated[str, typer.Option(help="C symbol prefix (a C identifier)")] = "lf",
    dtype: Annotated[CDtype, typer.Option(help="C weights: float32, or int8 per output channel")] = CDtype.float32,
    mode: Annotated[
        OnnxMode, typer.Option(help="ONNX graph: step (streaming) or sequence (Scan over time)")
    ] = OnnxMode.step,
    mask: Annotated[
        bool,
        typer.Option(
            "--mask",
            help="ONNX sequence only: add an input mask (B, T) bool; a False step keeps the state and "
            "outputs zeros (padded or gappy batches, as the PyTorch layers' mask=)",
        ),
    ] = False,
    target: Annotated[str, typer.Option(help="footprint target: cortex-m4, cortex-m7 or cortex-m3")] = "cortex-m4",
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="C only: compile for the target and print flash, RAM and instructions per step "
            "(needs arm-none-eabi-gcc and qemu-system-arm)",
        ),
    ] = False,
    report_json: Annotated[Path | None, typer.Option(help="also write the footprint report as JSON here")] = None,
) -> None:
    """Export a trained model to ONNX or to C99 for microcontrollers (see docs/export.md)."""
    from liquidflow.export import TARGETS, ToolError, footprint, to_c, to_onnx

    from ._models import is_risk_model, liquid_core, load_checkpoint, one_line

    if target not in TARGETS:
        raise typer.BadParameter(f"target must be one of {sorted(TARGETS)}; got {target!r}", param_hint="--target")
    if report and format is not Format.c:
        raise typer.BadParameter("--report applies to --format c", param_hint="--report")
    if mask and (format is not Format.onnx or mode is not OnnxMode.sequence):
        raise typer.BadParameter(
            f"--mask applies to --format onnx --mode sequence; got --format {format.value} --mode {mode.value}",
            param_hint="--mask",
        )
    net, _ = load_checkpoint(model)
    if is_risk_model(net):  # a maintenance model: its liquid core, fed the log-transformed features
        view = liquid_core(net, model)
        pre = net.preprocessing()
        logs = pre["log_features"]
        typer.echo(
            f"note: failure-risk model; inputs {net.features}"
            + (f" with log(x) taken first for {logs}" if logs else "")
            + f"; timespans = dt_h / {pre['time_unit_h']:g}; outputs (risk logit, RUL / {net.rul_cap_days:g} days)"
        )
        net = view
    try:
        if format is Format.onnx:
            name = f"{model.stem}-{mode.value}{'-masked' if mask else ''}.onnx"
            path = out / name if out.suffix != ".onnx" else out
            to_onnx(net, path, mode=mode.value, mask=mask)
            typer.echo(f"wrote {path} ({mode.value} graph{' with a mask input' if mask else ''})")
            return
        gen = to_c(net, out, prefix=prefix, dtype=dtype.value)
    except (TypeError, ValueError) as e:
        raise typer.BadParameter(one_line(e)) from e
    typer.echo(f"wrote {gen.header} and {gen.source} ({gen.kind}; {dtype.value} weights, {gen.weight_bytes:,} B)")
    if report:
        try:
            fp = footprint(net, target=target, dtype=dtype.value)
        except ToolError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from e
        typer.echo(fp.table())
        if report_json is not None:
            report_json.write_text(json.dumps(fp.as_dict(), indent=2))


def register(app: typer.Typer) -> None:
    app.command("export")(export)
