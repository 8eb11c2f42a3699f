"""Training: complete sequence models, baselines, and (with Lightning installed) the training loop.

``SequenceModel``, ``build_model`` and the baselines need only torch. The Lightning pieces
(``SequenceTask``, ``fit``, ``TrainConfig``, ``evaluate_model``) are imported on first use, so
``import liquidflow.training`` stays light.
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

_LAZY = {
    "SequenceTask": "._module",
    "TrainConfig": "._config",
    "fit": "._fit",
    "fit_seeds": "._fit",
    "evaluate_model": "._fit",
    "predict_model": "._fit",
    "seed_everything": "._fit",
}

__all__ = [
    "KINDS",
    "TASKS",
    "DtGRU",
    "DtLSTM",
    "DtTransformer",
    "SequenceModel",
    "build_model",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
