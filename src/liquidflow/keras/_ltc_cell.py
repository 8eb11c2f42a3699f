"""The Keras LTC cell (docs/math.md section 2), with the parameter names of the torch cell; see
:mod:`liquidflow.keras._cells` for the calling convention of every Keras cell."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from keras import ops

from .._frontend import WiringSizes, ltc_effective_parameters, ltc_options
from .._spec import (
    LTC_INIT_RANGES,
    POSITIVE_PARAMS,
    TABLEAUX,
)
from ..wirings import Wiring
from ._common import (
    SOLVERS,
    _Cell,
    _check_int,
    _check_mapping,
    _constant,
    _edge_list,
    _first_state,
    _input_dim,
    _register,
    _synapse_weights,
    _synapses,
    _time_axis,
    _uniform,
    as_wiring,
    split_step_inputs,
)


# -------------------------------------------------------------------------------------------- LTC
@_register
class LTCCell(WiringSizes, _Cell):
    """Liquid time-constant cell (docs/math.md section 2); one call integrates one interval dt.

    Args:
        wiring: a :class:`~liquidflow.wirings.Wiring` (built in place for the input size on first
            call, or copied when built for another size: ``Wiring.built_for``), an int (fully
            connected) or a wiring config dict.
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
    def sensory_size(self) -> int | None:
        return self.wiring.input_dim

    def build(self, input_shape: Any) -> None:
        n_in = _input_dim(input_shape, "LTCCell")
        # the user's wiring, built in place (as ncps), or a copy when it is built for another size
        self.wiring = self.wiring.built_for(n_in)
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
        return ltc_effective_parameters(self, ops.softplus)

    def regularized_kernels(self) -> tuple[list[Any], list[Any]]:
        """(input kernels, recurrent kernels) for the layers' kernel_regularizer / recurrent_regularizer:
        the sensory and the recurrent synaptic weights as they enter the equations, softplus(raw) x mask
        (the raw parameters are not weights: softplus(raw) is, and it is never negative)."""
        sensory = ops.softplus(self.sensory_w_raw) * self.sensory_sparsity_mask
        return [sensory], [ops.softplus(self.w_raw) * self.sparsity_mask]

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
        v = _first_state(states)
        pre = self.precompute(*_time_axis(x, dt))[:, 0]
        y, v = self.step_pre(pre, v, dt, self.step_weights())
        return y, [v]

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
        config.update(wiring=self.wiring.get_config(), **ltc_options(self))
        return config
