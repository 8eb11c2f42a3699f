"""Keras 3 cells (one step): LTC, CfC, wired CfC and the mixed-memory LSTM, written with keras.ops.

The equations are those of docs/math.md, and the parameters carry the names of the torch cells
(``gleak_raw``, ``w_raw``, ``sigma`` ..., heads ``f1``, ``f2``, ``time_a``, ``time_b``), so that
``liquidflow.compat.keras_torch`` can copy weights one to one. Layouts differ only where Keras
conventions do: a Dense ``kernel`` is the transpose of a torch ``Linear.weight``, and the CfC
``sparsity_mask`` is stored in kernel layout (inputs+hidden, hidden).

A cell is called as ``cell(inputs, states)`` where ``inputs`` is ``x`` (B, I) — one step of elapsed
time 1 — or a pair ``(x, dt)`` with ``dt`` a float, (B,) or (B, 1). It returns ``(output, new_states)``
like every Keras RNN cell, so ``keras.layers.RNN(cell)`` works with regular time steps; the sequence
layers :class:`~liquidflow.keras.LTC` and :class:`~liquidflow.keras.CfC` add irregular time and masks.
The number of inputs is inferred when the cell is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import keras
from keras import ops

from .._spec import (
    CFC_MODES,
    HEAD_ACTIVATIONS,
    LECUN_A,
    LECUN_B,
    LTC_INIT_RANGES,
    LTC_SOLVERS,
    MAPPINGS,
    POSITIVE_PARAMS,
    SPARSE_FRACTION,
    TABLEAUX,
    check_choice,
    check_int,
    ncp_layer_masks,
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
    """A copy of ``units`` as a Wiring: a Wiring, an int (fully connected) or a ``get_config`` dict."""
    if isinstance(units, dict):
        return Wiring.from_config(units)
    if isinstance(units, Wiring):
        return units.copy()
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


def _first_state(states: Any) -> tuple[Any, bool]:
    if isinstance(states, (list, tuple)):
        if len(states) != 1:
            raise ValueError(f"this cell has one state tensor; got {len(states)}")
        return states[0], True
    return states, False


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


class _Cell(keras.layers.Layer):
    """Shared bits: ``state_size`` / ``output_size`` and config round trips of wirings."""

    def get_initial_state(self, batch_size: Any = None) -> list[Any]:
        return [ops.zeros((batch_size, self.state_size), dtype=self.compute_dtype)]


# -------------------------------------------------------------------------------------------- LTC
@_register
class LTCCell(_Cell):
    """Liquid time-constant cell (docs/math.md section 2); one call integrates one interval dt.

    Args:
        wiring: a :class:`~liquidflow.wirings.Wiring` (copied; built with the input size on first
            call if it is not built yet), an int (fully connected) or a wiring config dict.
        input_mapping / output_mapping: ``"affine"`` (w x + b), ``"linear"`` (w x) or None.
        ode_unfolds: solver sub-steps per interval; epsilon: added to the semi-implicit denominator.
        solver: ``"semi_implicit"`` (default), ``"euler"``, ``"midpoint"``, ``"heun"`` or ``"rk4"``.

    Positive parameters are stored raw (``gleak_raw``, ``cm_raw``, ``w_raw``, ``sensory_w_raw``)
    with value = softplus(raw), exactly as in ``liquidflow.torch.LTCCell``.
    """

    def __init__(
        self,
        wiring: Wiring | int | dict[str, Any],
        input_mapping: str | None = "affine",
        output_mapping: str | None = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        solver: str = "semi_implicit",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wiring = as_wiring(wiring, "wiring")
        self.input_mapping = _check_mapping("input_mapping", input_mapping)
        self.output_mapping = _check_mapping("output_mapping", output_mapping)
        self.ode_unfolds = _check_int("ode_unfolds", ode_unfolds, 1)
        self.epsilon = float(epsilon)
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; valid names: {sorted(SOLVERS)}")
        self.solver = solver

    @property
    def state_size(self) -> int:
        return self.wiring.units

    @property
    def motor_size(self) -> int:
        return self.wiring.output_dim if self.wiring.output_dim is not None else self.wiring.units

    @property
    def output_size(self) -> int:
        return self.motor_size

    @property
    def sensory_size(self) -> int | None:
        return self.wiring.input_dim

    def build(self, input_shape: Any) -> None:
        n_in = _input_dim(input_shape, "LTCCell")
        self.wiring.build(n_in)
        assert self.wiring.sensory_adjacency_matrix is not None
        n, m = self.state_size, self.motor_size

        def param(name: str, shape: tuple[int, ...]) -> Any:
            lo, hi = LTC_INIT_RANGES[name]
            positive = name in POSITIVE_PARAMS
            return self.add_weight(
                name=f"{name}_raw" if positive else name, shape=shape, initializer=_uniform(lo, hi, positive)
            )

        self.gleak_raw = param("gleak", (n,))
        self.vleak = param("vleak", (n,))
        self.cm_raw = param("cm", (n,))
        self.w_raw = param("w", (n, n))
        self.sigma = param("sigma", (n, n))
        self.mu = param("mu", (n, n))
        adjacency = self.wiring.adjacency_matrix.astype(np.float32)
        sensory = self.wiring.sensory_adjacency_matrix.astype(np.float32)
        self.erev = self.add_weight(name="erev", shape=(n, n), initializer=_constant(adjacency))
        self.sensory_w_raw = param("sensory_w", (n_in, n))
        self.sensory_sigma = param("sensory_sigma", (n_in, n))
        self.sensory_mu = param("sensory_mu", (n_in, n))
        self.sensory_erev = self.add_weight(name="sensory_erev", shape=(n_in, n), initializer=_constant(sensory))
        self.sparsity_mask = self.add_weight(
            name="sparsity_mask", shape=(n, n), initializer=_constant(np.abs(adjacency)), trainable=False
        )
        self.sensory_sparsity_mask = self.add_weight(
            name="sensory_sparsity_mask", shape=(n_in, n), initializer=_constant(np.abs(sensory)), trainable=False
        )
        # sparse wirings (NCPs) compute only the synapses that exist; the masks stay fixed
        self._edges = _edge_list(np.abs(adjacency))
        self._sensory_edges = _edge_list(np.abs(sensory))
        linear_in = self.input_mapping in ("affine", "linear")
        linear_out = self.output_mapping in ("affine", "linear")
        self.input_w = self.add_weight(name="input_w", shape=(n_in,), initializer="ones") if linear_in else None
        self.input_b = (
            self.add_weight(name="input_b", shape=(n_in,), initializer="zeros")
            if self.input_mapping == "affine"
            else None
        )
        self.output_w = self.add_weight(name="output_w", shape=(m,), initializer="ones") if linear_out else None
        self.output_b = (
            self.add_weight(name="output_b", shape=(m,), initializer="zeros")
            if self.output_mapping == "affine"
            else None
        )

    def effective_parameters(self) -> dict[str, Any]:
        """All parameters as they enter the equations of docs/math.md (positives mapped)."""
        out: dict[str, Any] = {
            "gleak": ops.softplus(self.gleak_raw),
            "vleak": self.vleak,
            "cm": ops.softplus(self.cm_raw),
            "w": ops.softplus(self.w_raw),
            "sigma": self.sigma,
            "mu": self.mu,
            "erev": self.erev,
            "sensory_w": ops.softplus(self.sensory_w_raw),
            "sensory_sigma": self.sensory_sigma,
            "sensory_mu": self.sensory_mu,
            "sensory_erev": self.sensory_erev,
            "sparsity_mask": self.sparsity_mask,
            "sensory_sparsity_mask": self.sensory_sparsity_mask,
        }
        for name in ("input_w", "input_b", "output_w", "output_b"):
            p = getattr(self, name)
            if p is not None:
                out[name] = p
        return out

    def _map_inputs(self, x: Any) -> Any:
        if self.input_w is not None:
            x = x * self.input_w
        if self.input_b is not None:
            x = x + self.input_b
        return x

    def _map_outputs(self, v: Any) -> Any:
        y = v[:, : self.motor_size]
        if self.output_w is not None:
            y = y * self.output_w
        if self.output_b is not None:
            y = y + self.output_b
        return y

    # The sequence layer runs ``precompute`` once for the whole sequence (everything that does not
    # depend on the state: input mapping, sensory synapses, leak terms, C_m / h) and ``step_weights``
    # once per call, then ``step_pre`` at every step; ``call`` (one step) runs the same three.
    @property
    def pre_size(self) -> int:
        """Width of ``precompute``'s last axis: [numer, denom + C_m / h + eps, C_m / h] (semi-implicit),
        or [numer, denom, h] (explicit solvers)."""
        return 3 * self.state_size if self.solver == "semi_implicit" else 2 * self.state_size + 1

    def precompute(self, x: Any, dt: Any) -> Any:
        """State-independent terms of all steps: x (B, T, I), dt a float or (B, T, 1) -> (B, T, pre_size).

        The sensory synapses see the input held over the interval, so their conductances (a sigmoid
        over (B, T, I, N)) and the leak terms are computed here once, not at every ODE unfold.
        """
        x = self._map_inputs(x)
        ws = ops.softplus(self.sensory_w_raw) * self.sensory_sparsity_mask  # (I, N)
        weights = _synapse_weights(self.sensory_sigma, self.sensory_mu, ws * self.sensory_erev, ws, self._sensory_edges)
        numer, denom = _synapses(x, weights)  # (B, T, N) each
        gleak = ops.softplus(self.gleak_raw)
        numer = gleak * self.vleak + numer
        denom = gleak + denom
        h = dt / self.ode_unfolds
        if self.solver == "semi_implicit":
            c = ops.softplus(self.cm_raw) / h  # (B, T, N) or (N,)
            c = ops.broadcast_to(c, ops.shape(numer))
            # v' = (c v + numer + synapses) / (c + denom + eps + synapses): c and eps enter once here
            return ops.concatenate([numer, denom + c + self.epsilon, c], axis=-1)
        h = ops.broadcast_to(ops.cast(h, numer.dtype), ops.shape(numer[..., :1]))
        return ops.concatenate([numer, denom, h], axis=-1)

    def step_weights(self) -> dict[str, Any]:
        """The derived weights the recurrence uses, computed once per sequence (not per step)."""
        w = ops.softplus(self.w_raw) * self.sparsity_mask  # (N, N): pre i, post j
        weights = _synapse_weights(self.sigma, self.mu, w * self.erev, w, self._edges)
        weights["cm"] = ops.softplus(self.cm_raw)
        return weights

    def step_pre(
        self, pre: Any, v: Any, dt: Any, weights: dict[str, Any], training: bool | None = None
    ) -> tuple[Any, Any]:
        """One interval from precomputed terms pre (B, pre_size), state v (B, N) -> (output, new v).

        ``dt`` is unused: the interval entered ``pre`` (C_m / h, or h).
        """
        n = self.state_size
        # split, not slices: on TensorFlow the gradient of a slice is a padded copy per slice
        base_numer, base_denom, last = ops.split(pre, [n, 2 * n], axis=-1)

        def conductances(u: Any) -> tuple[Any, Any]:
            numer, denom = _synapses(u, weights)
            return base_numer + numer, base_denom + denom

        for _ in range(self.ode_unfolds):
            if self.solver == "semi_implicit":
                numer, denom = conductances(v)  # denom includes C_m / h and eps
                v = (last * v + numer) / denom  # last = C_m / h
            else:
                v = self._rk_step(conductances, v, weights["cm"], last)  # last = h (B, 1)
        return self._map_outputs(v), v

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        x, dt = split_step_inputs(inputs)
        v, listed = _first_state(states)
        pre = self.precompute(*_time_axis(x, dt))[:, 0]
        y, v = self.step_pre(pre, v, dt, self.step_weights())
        return y, ([v] if listed else v)

    def _rk_step(self, conductances: Callable[[Any], tuple[Any, Any]], v: Any, cm: Any, h: Any) -> Any:
        tableau = TABLEAUX[self.solver]
        a, b = tableau.a, tableau.b

        def f(u: Any) -> Any:
            numer, denom = conductances(u)
            return (numer - denom * u) / cm

        ks: list[Any] = []
        for row in a:
            u = v
            for coef, k in zip(row, ks, strict=True):
                if coef != 0.0:
                    u = u + (h * coef) * k
            ks.append(f(u))
        out = v
        for coef, k in zip(b, ks, strict=True):
            if coef != 0.0:
                out = out + (h * coef) * k
        return out

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            wiring=self.wiring.get_config(),
            input_mapping=self.input_mapping,
            output_mapping=self.output_mapping,
            ode_unfolds=self.ode_unfolds,
            epsilon=self.epsilon,
            solver=self.solver,
        )
        return config


# -------------------------------------------------------------------------------------------- CfC
@_register
class CfCCell(_Cell):
    """Closed-form continuous-time cell (docs/math.md section 3), one step of elapsed time dt.

    z = backbone([x, h]); f1 = tanh(W1 z + b1); f2 = tanh(W2 z + b2);
    g = sigmoid(-(Wa z + ba) dt + (Wb z + bb)); h' = f1 g + f2 (1 - g)   (mode "default");
    h' = f1 g + f2 ("no_gate"); h' = A - A exp(-dt (|w_tau| + |u1|)) u1, u1 = W1 z + b1 ("pure").

    Args:
        units: hidden size. The input size is inferred at build time.
        mode: ``"default"``, ``"no_gate"`` or ``"pure"``.
        backbone_activation: ``"lecun_tanh"`` (default), ``"tanh"``, ``"relu"``, ``"gelu"``, ``"silu"``.
        backbone_units / backbone_layers / backbone_dropout: the backbone MLP (0 layers: none);
            dropout follows every backbone layer in training mode.
        sparsity_mask: optional (inputs + units, units) array multiplied into W1 and W2.
        head_activation: ``"tanh"`` (default, ncps) or ``"lecun_tanh"`` (the CfC paper's cell) for f1, f2.

    Weights: ``backbone[i]``, ``f1``, ``f2``, ``time_a``, ``time_b`` are Dense layers (their kernels
    are the transposes of the torch ``Linear`` weights); ``w_tau`` and ``A`` in pure mode.
    """

    def __init__(
        self,
        units: int,
        mode: str = "default",
        backbone_activation: str = "lecun_tanh",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_dropout: float = 0.0,
        sparsity_mask: np.ndarray | list[list[float]] | None = None,
        head_activation: str = "tanh",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _check_int("units", units, 1)
        check_choice("mode", mode, CFC_MODES)
        check_choice("head_activation", head_activation, list(HEAD_ACTIVATIONS))
        self.head_activation = head_activation
        self._head_act = ACTIVATIONS[head_activation]
        if backbone_activation not in ACTIVATIONS:
            raise ValueError(f"backbone_activation must be one of {sorted(ACTIVATIONS)}; got {backbone_activation!r}")
        self.backbone_layers = _check_int("backbone_layers", backbone_layers, 0)
        if self.backbone_layers > 0:
            backbone_units = _check_int("backbone_units", backbone_units, 1)
        if not 0.0 <= float(backbone_dropout) < 1.0:
            raise ValueError(f"backbone_dropout must be in [0, 1); got {backbone_dropout}")
        self.mode = mode
        self.backbone_activation = backbone_activation
        self.backbone_units = backbone_units
        self.backbone_dropout = float(backbone_dropout)
        self._act = ACTIVATIONS[backbone_activation]
        self._mask_init = None if sparsity_mask is None else np.abs(np.asarray(sparsity_mask, dtype=np.float32))
        self.backbone = [
            keras.layers.Dense(
                backbone_units, kernel_initializer="glorot_uniform", name=f"backbone_{i}", dtype=self.dtype_policy
            )
            for i in range(self.backbone_layers)
        ]
        self.dropout = (
            keras.layers.Dropout(self.backbone_dropout, dtype=self.dtype_policy) if self.backbone_dropout > 0 else None
        )
        heads = ("f1",) if mode == "pure" else ("f1", "f2", "time_a", "time_b")
        self._head_names = heads
        for name in heads:
            setattr(
                self,
                name,
                keras.layers.Dense(self.units, kernel_initializer="glorot_uniform", name=name, dtype=self.dtype_policy),
            )
        if mode == "pure":
            self.f2 = self.time_a = self.time_b = None
        self.sparsity_mask = None

    @property
    def state_size(self) -> int:
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def build(self, input_shape: Any) -> None:
        n_in = _input_dim(input_shape, "CfCCell")
        self.input_size = n_in
        width = n_in + self.units
        for layer in self.backbone:
            layer.bias_initializer = _torch_bias_init(width)
            layer.build((None, width))
            width = int(layer.units)
        for name in self._head_names:
            head = getattr(self, name)
            head.bias_initializer = _torch_bias_init(width)
            head.build((None, width))
        if self.mode == "pure":
            self.w_tau = self.add_weight(name="w_tau", shape=(self.units,), initializer="zeros")
            self.A = self.add_weight(name="A", shape=(self.units,), initializer="ones")
        if self._mask_init is not None:
            if self._mask_init.shape != (width, self.units):
                raise ValueError(
                    f"sparsity_mask must have shape {(width, self.units)} (inputs + units, units); "
                    f"got {self._mask_init.shape}"
                )
            self.sparsity_mask = self.add_weight(
                name="sparsity_mask", shape=(width, self.units), initializer=_constant(self._mask_init), trainable=False
            )

    def _kernel(self, head: keras.layers.Dense, masked: bool) -> Any:
        if masked and self.sparsity_mask is not None:
            return head.kernel * self.sparsity_mask
        return head.kernel

    # The input part of the first linear map (backbone layer 0, or the heads without a backbone)
    # does not depend on the state: the sequence layer computes it for all steps at once with
    # ``precompute`` (one (B·T) x I product); ``step_pre`` adds the state part at each step.
    @property
    def pre_size(self) -> int:
        """Width of ``precompute``'s last axis: the outputs of the first linear map."""
        if self.backbone:
            return int(self.backbone_units)
        return self.units * len(self._head_names)

    def _heads(self) -> tuple[Any, Any]:
        """The heads as one linear map [f1 | f2 | time_a | time_b] ([f1] in pure mode): kernel, bias."""
        heads = [getattr(self, name) for name in self._head_names]
        kernel = [self._kernel(head, name in ("f1", "f2")) for head, name in zip(heads, self._head_names, strict=True)]
        if len(heads) == 1:
            return kernel[0], heads[0].bias
        return ops.concatenate(kernel, axis=1), ops.concatenate([head.bias for head in heads], axis=0)

    def _first_map(self) -> tuple[Any, Any]:
        if self.backbone:
            return self.backbone[0].kernel, self.backbone[0].bias
        return self._heads()

    def precompute(self, x: Any, dt: Any = None) -> Any:
        """x (B, T, I) or (B, I) -> the input part of the first linear map, bias included: (..., pre_size)."""
        kernel, bias = self._first_map()
        return _mm(x, kernel[: self.input_size]) + bias

    def step_weights(self) -> dict[str, Any]:
        """The weights the recurrence uses (masked, heads concatenated), computed once per sequence."""
        kernel, bias = self._first_map()
        heads = self._heads() if self.backbone else (kernel, bias)
        return {
            "in": (kernel[: self.input_size], bias),
            "h": kernel[self.input_size :],
            "backbone": [(layer.kernel, layer.bias) for layer in self.backbone[1:]],
            "heads": heads,
        }

    def step_pre(
        self, pre: Any, h: Any, dt: Any, weights: dict[str, Any], training: bool | None = None
    ) -> tuple[Any, Any]:
        """One step from pre (B, pre_size), state h (B, units), dt a float or (B, 1) -> (output, new h)."""
        u = pre + _mm(h, weights["h"])
        if self.backbone:
            z = self._drop(self._act(u), training)
            for k, b in weights["backbone"]:
                z = self._drop(self._act(_mm(z, k) + b), training)
            k, b = weights["heads"]
            u = _mm(z, k) + b
        dt = 1.0 if dt is None else dt
        if self.mode == "pure":
            new = self.A - self.A * ops.exp(-dt * (ops.abs(self.w_tau) + ops.abs(u))) * u
        else:
            u1, u2, ta, tb = ops.split(u, 4, axis=-1)  # split, not slices (cheaper gradient on TensorFlow)
            f1 = self._head_act(u1)
            f2 = self._head_act(u2)
            g = ops.sigmoid(tb - ta * dt)
            new = f1 * g + f2 if self.mode == "no_gate" else f2 + g * (f1 - f2)  # = f1 g + f2 (1 - g)
        return new, new

    def _drop(self, z: Any, training: bool | None) -> Any:
        """Backbone dropout after every backbone layer, in training mode."""
        if self.dropout is None or not training:
            return z
        if keras.backend.backend() == "jax":
            # a fresh mask per step needs the random state inside the scan, which JAX forbids
            raise NotImplementedError(
                "backbone_dropout > 0 cannot train on the JAX backend of Keras (per-step dropout "
                "inside the RNN loop); use backbone_dropout=0 or the TensorFlow / PyTorch backend"
            )
        return self.dropout(z, training=training)

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        x, dt = split_step_inputs(inputs)
        h, listed = _first_state(states)
        new, _ = self.step_pre(self.precompute(x), h, dt, self.step_weights(), training=training)
        return new, ([new] if listed else new)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=self.units,
            mode=self.mode,
            backbone_activation=self.backbone_activation,
            backbone_units=self.backbone_units,
            backbone_layers=self.backbone_layers,
            backbone_dropout=self.backbone_dropout,
            sparsity_mask=None if self._mask_init is None else self._mask_init.tolist(),
            head_activation=self.head_activation,
        )
        return config


