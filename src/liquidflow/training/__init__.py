"""Training: complete sequence models, baselines, the training loops.

``SequenceModel``, ``build_model``, the baselines, the failure-risk model (``RiskModel``) and the
in-memory loop (``train_loop``, used by the maintenance and robustness applications) need only
torch. The Lightning pieces (``SequenceTask``, ``fit``, ``TrainConfig``, ``evaluate_model``) are
imported on first use, so ``import liquidflow.training`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._baselines import DtGRU as DtGRU
from ._baselines import DtLSTM as DtLSTM
from ._baselines import DtTransformer as DtTransformer
from ._model import KINDS as KINDS
from ._model import TASKS as TASKS
from ._model import SequenceModel as SequenceModel
from ._model import build_model as build_model
from ._risk import LIQUID_KINDS as LIQUID_KINDS
from ._risk import RISK_KINDS as RISK_KINDS
from ._risk import RiskExportView as RiskExportView
from ._risk import RiskModel as RiskModel
from ._risk import risk_from_output as risk_from_output
from ._risk import risk_metadata as risk_metadata
from ._risk import rul_from_output as rul_from_output
from ._risk import upgrade_legacy_payload as upgrade_legacy_payload

_LAZY = {
    "SequenceTask": "._module",
    "TrainConfig": "._config",
    "fit": "._fit",
    "fit_seeds": "._fit",
    "evaluate_model": "._fit",
    "predict_model": "._fit",
    "seed_everything": "._fit",
    "dataset_from_metadata": "._pipeline",
    "train_loop": "._loop",
    "LoopConfig": "._loop",
    "LoopResult": "._loop",
}

__all__ = [
    "KINDS",
    "LIQUID_KINDS",
    "RISK_KINDS",
    "TASKS",
    "DtGRU",
    "DtLSTM",
    "DtTransformer",
    "RiskExportView",
    "RiskModel",
    "SequenceModel",
    "build_model",
    "risk_from_output",
    "risk_metadata",
    "rul_from_output",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
