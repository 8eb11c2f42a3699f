"""Keras 3 front end: LTC and CfC layers and cells written once with ``keras.ops``.

They run on every Keras 3 backend (TensorFlow, JAX, PyTorch) with exactly the math of docs/math.md
and the parameter names of ``liquidflow.torch``; ``liquidflow.compat.keras_torch`` copies weights
between the two. TensorFlow users can import the same classes from ``liquidflow.tf``.
See docs/keras.md.
"""

try:
    import keras as _keras
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "liquidflow.keras needs Keras 3: pip install 'liquidflow[keras]' (and a backend: TensorFlow via "
        "'liquidflow[tf]', or PyTorch, or JAX)"
    ) from e

if not _keras.__version__.startswith("3."):  # pragma: no cover - depends on the environment
    raise ImportError(f"liquidflow.keras needs Keras 3; found keras {_keras.__version__}: pip install 'keras>=3.5'")

from ._cells import ACTIVATIONS as ACTIVATIONS
from ._cells import CFC_MODES as CFC_MODES
from ._cells import SOLVERS as SOLVERS
from ._cells import CfCCell as CfCCell
from ._cells import LTCCell as LTCCell
from ._cells import MixedMemoryLSTMCell as MixedMemoryLSTMCell
from ._cells import WiredCfCCell as WiredCfCCell
from ._layers import LTC as LTC
from ._layers import CfC as CfC

__all__ = [
    "ACTIVATIONS",
    "CFC_MODES",
    "LTC",
    "SOLVERS",
    "CfC",
    "CfCCell",
    "LTCCell",
    "MixedMemoryLSTMCell",
    "WiredCfCCell",
]