@_register
class WiredCfCCell(_Cell):
    """CfC laid out by a wiring: one CfC sub-cell (no backbone) per wiring layer, in layer order.

    For an NCP: inter -> command -> motor. Layer l sees the inputs (l = 0) or the new state of
    layer l-1 through the wiring's (sensory) adjacency, and its own neurons densely (docs/math.md,
    "Wired CfC"). The state is the concatenation of the layers' states; the output is the last
    layer's state. The sub-cells (``layers``) are created when the input size is known (build).
    """

    def __init__(self, wiring: Wiring | dict[str, Any], mode: str = "default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        wiring = as_wiring(wiring, "wiring")
        if mode not in CFC_MODES:
            raise ValueError(f"mode must be one of {CFC_MODES}; got {mode!r}")
        self.wiring = wiring
        self.mode = mode
        self.layer_sizes = [len(wiring.get_neurons_of_layer(i)) for i in range(wiring.num_layers)]
        self.layers: list[CfCCell] = []

    @property
    def state_size(self) -> int:
        return self.wiring.units

    @property
    def output_size(self) -> int:
        return self.layer_sizes[-1]

    @property
    def num_layers(self) -> int:
        return len(self.layer_sizes)

    def build(self, input_shape: Any) -> None:
        n_in = _input_dim(input_shape, "WiredCfCCell")
        wiring = self.wiring
        wiring.build(n_in)
        assert wiring.sensory_adjacency_matrix is not None
        self.input_size = n_in
        layers = []
        in_features = n_in
        for layer_id, mask in enumerate(ncp_layer_masks(wiring)):
            cell = CfCCell(
                mask.shape[1],
                self.mode,
                "lecun_tanh",
                0,
                0,
                0.0,
                sparsity_mask=mask,
                name=f"layer_{layer_id}",
                dtype=self.dtype_policy,
            )
            cell.build((None, in_features))
            layers.append(cell)
            in_features = mask.shape[1]
        self.layers = layers

    @property
    def pre_size(self) -> int:
        """Width of ``precompute``'s last axis: layer 0's heads (4 x its neurons; 1 x in pure mode)."""
        return self.layers[0].pre_size

    def precompute(self, x: Any, dt: Any = None) -> Any:
        """x (B, T, I) -> the input part of layer 0's heads for all steps, (B, T, pre_size)."""
        return self.layers[0].precompute(x)

    def step_weights(self) -> list[dict[str, Any]]:
        return [cell.step_weights() for cell in self.layers]

    def step_pre(
        self, pre: Any, h: Any, dt: Any, weights: list[dict[str, Any]], training: bool | None = None
    ) -> tuple[Any, Any]:
        """One step of all layers: layer 0 from pre, layer l from layer l-1's new state."""
        new = []
        start = 0
        out = None
        for i, (cell, size, w) in enumerate(zip(self.layers, self.layer_sizes, weights, strict=True)):
            if i > 0:
                k, b = w["in"]
                pre = _mm(out, k) + b
            out, _ = cell.step_pre(pre, h[:, start : start + size], dt, w)
            new.append(out)
            start += size
        return out, ops.concatenate(new, axis=-1)

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        x, dt = split_step_inputs(inputs)
        h, listed = _first_state(states)
        out, state = self.step_pre(self.precompute(x), h, dt, self.step_weights())
        return out, ([state] if listed else state)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(wiring=self.wiring.get_config(), mode=self.mode)
        return config


# ----------------------------------------------------------------------------------- mixed memory
@_register
class MixedMemoryLSTMCell(keras.layers.Layer):
    """The LSTM that runs before the liquid cell when ``mixed_memory=True`` (docs/math.md section 4).

    z = x W_x + b + h W_h; [i, ig, fg, og] = split(z); c' = c sigmoid(fg + 1) + tanh(i) sigmoid(ig);
    h' = tanh(c') sigmoid(og). ``input_map`` (with bias) and ``recurrent_map`` (no bias) are Dense.
    """

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = _check_int("units", units, 1)
        self.input_map = keras.layers.Dense(
            4 * self.units,
            kernel_initializer="glorot_uniform",
            bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1),
            name="input_map",
            dtype=self.dtype_policy,
        )
        self.recurrent_map = keras.layers.Dense(
            4 * self.units,
            use_bias=False,
            kernel_initializer="orthogonal",
            name="recurrent_map",
            dtype=self.dtype_policy,
        )

    @property
    def state_size(self) -> list[int]:
        return [self.units, self.units]

    def build(self, input_shape: Any) -> None:
        self.input_map.build((None, _input_dim(input_shape, "MixedMemoryLSTMCell")))
        self.recurrent_map.build((None, self.units))

    def precompute(self, x: Any) -> Any:
        """x (B, T, I) or (B, I) -> its part of z for all steps, bias included: (..., 4 units)."""
        return _mm(x, self.input_map.kernel) + self.input_map.bias

    def step_pre(self, pre: Any, h: Any, c: Any) -> tuple[Any, Any]:
        z = pre + _mm(h, self.recurrent_map.kernel)
        i, ig, fg, og = ops.split(z, 4, axis=-1)
        c = c * ops.sigmoid(fg + 1.0) + ops.tanh(i) * ops.sigmoid(ig)
        h = ops.tanh(c) * ops.sigmoid(og)
        return h, c

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        h, c = states
        h, c = self.step_pre(self.precompute(inputs), h, c)
        return h, [h, c]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units)
        return config
