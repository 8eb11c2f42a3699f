"""Reading model files for the commands: every command takes every model file the others write
(``liquidflow train``: a SequenceModel; ``liquidflow maintenance train`` and the demo: a RiskModel;
the maintenance application's older ``.pt`` files), or says in one line what the file lacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load_checkpoint(path: Path, param_hint: str = "MODEL") -> tuple[Any, dict[str, Any]]:
    """``liquidflow.checkpoint.load_model`` with its errors as one line on the command line."""
    from liquidflow.checkpoint import load_model

    try:
        return load_model(path)
    except (OSError, ValueError, TypeError) as e:
        raise typer.BadParameter(one_line(e), param_hint=param_hint) from e


def load_risk(path: Path, param_hint: str = "--model") -> tuple[Any, dict[str, Any]]:
    """A failure-risk model (``liquidflow maintenance train``), or one line saying what the file lacks."""
    from liquidflow.maintenance import load_risk_model

    try:
        return load_risk_model(path)
    except (OSError, ValueError, TypeError) as e:
        raise typer.BadParameter(one_line(e), param_hint=param_hint) from e


def load_trained(path: Path, command: str) -> tuple[Any, dict[str, Any]]:
    """A model written by ``liquidflow train`` with its data pipeline (for ``evaluate`` / ``predict``),
    or one line saying why the file is not one."""
    model, meta = load_checkpoint(path, "CHECKPOINT")
    if is_risk_model(model):
        raise not_for_risk_models(path, command)
    if "data_config" not in meta:
        raise typer.BadParameter(f"{path} has no data pipeline in its metadata (was it written by train?)")
    return model, meta


def liquid_core(model: Any, path: Path) -> Any:
    """The liquid core of a failure-risk model as export and inspect take it (``RiskExportView``), or
    one line saying why it has none."""
    from liquidflow.training import RiskExportView

    try:
        return RiskExportView(model)
    except ValueError as e:
        raise typer.BadParameter(f"{path}: {one_line(e)}", param_hint="MODEL") from e


def is_risk_model(model: Any) -> bool:
    from liquidflow.training import RiskModel

    return isinstance(model, RiskModel)


def not_for_risk_models(path: Path, command: str) -> typer.BadParameter:
    """The one-line answer of ``evaluate`` / ``predict`` to a maintenance risk model."""
    instead = {
        "evaluate": f"liquidflow maintenance evaluate READINGS --model {path}",
        "predict": f"liquidflow maintenance monitor --model {path} < readings.csv",
    }[command]
    return typer.BadParameter(
        f"{path} is a failure-risk model from `liquidflow maintenance train` (no data pipeline of "
        f"`liquidflow train` in its metadata): use `{instead}`",
        param_hint="CHECKPOINT",
    )
