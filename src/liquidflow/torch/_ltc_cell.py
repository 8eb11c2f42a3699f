"""The LTC cell (docs/math.md section 2): conductance-based synapses on a wiring, integrated by a
solver (the semi-implicit Euler of the paper, or an explicit Runge-Kutta tableau).

Its step is split like every cell's (see :mod:`liquidflow.torch._cells`): ``precompute(x)`` for all
steps at once, ``step_pre(pre_t, h, dt)`` per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._frontend import WiringSizes, ltc_effective_parameters
from .._ops import fused as _fused
from .._ops.jobs import CfCLSTM, LTCJob
from .._spec import LTC_INIT_RANGES, POSITIVE_PARAMS, SPARSE_FRACTION, ButcherTableau, LTCSpec
from ..wirings import FullyConnected, Wiring
from ._solvers import ExplicitRK, SemiImplicitEuler, Solver, get_solver

Tensor = torch.Tensor


def inverse_softplus(y: Tensor) -> Tensor:
    """x with softplus(x) = y, for y > 0 (stable for small and large y)."""
    return y + torch.log(-torch.expm1(-y))


def _as_dt(dt: float | Tensor, batch: int, like: Tensor) -> Tensor | float:
    """Elapsed time as a float or a (B, 1) tensor: per sample, never along the hidden axis."""
    if isinstance(dt, torch.Tensor):
        if dt.dim() == 0:
            return dt.to(like.dtype)
        if dt.numel() != batch:
            raise ValueError(
                f"elapsed time must be a float or have one value per sample ({batch}); got shape {tuple(dt.shape)}"
            )
        return dt.reshape(batch, 1).to(like.dtype)
    return float(dt)


class LTCCell(WiringSizes, nn.Module):
    """Liquid time-constant cell (conductance-based, wired). One call advances one interval dt.

    Args:
        wiring: a :class:`~liquidflow.wirings.Wiring` or an int (fully connected units).
        in_features: number of inputs: an unbuilt wiring is built in place for it, one built for
            another input size is copied (``Wiring.built_for``).
        input_mapping / output_mapping: ``"affine"`` (w x + b), ``"linear"`` (w x) or None.
        ode_unfolds: solver sub-steps per interval.
        epsilon: added to the denominator of the semi-implicit step.
        solver: ``"semi_implicit"`` (default), ``"euler"``, ``"midpoint"``, ``"heun"``, ``"rk4"``.
    """

    sparsity_mask: Tensor
    sensory_sparsity_mask: Tensor

    def __init__(
        self,
        wiring: Wiring | int,
        in_features: int | None = None,
        input_mapping: str | None = "affine",
        output_mapping: str | None = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        solver: str | Solver = "semi_implicit",
    ) -> None:
        super().__init__()
        wiring = FullyConnected(wiring) if isinstance(wiring, int) else wiring
        if not isinstance(wiring, Wiring):
            raise TypeError(f"wiring must be a Wiring or an int; got {type(wiring).__name__}")
        # the user's wiring, built in place (as ncps), or a copy when it is built for another size
        wiring = wiring.built_for(in_features)
        self.solver = get_solver(solver)
        self.spec = LTCSpec(
            wiring.units,
            wiring.input_dim or 0,
            wiring.output_dim or wiring.units,
            input_mapping,
            output_mapping,
            ode_unfolds,
            float(epsilon),
            self.solver.name,
        )
        self.wiring = wiring
        self.input_mapping = input_mapping
        self.output_mapping = output_mapping
        self.ode_unfolds = ode_unfolds
        self.epsilon = float(epsilon)
        n, i, m = self.state_size, self.sensory_size, self.motor_size

        def init(name: str, shape: tuple[int, ...]) -> nn.Parameter:
            lo, hi = LTC_INIT_RANGES[name]
            value = torch.rand(*shape) * (hi - lo) + lo
            if name in POSITIVE_PARAMS:
                value = inverse_softplus(value)
            return nn.Parameter(value)

        # Positive parameters are stored as raw values r with value = softplus(r).
        self.gleak_raw = init("gleak", (n,))
        self.vleak = init("vleak", (n,))
        self.cm_raw = init("cm", (n,))
        self.w_raw = init("w", (n, n))
        self.sigma = init("sigma", (n, n))
        self.mu = init("mu", (n, n))
        self.erev = nn.Parameter(torch.tensor(wiring.erev_initializer(), dtype=torch.float32))
        self.sensory_w_raw = init("sensory_w", (i, n))
        self.sensory_sigma = init("sensory_sigma", (i, n))
        self.sensory_mu = init("sensory_mu", (i, n))
        self.sensory_erev = nn.Parameter(torch.tensor(wiring.sensory_erev_initializer(), dtype=torch.float32))
        self.register_buffer("sparsity_mask", torch.tensor(np.abs(wiring.adjacency_matrix), dtype=torch.float32))
        assert wiring.sensory_adjacency_matrix is not None
        self.register_buffer(
            "sensory_sparsity_mask", torch.tensor(np.abs(wiring.sensory_adjacency_matrix), dtype=torch.float32)
        )
        self.input_w = nn.Parameter(torch.ones(i)) if input_mapping in ("affine", "linear") else None
        self.input_b = nn.Parameter(torch.zeros(i)) if input_mapping == "affine" else None
        self.output_w = nn.Parameter(torch.ones(m)) if output_mapping in ("affine", "linear") else None
        self.output_b = nn.Parameter(torch.zeros(m)) if output_mapping == "affine" else None

    # ------------------------------------------------------------------ sizes
    # state_size, motor_size, output_size: from WiringSizes
    @property
    def sensory_size(self) -> int:
        assert self.wiring.input_dim is not None
        return self.wiring.input_dim

    @property
    def input_size(self) -> int:
        return self.sensory_size

    @property
    def synapse_count(self) -> int:
        return self.wiring.synapse_count

    @property
    def sensory_synapse_count(self) -> int:
        return self.wiring.sensory_synapse_count

    # ------------------------------------------------------------------ parameters
    def positive(self, name: str) -> Tensor:
        """The effective (positive) value of ``gleak``, ``cm``, ``w`` or ``sensory_w``."""
        if name not in POSITIVE_PARAMS:
            raise ValueError(f"name must be one of {POSITIVE_PARAMS}; got {name!r}")
        return F.softplus(getattr(self, f"{name}_raw"))

    def effective_parameters(self) -> dict[str, Tensor]:
        """All parameters as they enter the equations of docs/math.md (positives mapped)."""
        return ltc_effective_parameters(self, F.softplus)

    def apply_weight_constraints(self) -> None:
        """No-op, kept for ncps compatibility: positivity is built into the parametrisation."""

    # ------------------------------------------------------------------ math
    def map_inputs(self, x: Tensor) -> Tensor:
        if self.input_w is not None:
            x = x * self.input_w
        if self.input_b is not None:
            x = x + self.input_b
        return x

    def map_outputs(self, v: Tensor) -> Tensor:
        y = v[..., : self.motor_size]
        if self.output_w is not None:
            y = y * self.output_w
        if self.output_b is not None:
            y = y + self.output_b
        return y

    def precompute(self, x: Tensor) -> Tensor:
        """Sensory conductances for all steps: (B, T, I) -> (B, T, 2, N) = [sum s E^s, sum s]."""
        x = self.map_inputs(x)
        ws = self.positive("sensory_w") * self.sensory_sparsity_mask  # (I, N)
        act = torch.sigmoid(self.sensory_sigma * (x.unsqueeze(-1) - self.sensory_mu))  # (B, T, I, N)
        # multiply-and-sum: torch.einsum turns this contraction into slow batched matmuls on CPU
        numer = (act * (ws * self.sensory_erev)).sum(-2)
        denom = (act * ws).sum(-2)
        return torch.stack([numer, denom], dim=-2)

    def _rhs(self, pre_t: Tensor) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
        gleak = self.positive("gleak")
        w = self.positive("w") * self.sparsity_mask  # (N, N)
        we = w * self.erev
        base_numer = gleak * self.vleak + pre_t[:, 0]
        base_denom = gleak + pre_t[:, 1]

        def rhs(v: Tensor) -> tuple[Tensor, Tensor]:
            act = torch.sigmoid(self.sigma * (v.unsqueeze(-1) - self.mu))  # (B, N, N): pre i, post j
            numer = base_numer + (act * we).sum(1)
            denom = base_denom + (act * w).sum(1)
            return numer, denom

        return rhs

    def step_pre(self, pre_t: Tensor, h: Tensor, dt: float | Tensor) -> tuple[Tensor, Tensor]:
        rhs = self._rhs(pre_t)
        cm = self.positive("cm")
        sub = _as_dt(dt, h.shape[0], h)
        sub = sub / self.ode_unfolds
        v = h
        for _ in range(self.ode_unfolds):
            v = self.solver.step(rhs, v, cm, sub, self.epsilon)  # type: ignore[arg-type]
        return self.map_outputs(v), v

    def forward(self, inputs: Tensor, states: Tensor, elapsed_time: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
        pre = self.precompute(inputs.unsqueeze(1))[:, 0]
        return self.step_pre(pre, states, elapsed_time)

    # ------------------------------------------------------------------ sequence kernels
    def fused_why_not(self) -> str | None:
        """Why no sequence kernel (C or fused torch) runs this cell; None when they do."""
        if type(self.solver) not in (SemiImplicitEuler, ExplicitRK):
            return f"solver={self.solver!r}: the kernels run the semi-implicit step and Butcher tableaux only"
        return None

    @property
    def tableau(self) -> ButcherTableau | None:
        """The explicit solver's Butcher tableau; None for the semi-implicit step."""
        return self.solver.tableau if isinstance(self.solver, ExplicitRK) else None

    def sequence_why_not(self) -> str | None:
        """Why no sequence kernel runs this cell (mixed memory included: the C kernel runs the LSTM)."""
        return self.fused_why_not()

    def sequence_job(self, x: Tensor, h0: Tensor, ts: Tensor, mask: Tensor | None, drops: Any = None,
                     lstm: CfCLSTM | None = None) -> LTCJob:  # fmt: skip
        """The whole sequence's work for an executor: x (B, T, I), h0 (B, N), ts (B, T, 1), mask (B, T);
        ``lstm`` the layer's mixed-memory LSTM (the C kernels run it); ``drops`` is unused (an LTC has
        no dropout)."""
        gleak = self.positive("gleak")
        tableau = self.tableau
        eps = self.epsilon if tableau is None else 0.0  # the explicit solvers have no epsilon
        leak = torch.stack([gleak * self.vleak, gleak + eps])  # (2, N)
        ws = self.positive("sensory_w") * self.sensory_sparsity_mask  # (I, N)
        sensory = (ws, ws * self.sensory_erev, self.sensory_sigma, self.sensory_sigma * self.sensory_mu)
        C = self.positive("cm") / (ts.transpose(0, 1) / self.ode_unfolds)  # (T, B, N): C_m / h
        keep = None if mask is None else mask.t().unsqueeze(-1)
        n = self.state_size
        edges: tuple[Tensor, Tensor] | None = None
        if self.synapse_count <= SPARSE_FRACTION * n * n:  # compute only the synapses that exist
            src, dst = self.sparsity_mask.nonzero(as_tuple=True)
            w = F.softplus(self.w_raw[src, dst]) * self.sparsity_mask[src, dst]
            sigma = self.sigma[src, dst]
            synapses = (w, w * self.erev[src, dst], sigma, sigma * self.mu[src, dst])
            edges = (src, dst)
        else:
            w = self.positive("w") * self.sparsity_mask
            synapses = (w, w * self.erev, self.sigma, self.sigma * self.mu)
        return LTCJob(self.ode_unfolds, x.transpose(0, 1), self.map_inputs, self.precompute, leak, sensory, C, keep,
                      h0, synapses, edges, tableau=tableau, lstm=lstm)  # fmt: skip

    def fused_output(self, S: Tensor) -> Tensor:
        return self.map_outputs(S)

    def fused_step(self, x: Tensor, h: Tensor, dt: float | Tensor) -> Tensor:
        """The new state after one interval, without autograd (streaming; see ``fused_why_not``)."""

        tableau = self.tableau

        def build() -> tuple[Tensor, ...]:
            gleak = self.positive("gleak")
            w = self.positive("w") * self.sparsity_mask
            leak = torch.stack([gleak * self.vleak, gleak + (self.epsilon if tableau is None else 0.0)])
            return leak, self.positive("cm"), torch.stack([w * self.erev, w]), self.sigma, -(self.sigma * self.mu)

        leak, cm, W2, sigma, nsm = build()
        base = self.precompute(x.unsqueeze(0))[0] + leak  # (B, 2, N)
        c = cm / (dt / self.ode_unfolds)
        if tableau is not None:
            return _fused.ltc_explicit_step(self.ode_unfolds, tableau, base, c, h, W2, sigma, nsm)
        return _fused.ltc_step(self.ode_unfolds, base, c, h, W2, sigma, nsm)

    def get_config(self) -> dict[str, Any]:
        return {
            "wiring": self.wiring.get_config(),
            "input_mapping": self.input_mapping,
            "output_mapping": self.output_mapping,
            "ode_unfolds": self.ode_unfolds,
            "epsilon": self.epsilon,
            "solver": self.solver.name,
        }
