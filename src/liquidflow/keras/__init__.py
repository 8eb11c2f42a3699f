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

from ._cells import CFC_MODES as CFC_MODES
from ._cells import CfCCell as CfCCell
from ._cells import MixedMemoryLSTMCell as MixedMemoryLSTMCell
from ._cells import MixedMemoryRNN as MixedMemoryRNN
from ._cells import WiredCfCCell as WiredCfCCell
from ._common import ACTIVATIONS as ACTIVATIONS
from ._common import SOLVERS as SOLVERS
from ._layers import LTC as LTC
from ._layers import CfC as CfC
from ._ltc_cell import LTCCell as LTCCell


def explain(layer: LTC | CfC, x: object, timespans: object = None, mask: object = None, training: bool = False) -> str:
    """Which code runs a sequence call of ``layer`` on this Keras backend, and why not the others.

    On the torch backend: ``native`` (the C kernels of ``liquidflow._ops``, CPU), ``fused`` (their
    torch-op twins) or ``loop`` (keras.ops in a loop) with the reason; on TensorFlow and JAX always
    the keras.ops step inside the backend's compiled loop (``tf.while_loop``, ``jax.lax.scan``).
    ``x`` (B, T, F), ``timespans`` (B, T) or (B, T, 1), ``mask`` (B, T), as for a call.
    """
    backend = _keras.backend.backend()
    if backend != "torch":
        return f"sequence path: loop (keras.ops step in the {backend} backend's own loop)"
    import torch

    from ._torch_kernels import explain as _explain

    xt = _keras.ops.convert_to_tensor(x)
    ts = None if timespans is None else _keras.ops.convert_to_tensor(timespans, dtype=xt.dtype)
    if ts is not None and ts.dim() == 2:
        ts = ts.unsqueeze(-1)
    m = None if mask is None else torch.as_tensor(_keras.ops.convert_to_numpy(mask)).bool()
    return _explain(layer, xt, ts, m, training)


def use_path(path: str | None) -> object:
    """Context manager forcing the path of the layers' sequence calls on the torch backend
    (``"native"``, ``"fused"``, ``"loop"``; None: choose); tests compare the paths with it."""
    if _keras.backend.backend() != "torch":
        raise RuntimeError(f"use_path applies to the torch backend of Keras; this one is {_keras.backend.backend()}")
    from ._torch_kernels import use_path as _use_path

    return _use_path(path)


__all__ = [
    "ACTIVATIONS",
    "CFC_MODES",
    "LTC",
    "SOLVERS",
    "CfC",
    "CfCCell",
    "LTCCell",
    "MixedMemoryLSTMCell",
    "MixedMemoryRNN",
    "WiredCfCCell",
    "explain",
    "use_path",
]
