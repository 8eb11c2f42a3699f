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

from ..wirings import FullyConnected, Wiring

_register = keras.saving.register_keras_serializable(package="liquidflow")

# Initial ranges of the LTC parameters (effective values, after softplus), docs/math.md section 2.
LTC_INIT_RANGES: dict[str, tuple[float, float]] = {
    "gleak": (0.001, 1.0),
    "vleak": (-0.2, 0.2),
    "cm": (0.4, 0.6),
    "w": (0.001, 1.0),
    "sigma": (3.0, 8.0),
    "mu": (0.3, 0.8),
    "sensory_w": (0.001, 1.0),
    "sensory_sigma": (3.0, 8.0),
    "sensory_mu": (0.3, 0.8),
}
POSITIVE_PARAMS = ("gleak", "cm", "w", "sensory_w")
MAPPINGS = ("affine", "linear", None)
CFC_MODES = ("default", "no_gate", "pure")

# Explicit Runge-Kutta methods as Butcher tableaux (a: strictly lower-triangular rows, b: weights),
# the same methods as liquidflow.torch (which this package must not import).
_TABLEAUX: dict[str, tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]] = {
    "euler": (((),), (1.0,)),
    "midpoint": (((), (0.5,)), (0.0, 1.0)),
    "heun": (((), (1.0,)), (0.5, 0.5)),
    "rk4": (((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
}
for _name, (_a, _b) in _TABLEAUX.items():  # a tableau checks itself
    if abs(sum(_b) - 1.0) > 1e-12 or any(len(row) != i for i, row in enumerate(_a)):
        raise RuntimeError(f"bad Butcher tableau {_name}")
SOLVERS = ("semi_implicit", *_TABLEAUX)


def lecun_tanh(x: Any) -> Any:
    return 1.7159 * ops.tanh(0.666 * x)


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
    if value not in MAPPINGS:
        raise ValueError(f"{name} must be one of {MAPPINGS}; got {value!r}")
    return value


def _check_int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}; got {value!r}")
    return int(value)


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
    """(B, K) @ (K, M).

    float64 goes through einsum: ops.matmul on the torch backend of Keras 3.15 computes float64 in
    float32. float32 keeps ops.matmul, much faster than einsum there for small matrices.
    """
    if keras.backend.standardize_dtype(a.dtype) == "float64":
        return ops.einsum("bk,km->bm", a, b)
    return ops.matmul(a, b)


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

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        x, dt = split_step_inputs(inputs)
        v, listed = _first_state(states)
        x = self._map_inputs(x)
        # sensory synapses: computed once per interval (the input is held over it)
        ws = ops.softplus(self.sensory_w_raw) * self.sensory_sparsity_mask  # (I, N)
        act = ops.sigmoid(self.sensory_sigma * (ops.expand_dims(x, -1) - self.sensory_mu))  # (B, I, N)
        gleak = ops.softplus(self.gleak_raw)
        base_numer = gleak * self.vleak + ops.einsum("bin,in->bn", act, ws * self.sensory_erev)
        base_denom = gleak + ops.einsum("bin,in->bn", act, ws)
        w = ops.softplus(self.w_raw) * self.sparsity_mask  # (N, N): pre i, post j
        we = w * self.erev
        cm = ops.softplus(self.cm_raw)

        def conductances(u: Any) -> tuple[Any, Any]:
            a = ops.sigmoid(self.sigma * (ops.expand_dims(u, -1) - self.mu))  # (B, N, N)
            return base_numer + ops.einsum("bij,ij->bj", a, we), base_denom + ops.einsum("bij,ij->bj", a, w)

        h = (1.0 if dt is None else dt) / self.ode_unfolds
        for _ in range(self.ode_unfolds):
            if self.solver == "semi_implicit":
                numer, denom = conductances(v)
                c = cm / h
                v = (c * v + numer) / (c + denom + self.epsilon)
            else:
                v = self._rk_step(conductances, v, cm, h)
        y = self._map_outputs(v)
        return y, ([v] if listed else v)

    def _rk_step(self, conductances: Callable[[Any], tuple[Any, Any]], v: Any, cm: Any, h: Any) -> Any:
        a, b = _TABLEAUX[self.solver]

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
        backbone_units / backbone_layers / backbone_dropout: the backbone MLP (0 layers: none).
        sparsity_mask: optional (inputs + units, units) array multiplied into W1 and W2.

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _check_int("units", units, 1)
        if mode not in CFC_MODES:
            raise ValueError(f"mode must be one of {CFC_MODES}; got {mode!r}")
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

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        x, dt = split_step_inputs(inputs)
        h, listed = _first_state(states)
        z = ops.concatenate([x, h], axis=-1)
        for i, layer in enumerate(self.backbone):
            z = self._act(_mm(z, layer.kernel) + layer.bias)
            if i > 0 and self.dropout is not None and training:
                if keras.backend.backend() == "jax":
                    # a fresh mask per step needs the random state inside the scan, which JAX forbids
                    raise NotImplementedError(
                        "backbone_dropout > 0 cannot train on the JAX backend of Keras (per-step dropout inside "
                        "the RNN loop); use backbone_dropout=0 or the TensorFlow / PyTorch backend"
                    )
                z = self.dropout(z, training=training)
        dt = 1.0 if dt is None else dt
        u1 = _mm(z, self._kernel(self.f1, True)) + self.f1.bias
        if self.mode == "pure":
            new = self.A - self.A * ops.exp(-dt * (ops.abs(self.w_tau) + ops.abs(u1))) * u1
        else:
            assert self.f2 is not None and self.time_a is not None and self.time_b is not None
            f1 = ops.tanh(u1)
            f2 = ops.tanh(_mm(z, self._kernel(self.f2, True)) + self.f2.bias)
            ta = _mm(z, self.time_a.kernel) + self.time_a.bias
            tb = _mm(z, self.time_b.kernel) + self.time_b.bias
            g = ops.sigmoid(-ta * dt + tb)
            new = f1 * g + f2 if self.mode == "no_gate" else f1 * g + f2 * (1.0 - g)
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
        prev: list[int] = []
        in_features = n_in
        for layer_id in range(wiring.num_layers):
            neurons = wiring.get_neurons_of_layer(layer_id)
            if layer_id == 0:
                in_mask = wiring.sensory_adjacency_matrix[:, neurons]
            else:
                in_mask = wiring.adjacency_matrix[np.ix_(prev, neurons)]
            mask = np.concatenate([in_mask, np.ones((len(neurons), len(neurons)))], axis=0)
            cell = CfCCell(
                len(neurons),
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
            in_features = len(neurons)
            prev = neurons
        self.layers = layers

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        x, dt = split_step_inputs(inputs)
        h, listed = _first_state(states)
        out = x
        new = []
        start = 0
        for cell, size in zip(self.layers, self.layer_sizes, strict=True):
            out, _ = cell.call((out, dt), h[:, start : start + size])
            new.append(out)
            start += size
        state = ops.concatenate(new, axis=-1)
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

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        h, c = states
        z = _mm(inputs, self.input_map.kernel) + self.input_map.bias + _mm(h, self.recurrent_map.kernel)
        n = self.units
        i, ig, fg, og = z[:, :n], z[:, n : 2 * n], z[:, 2 * n : 3 * n], z[:, 3 * n :]
        c = c * ops.sigmoid(fg + 1.0) + ops.tanh(i) * ops.sigmoid(ig)
        h = ops.tanh(c) * ops.sigmoid(og)
        return h, [h, c]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units)
        return config
