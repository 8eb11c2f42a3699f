"""The maintenance application's models and files, on the library: the risk models are
:class:`liquidflow.training.RiskModel` (a registered model class of the training package, built on
its CfC/LTC layers and its LSTM/GRU/Transformer baselines), saved by :mod:`liquidflow.checkpoint`
with the alarm threshold, horizon, input names and preprocessing as metadata.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..checkpoint import load_model, save_model
from ..training import LIQUID_KINDS, RISK_KINDS, RiskModel
from ..training import risk_metadata as _risk_metadata

KINDS = RISK_KINDS  #: cfc, ltc (liquid), lstm, gru, transformer (the training package's baselines)
__all__ = ["KINDS", "LIQUID_KINDS", "load_risk_model", "save_risk_model"]


def save_risk_model(model: RiskModel, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Save ``model`` as a liquidflow checkpoint with its maintenance metadata (input names, horizon,
    preprocessing) plus the JSON-safe ``extra`` (e.g. ``threshold``, ``budget``); returns the path."""
    if not isinstance(model, RiskModel):
        raise TypeError(f"model must be a RiskModel; got {type(model).__name__}")
    return save_model(model, path, _risk_metadata(model, **(extra or {})))


def load_risk_model(path: str | os.PathLike[str]) -> tuple[RiskModel, dict[str, Any]]:
    """Load a risk model (a checkpoint from ``liquidflow maintenance train`` or the demo, or a file in
    the old ``liquidflow.maintenance/1`` format); returns (model in eval mode, metadata).

    Any other file raises a one-line ValueError saying what it is and what it lacks."""
    model, meta = load_model(path)
    if not isinstance(model, RiskModel):
        task = getattr(model, "task", None)
        what = f"a {type(model).__name__}" + (f" (task {task!r})" if task else "")
        raise ValueError(
            f"{str(path)!r} holds {what}, not a failure-risk model: it lacks the risk and RUL outputs and the "
            "alarm metadata (threshold, horizon_days); train one with `liquidflow maintenance train`"
        )
    return model, meta
