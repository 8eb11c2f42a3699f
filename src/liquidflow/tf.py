"""TensorFlow entry point: the Keras 3 layers of :mod:`liquidflow.keras` on the TensorFlow backend.

``from liquidflow.tf import LTC, CfC`` works with ``tf.keras`` (which is Keras 3 from TensorFlow 2.16
on). Needs TensorFlow: ``pip install 'liquidflow[tf]'``. For the JAX or PyTorch backends of Keras use
:mod:`liquidflow.keras` directly.
"""

from __future__ import annotations

import os

try:
    import tensorflow as _tf  # noqa: F401
except ImportError as e:
    raise ImportError(
        "liquidflow.tf needs TensorFlow, which is not installed: pip install 'liquidflow[tf]' "
        "(or use liquidflow.keras with the JAX or PyTorch backend of Keras 3)"
    ) from e

try:
    import keras as _keras
except ImportError as e:  # pragma: no cover - tensorflow>=2.16 depends on keras 3
    raise ImportError("liquidflow.tf needs Keras 3: pip install 'liquidflow[tf]'") from e

if os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true", "yes"):
    raise ImportError(
        "liquidflow.tf needs tf.keras to be Keras 3, but TF_USE_LEGACY_KERAS is set (tf.keras is then Keras 2); "
        "unset TF_USE_LEGACY_KERAS"
    )
if _keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"liquidflow.tf needs the TensorFlow backend of Keras, but KERAS_BACKEND is {_keras.backend.backend()!r}; "
        "set KERAS_BACKEND=tensorflow, or import the same layers from liquidflow.keras"
    )

from .keras import LTC as LTC
from .keras import CfC as CfC
from .keras import CfCCell as CfCCell
from .keras import LTCCell as LTCCell
from .keras import MixedMemoryLSTMCell as MixedMemoryLSTMCell
from .keras import MixedMemoryRNN as MixedMemoryRNN
from .keras import WiredCfCCell as WiredCfCCell

__all__ = ["LTC", "CfC", "CfCCell", "LTCCell", "MixedMemoryLSTMCell", "MixedMemoryRNN", "WiredCfCCell"]
