"""What the Keras cells share: activations, wiring and argument checks, initialisers, the step-input
convention ``(x, dt)``, matrix products and the sparse synapse sums (see :mod:`liquidflow.keras._cells`
for the cells themselves)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import keras
from keras import ops

from .._spec import (
    LECUN_A,
    LECUN_B,
    LTC_SOLVERS,
    MAPPINGS,
    SPARSE_FRACTION,
    check_choice,
    check_int,
)
from ..wirings import FullyConnected, Wiring

_register = keras.saving.register_keras_serializable(package="liquidflow")

SOLVERS = LTC_SOLVERS


def lecun_tanh(x: Any) -> Any:
    return LECUN_A * ops.tanh(LECUN_B * x)


ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "lecun_tanh": lecun_tanh,
    "tanh": ops.tanh,
    "relu": ops.relu,
    "gelu": lambda x: ops.gelu(x, approximate=False),
    "silu": ops.silu,
}


# ---------------------------------------------------------------------------------------- helpers
def as_wiring(units: Wiring | int | dict[str, Any], name: str = "units") -> Wiring:
    """``units`` as a Wiring: a Wiring (the user's object, which the cell builds in place, or copies
    when it is built for another input size: ``Wiring.built_for``), an int (fully connected) or a
    ``get_config`` dict."""
    if isinstance(units, dict):
        return Wiring.from_config(units)
    if isinstance(units, Wiring):
        return units
    if isinstance(units, int) and not isinstance(units, bool):
        return FullyConnected(units)
    raise TypeError(f"{name} must be a Wiring, an int or a wiring config dict; got {type(units).__name__}")


def _check_mapping(name: str, value: str | None) -> str | None:
    check_choice(name, value, MAPPINGS)
    return value


_check_int = check_int


def _uniform(lo: float, hi: float, positive: bool = False) -> Callable[..., Any]:
    """Initializer U(lo, hi); for positive parameters the raw value softplus^-1(U(lo, hi))."""
    base = keras.initializers.RandomUniform(lo, hi)

    def init(shape: Sequence[int], dtype: Any = None) -> Any:
        value = base(shape, dtype=dtype)
        if positive:
            value = value + ops.log(-ops.expm1(-value))  # inverse softplus
        return value

    return init


def _constant(array: np.ndarray) -> Callable[..., Any]:
    def init(shape: Sequence[int], dtype: Any = None) -> Any:
        if tuple(shape) != array.shape:
            raise ValueError(f"constant of shape {array.shape} cannot initialise a weight of shape {tuple(shape)}")
        return ops.convert_to_tensor(array, dtype=dtype)

    return init


def _torch_bias_init(fan_in: int) -> keras.initializers.Initializer:
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return keras.initializers.RandomUniform(-bound, bound)


def split_step_inputs(inputs: Any) -> tuple[Any, Any]:
    """``x`` or ``(x, dt)`` -> (x, dt) with dt None, a float, or a (B, 1) tensor."""
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != 2:
            raise ValueError(f"cell inputs must be x or a pair (x, dt); got a sequence of {len(inputs)} items")
        x, dt = inputs
    else:
        x, dt = inputs, None
    if len(x.shape) != 2:
        raise ValueError(f"cell input x must be 2-D (batch, features); got shape {tuple(x.shape)}")
    if dt is None or isinstance(dt, (int, float)):
        return x, dt
    dt = ops.cast(dt, x.dtype)
    if len(dt.shape) == 0:
        return x, dt
    if len(dt.shape) == 1:
        dt = ops.expand_dims(dt, -1)
    if len(dt.shape) != 2 or (dt.shape[-1] is not None and dt.shape[-1] != 1):
        raise ValueError(f"dt must be a float, (batch,) or (batch, 1); got shape {tuple(dt.shape)}")
    return x, dt


def _mm(a: Any, b: Any) -> Any:
    """(B, K) @ (K, M), or (B, T, K) @ (K, M) for a whole sequence.

    Per step (2-D) this is the ``@`` of the backend's own tensors: ``ops.matmul`` costs ~14 µs per
    call on the torch backend (~2 µs for torch's own) and computes float64 in float32 there. For a
    sequence, float64 goes through einsum for the same reason; float32 keeps ops.matmul, much faster
    than einsum there for small matrices.
    """
    if len(a.shape) == 2 and len(b.shape) == 2:
        return ops.convert_to_tensor(a) @ ops.convert_to_tensor(b)
    if keras.backend.standardize_dtype(a.dtype) == "float64":
        return ops.einsum("btk,km->btm" if len(a.shape) == 3 else "bk,km->bm", a, b)
    return ops.matmul(a, b)


def _time_axis(x: Any, dt: Any) -> tuple[Any, Any]:
    """One step (x (B, I), dt from split_step_inputs) as a sequence of length 1: (B, 1, I), dt (B, 1, 1)."""
    x = ops.expand_dims(x, 1)
    if dt is None:
        dt = 1.0
    if not isinstance(dt, (int, float)):
        dt = ops.reshape(dt, (-1, 1, 1))
    return x, dt


def _input_dim(input_shape: Any, who: str) -> int:
    """The feature count from a step input shape (B, I), or from [(B, I), dt_shape]."""
    shape = input_shape
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    if len(shape) != 2 or shape[-1] is None:
        raise ValueError(f"{who} must be built with a step input shape (batch, features); got {tuple(shape)}")
    return int(shape[-1])


def _first_state(states: Any) -> Any:
    """The one state tensor of a cell from ``states``: a list of one tensor (the Keras contract) or,
    leniently, the tensor itself."""
    if isinstance(states, (list, tuple)):
        if len(states) != 1:
            raise ValueError(f"this cell has one state tensor; got a list of {len(states)}")
        return states[0]
    return states


# A synapse matrix with at most this share of its entries present is computed from an edge list.
SPARSE_DENSITY = SPARSE_FRACTION


def _edge_list(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(gather, flat, scatter) for a synapse mask (pre, post) with few synapses, or None: compute it dense.

    gather (pre, E): one-hot of each synapse's presynaptic neuron; flat (E,): the synapse's index in
    the flattened matrix; scatter (E, post): one-hot of its postsynaptic neuron. Gathering the
    presynaptic potentials and summing the synapses' terms into their neurons are then matrix
    products (a gather op costs more per call than the product on the torch backend).
    """
    pre, post = np.nonzero(mask)
    if pre.size == 0 or pre.size > SPARSE_DENSITY * mask.size:
        return None
    edges = np.arange(pre.size)
    gather = np.zeros((mask.shape[0], pre.size), np.float32)
    gather[pre, edges] = 1.0
    scatter = np.zeros((pre.size, mask.shape[1]), np.float32)
    scatter[edges, post] = 1.0
    return gather, (pre * mask.shape[1] + post).astype(np.int32), scatter


def _synapse_weights(
    sigma: Any, mu: Any, w_numer: Any, w_denom: Any, edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None
) -> dict[str, Any]:
    """The weights of one synapse matrix (pre, post) in the form ``_synapses`` uses: dense or edges."""
    if edges is None:
        return {"sigma": sigma, "sigma_mu": sigma * mu, "w_numer": w_numer, "w_denom": w_denom}
    gather, flat, scatter = edges
    index = ops.convert_to_tensor(flat, dtype="int32")

    def pick(p: Any) -> Any:
        return ops.take(ops.reshape(p, (-1,)), index)  # (E,)

    scatter_t = ops.convert_to_tensor(scatter, dtype=w_numer.dtype)
    return {
        "gather": ops.convert_to_tensor(gather, dtype=w_numer.dtype) * pick(sigma),  # (pre, E): sigma folded in
        "sigma_mu": pick(sigma * mu),
        # (E, 2 post): row e holds synapse e's two weights at its postsynaptic neuron
        "scatter": ops.concatenate(
            [ops.expand_dims(pick(w_numer), -1) * scatter_t, ops.expand_dims(pick(w_denom), -1) * scatter_t],
            axis=1,
        ),
    }


def _synapses(u: Any, weights: dict[str, Any]) -> tuple[Any, Any]:
    """Sum over presynaptic i of [w_numer, w_denom][i, j] sigmoid(sigma (u_i - mu))[i, j]: u (..., pre).

    Dense: the (..., pre, post) sigmoids, then multiply-and-sum (einsum is ~10x slower on the torch
    backend for these sizes; this beat one product over stacked or concatenated weights on TensorFlow
    and torch). Edge list: the E sigmoids of the existing synapses, gathered and summed by matrix products.
    """
    if "gather" in weights:
        a = ops.sigmoid(_mm(u, weights["gather"]) - weights["sigma_mu"])  # (..., E)
        numer, denom = ops.split(_mm(a, weights["scatter"]), 2, axis=-1)
        return numer, denom
    a = ops.sigmoid(weights["sigma"] * ops.expand_dims(u, -1) - weights["sigma_mu"])  # (..., pre, post)
    return ops.sum(a * weights["w_numer"], axis=-2), ops.sum(a * weights["w_denom"], axis=-2)


def serialize_cell(cell: keras.layers.Layer) -> dict[str, Any]:
    """A cell's ``keras.saving`` dict without its ``build_config`` (the input shape it was built
    with), so that a layer's config is the same before and after it is built, and after from_config."""
    config = keras.saving.serialize_keras_object(cell)
    config.pop("build_config", None)
    return config


# Layers whose variables an ncps.keras weights file already gave them (``_ncps_weights``): Keras'
# loader still visits them at their own paths, which such a file does not have.
LOADED_FROM_NCPS: set[int] = set()


class _SkipWhenLoadedFromNcps:
    """``load_own_variables`` that does nothing once after the owning layer read an ncps.keras file."""

    def load_own_variables(self, store: Any) -> None:
        if id(self) in LOADED_FROM_NCPS:
            LOADED_FROM_NCPS.discard(id(self))
            return
        super().load_own_variables(store)  # type: ignore[misc]


class _Dense(_SkipWhenLoadedFromNcps, keras.layers.Dense):
    """keras.layers.Dense for the cells' maps (only ``load_own_variables`` differs, see above)."""


class _Cell(_SkipWhenLoadedFromNcps, keras.layers.Layer):
    """The Keras RNN cell contract the liquid cells share (as ``keras.layers.SimpleRNNCell``):
    ``state_size``, ``output_size``, ``call(inputs, states, training=None) -> (output, [new_state])``
    (always a list, also when ``states`` was passed as a bare tensor) and ``get_initial_state``."""

    def get_initial_state(self, batch_size: Any = None) -> list[Any]:
        return [ops.zeros((batch_size, self.state_size), dtype=self.compute_dtype)]
