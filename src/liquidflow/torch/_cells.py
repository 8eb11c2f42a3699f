"""One-step cells: LTC, CfC, wired CfC, and the LSTM used for mixed memory.

Every cell follows the equations in docs/math.md and splits its step in two so that sequence layers
can hoist work out of the time loop:

* ``precompute(x)`` takes inputs of shape (B, T, I) and returns everything that does not depend on
  the state (input projections, sensory synapse conductances) for all steps at once;
* ``step_pre(pre_t, h, dt)`` finishes one step from ``pre[:, t]``; ``dt`` is (B, 1) or a float.

``forward(x, h, dt)`` is the plain one-step call (ncps-compatible argument order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._ops import fused as _fused
from .._ops.jobs import CfCJob, CfCLSTM, LTCJob
from .._spec import (
    CFC_MODES,
    HEAD_ACTIVATIONS,
    LECUN_A,
    LECUN_B,
    LTC_INIT_RANGES,
    POSITIVE_PARAMS,
    SPARSE_FRACTION,
    ButcherTableau,
    CfCLayer,
    CfCSpec,
    LTCSpec,
    ncp_layer_masks,
)
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


class LTCCell(nn.Module):
    """Liquid time-constant cell (conductance-based, wired). One call advances one interval dt.

    Args:
        wiring: a :class:`~liquidflow.wirings.Wiring` (copied) or an int (fully connected units).
        in_features: number of inputs; builds the wiring if it is not built yet.
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
        wiring = wiring.copy()
        if in_features is not None:
            wiring.build(in_features)
        if not wiring.is_built():
            raise ValueError("the wiring is not built: pass in_features or call wiring.build(input_dim)")
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
    @property
    def state_size(self) -> int:
        return self.wiring.units

    @property
    def sensory_size(self) -> int:
        assert self.wiring.input_dim is not None
        return self.wiring.input_dim

    @property
    def motor_size(self) -> int:
        return self.wiring.output_dim if self.wiring.output_dim is not None else self.wiring.units

    @property
    def output_size(self) -> int:
        return self.motor_size

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
        out: dict[str, Tensor] = {
            "gleak": self.positive("gleak"),
            "vleak": self.vleak,
            "cm": self.positive("cm"),
            "w": self.positive("w"),
            "sigma": self.sigma,
            "mu": self.mu,
            "erev": self.erev,
            "sensory_w": self.positive("sensory_w"),
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


def lecun_tanh(x: Tensor) -> Tensor:
    return LECUN_A * torch.tanh(LECUN_B * x)


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "lecun_tanh": lecun_tanh,
    "tanh": torch.tanh,
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
}


class CfCCell(nn.Module):
    """Closed-form continuous-time cell (Hasani et al., 2022), one step of elapsed time dt.

    z = backbone([x, h]); f1 = tanh(W1 z + b1); f2 = tanh(W2 z + b2);
    g = sigmoid(-(Wa z + ba) dt + (Wb z + bb));  h' = f1 g + f2 (1 - g)   (mode "default")
    h' = f1 g + f2 ("no_gate");  h' = A - A exp(-dt (|w_tau| + |u1|)) u1, u1 = W1 z + b1 ("pure").

    ``head_activation``: the activation of f1 and f2, ``"tanh"`` (ncps) or ``"lecun_tanh"`` (the CfC
    paper's TensorFlow cell, raminmh/CfC ``tf_cfc.py``). ``backbone_dropout`` acts after every backbone
    layer in training mode (as the paper's cell). ``sparsity_mask`` (in+hidden, hidden) zeroes
    entries of W1 and W2 (used by wired CfC).
    """

    sparsity_mask: Tensor | None
    backbone: nn.ModuleList

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        mode: str = "default",
        backbone_activation: str = "lecun_tanh",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_dropout: float = 0.0,
        sparsity_mask: np.ndarray | Tensor | None = None,
        head_activation: str = "tanh",
    ) -> None:
        super().__init__()
        self.spec = CfCSpec(input_size, hidden_size, mode, backbone_activation, backbone_units, backbone_layers,
                            float(backbone_dropout), head_activation)  # fmt: skip
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.mode = mode
        self.backbone_activation = backbone_activation
        self.backbone_units = backbone_units
        self.backbone_layers = backbone_layers
        self.backbone_dropout = float(backbone_dropout)
        self.head_activation = head_activation
        self._act = ACTIVATIONS[backbone_activation]
        self._head_act = ACTIVATIONS[head_activation]
        cat = input_size + hidden_size
        self.backbone = nn.ModuleList()
        width = cat
        for _ in range(backbone_layers):
            self.backbone.append(nn.Linear(width, backbone_units))
            width = backbone_units
        self.dropout = nn.Dropout(self.backbone_dropout) if self.backbone_dropout > 0 else None
        self.f1 = nn.Linear(width, hidden_size)
        if mode == "pure":
            self.w_tau = nn.Parameter(torch.zeros(hidden_size))
            self.A = nn.Parameter(torch.ones(hidden_size))
            self.f2 = self.time_a = self.time_b = None
        else:
            self.f2 = nn.Linear(width, hidden_size)
            self.time_a = nn.Linear(width, hidden_size)
            self.time_b = nn.Linear(width, hidden_size)
        if sparsity_mask is not None:
            mask = torch.as_tensor(np.abs(np.asarray(sparsity_mask)), dtype=torch.float32)
            if tuple(mask.shape) != (width, hidden_size):
                raise ValueError(f"sparsity_mask must have shape {(width, hidden_size)}; got {tuple(mask.shape)}")
            self.register_buffer("sparsity_mask", mask.T.contiguous())  # (H, width), like the weights
        else:
            self.sparsity_mask = None
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.xavier_uniform_(p)

    @property
    def state_size(self) -> int:
        return self.hidden_size

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def _heads(self) -> tuple[Tensor, Tensor]:
        """Weights and biases of all heads stacked: (k H, width), (k H,)."""
        w1 = self.f1.weight if self.sparsity_mask is None else self.f1.weight * self.sparsity_mask
        if self.mode == "pure":
            return w1, self.f1.bias
        assert self.f2 is not None and self.time_a is not None and self.time_b is not None
        w2 = self.f2.weight if self.sparsity_mask is None else self.f2.weight * self.sparsity_mask
        weight = torch.cat([w1, w2, self.time_a.weight, self.time_b.weight], 0)
        bias = torch.cat([self.f1.bias, self.f2.bias, self.time_a.bias, self.time_b.bias], 0)
        return weight, bias

    def _first(self) -> tuple[Tensor, Tensor]:
        if self.backbone_layers > 0:
            first: nn.Linear = self.backbone[0]  # type: ignore[assignment]
            return first.weight, first.bias
        return self._heads()

    def precompute(self, x: Tensor) -> Tensor:
        """Input part of the first layer for all steps: (B, T, I) -> (B, T, K)."""
        weight, bias = self._first()
        return F.linear(x, weight[:, : self.input_size], bias)

    def step_pre(self, pre_t: Tensor, h: Tensor, dt: float | Tensor,
                 drop: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
        """One step from ``pre_t``; ``drop``: this step's dropout multipliers (B, K) per backbone
        layer (from :meth:`draw_dropout`) instead of drawing them here."""
        weight, _ = self._first()
        u = pre_t + F.linear(h, weight[:, self.input_size :])
        if self.backbone_layers > 0:
            z = self._act(u)
            if drop is not None:
                z = z * drop[0]
            elif self.dropout is not None:
                z = self.dropout(z)
            for k, layer in enumerate(list(self.backbone)[1:], 1):
                z = self._act(layer(z))
                if drop is not None:
                    z = z * drop[k]
                elif self.dropout is not None:
                    z = self.dropout(z)
            hw, hb = self._heads()
            u = F.linear(z, hw, hb)
        dt = _as_dt(dt, h.shape[0], h)
        H = self.hidden_size
        if self.mode == "pure":
            new = self.A - self.A * torch.exp(-dt * (torch.abs(self.w_tau) + torch.abs(u))) * u
        else:
            f1 = self._head_act(u[:, :H])
            f2 = self._head_act(u[:, H : 2 * H])
            g = torch.sigmoid(-u[:, 2 * H : 3 * H] * dt + u[:, 3 * H :])
            new = f1 * g + f2 if self.mode == "no_gate" else f2 + g * (f1 - f2)
        return new, new

    def forward(self, input: Tensor, hx: Tensor, ts: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
        return self.step_pre(self.precompute(input), hx, ts)

    # ------------------------------------------------------------------ fused sequence kernel
    def fused_why_not(self) -> str | None:
        """Why the fused/native kernels do not apply to this cell (None when they do)."""
        return self.spec.kernel_why_not(self.training)

    def _fused_ok(self) -> bool:
        return self.fused_why_not() is None

    def fused_plan(self, fold: bool = True) -> tuple[CfCLayer, list[Tensor | None], Tensor, Tensor] | None:
        """(spec, [WxT, WhT, b, HwT, hb], Wx, b) for the fused kernels, or None where they do not apply.

        With ``fold`` the lecun_tanh constants go into the weights (1.7159 tanh(0.666 u) feeds the
        heads, so the first map is scaled by 0.666 and the heads by 1.7159) and the spec says tanh:
        two operations fewer per step of a sequence. The one-step path applies them to the
        activations instead. Other backbone activations pass through by name.
        """
        if not self._fused_ok():
            return None

        def build() -> tuple[CfCLayer, list[Tensor | None], Tensor, Tensor]:
            I, H = self.input_size, self.hidden_size
            hw, hb = self._heads()
            if self.backbone_layers == 0:
                spec = CfCLayer(H, hw.shape[0], False, self.mode)
                return spec, [hw[:, :I].T, hw[:, I:].T, hb, None, None], hw[:, :I], hb
            first: nn.Linear = self.backbone[0]  # type: ignore[assignment]
            W: Tensor = first.weight
            b: Tensor = first.bias
            act = self.backbone_activation
            if act == "lecun_tanh" and fold:
                W, b, hw, act = W * LECUN_B, b * LECUN_B, hw * LECUN_A, "tanh"
            spec = CfCLayer(H, W.shape[0], True, self.mode, act)
            return spec, [W[:, :I].T, W[:, I:].T, b, hw.T, hb], W[:, :I], b

        return build()

    def sequence_why_not(self) -> str | None:
        """Why no sequence kernel runs this cell (None: the C kernel may; the fused torch kernel
        gives its own reasons through ``_fused.cfc_why_not``)."""
        return self.spec.kernel_why_not(self.training, sequence=True)

    def draw_dropout(self, T: int, B: int, like: Tensor) -> list[Tensor] | None:
        """Dropout multipliers (0 or 1 / (1 - p)) of every backbone layer for a whole sequence,
        (T, B, K) each, drawn with torch's generator in that order; None outside training or
        without dropout. Sequence calls draw them once for every path (kernel or loop), so a
        seed gives the same masks whichever path runs; a loop of ``step_pre`` calls without them
        draws per step with ``nn.Dropout`` (another random stream)."""
        if not (self.training and self.backbone_dropout > 0 and self.backbone_layers > 0):
            return None
        keep = 1.0 - self.backbone_dropout
        return [
            torch.empty(T, B, self.backbone_units, dtype=like.dtype, device=like.device).bernoulli_(keep).div_(keep)
            for _ in range(self.backbone_layers)
        ]

    def _sequence_plan(self) -> tuple[CfCLayer, list[Tensor | None], Tensor, Tensor]:
        """(spec, params as ``CfCLayer.n_params`` says, Wx, b) of the sequence kernels, any option."""
        I, H = self.input_size, self.hidden_size
        hw, hb = self._heads()
        pure = [self.A, self.w_tau] if self.mode == "pure" else []
        if self.backbone_layers == 0:
            spec = CfCLayer(H, hw.shape[0], False, self.mode, head=self.head_activation)
            return spec, [hw[:, :I].T, hw[:, I:].T, hb, None, None, *pure], hw[:, :I], hb
        first: nn.Linear = self.backbone[0]  # type: ignore[assignment]
        W: Tensor = first.weight
        b: Tensor = first.bias
        act = self.backbone_activation
        if act == "lecun_tanh" and self.backbone_layers == 1:  # fold the constants (see fused_plan)
            W, b, hw, act = W * LECUN_B, b * LECUN_B, hw * LECUN_A, "tanh"
        deep: list[Tensor | None] = []
        for layer in list(self.backbone)[1:]:
            assert isinstance(layer, nn.Linear)
            deep += [layer.weight.T, layer.bias]
        dropout = self.training and self.backbone_dropout > 0
        spec = CfCLayer(H, W.shape[0], True, self.mode, act, self.backbone_layers, self.head_activation, dropout)
        return spec, [W[:, :I].T, W[:, I:].T, b, hw.T, hb, *deep, *pure], W[:, :I], b

    def sequence_job(self, x: Tensor, h0: Tensor, ts: Tensor, mask: Tensor | None,
                     drops: list[Tensor] | None = None, lstm: CfCLSTM | None = None) -> CfCJob:  # fmt: skip
        """The whole sequence's work for an executor (see ``sequence_why_not``); ``drops`` from
        :meth:`draw_dropout` (drawn here when the cell needs them and none are given); ``lstm``: the
        layer's mixed-memory LSTM."""
        spec, params, Wx, b = self._sequence_plan()
        if lstm is not None:
            spec = dataclasses.replace(spec, memory=True)
        params = [None, *params[1:2], None, *params[3:]]  # layer 0's input map is P
        P = F.linear(x.transpose(0, 1), Wx, b)  # (T, B, K)
        keep = None if mask is None else mask.t().unsqueeze(-1)
        if spec.dropout and drops is None:
            drops = self.draw_dropout(P.shape[0], P.shape[1], P)
        return CfCJob([spec], P, ts.transpose(0, 1), keep, h0, [params], drops=[drops] if spec.dropout else None,
                      lstm=lstm)  # fmt: skip

    def fused_output(self, S: Tensor) -> Tensor:
        return S

    def fused_step(self, x: Tensor, h: Tensor, dt: float | Tensor) -> Tensor:
        """The new state after one step, without autograd (streaming; see ``fused_why_not``)."""
        plan = self.fused_plan(fold=False) if self.sparsity_mask is not None else None
        if plan is None:  # unmasked heads: four small products instead of concatenating the weights
            assert self.f2 is not None and self.time_a is not None and self.time_b is not None
            I = self.input_size
            first: nn.Linear = self.backbone[0] if self.backbone_layers else self.f1  # type: ignore[assignment]
            if self.backbone_layers:
                u = torch.addmm(F.linear(x, first.weight[:, :I], first.bias), h, first.weight[:, I:].T)
                z = _fused.backbone_act(self.backbone_activation, u)
            else:
                z = torch.cat([x, h], 1)
            f1 = torch.tanh(F.linear(z, self.f1.weight, self.f1.bias))
            f2 = torch.tanh(F.linear(z, self.f2.weight, self.f2.bias))
            ta = F.linear(z, self.time_a.weight, self.time_a.bias)
            tb = F.linear(z, self.time_b.weight, self.time_b.bias)
            g = torch.sigmoid(
                torch.addcmul(tb, ta, dt, value=-1.0) if isinstance(dt, Tensor) else torch.add(tb, ta, alpha=-dt)
            )
            return torch.lerp(f2, f1, g) if self.mode == "default" else torch.addcmul(f2, f1, g)
        spec, (_, WhT, _, HwT, hb), Wx, b = plan
        return _fused.cfc_chain_step([spec], F.linear(x, Wx, b), dt, h, [[None, WhT, None, HwT, hb]])

    def get_config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "mode": self.mode,
            "backbone_activation": self.backbone_activation,
            "backbone_units": self.backbone_units,
            "backbone_layers": self.backbone_layers,
            "backbone_dropout": self.backbone_dropout,
            "head_activation": self.head_activation,
        }


class WiredCfCCell(nn.Module):
    """CfC laid out by a wiring: one CfC sub-cell (no backbone) per wiring layer, in order.

    For an NCP: inter -> command -> motor. Layer l sees the outputs of layer l-1 (layer 0 sees the
    inputs) through the wiring's (sensory) adjacency, and its own layer densely. The state is the
    concatenation of the layers' states in layer order; the output is the last layer's state.
    """

    layers: nn.ModuleList

    def __init__(self, input_size: int | None, wiring: Wiring, mode: str = "default") -> None:
        super().__init__()
        if not isinstance(wiring, Wiring):
            raise TypeError(f"wiring must be a Wiring; got {type(wiring).__name__}")
        wiring = wiring.copy()
        if input_size is not None:
            wiring.build(input_size)
        if not wiring.is_built() or wiring.input_dim is None or wiring.sensory_adjacency_matrix is None:
            raise ValueError("the wiring is not built: pass input_size or call wiring.build(input_dim)")
        self.wiring = wiring
        self.mode = mode
        self.input_size = wiring.input_dim
        layers = []
        in_features = wiring.input_dim
        for mask in ncp_layer_masks(wiring):
            hidden = mask.shape[1]
            layers.append(CfCCell(in_features, hidden, mode, "lecun_tanh", 0, 0, 0.0, sparsity_mask=mask))
            in_features = hidden
        self.layers = nn.ModuleList(layers)
        self.layer_sizes = [len(wiring.get_neurons_of_layer(i)) for i in range(wiring.num_layers)]

    @property
    def state_size(self) -> int:
        return self.wiring.units

    @property
    def output_size(self) -> int:
        return self.layer_sizes[-1]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def precompute(self, x: Tensor) -> Tensor:
        first: CfCCell = self.layers[0]  # type: ignore[assignment]
        return first.precompute(x)

    def step_pre(self, pre_t: Tensor, h: Tensor, dt: float | Tensor) -> tuple[Tensor, Tensor]:
        states = torch.split(h, self.layer_sizes, dim=1)
        first: CfCCell = self.layers[0]  # type: ignore[assignment]
        out, _ = first.step_pre(pre_t, states[0], dt)
        new = [out]
        for layer, state in zip(list(self.layers)[1:], states[1:]):
            out, _ = layer(out, state, dt)
            new.append(out)
        return out, torch.cat(new, dim=1)

    def forward(self, input: Tensor, hx: Tensor, timespans: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
        return self.step_pre(self.precompute(input), hx, timespans)

    def fused_why_not(self) -> str | None:
        """Why no one-step kernel runs this cell; None when they do (every layer must allow it)."""
        for layer in self.layers:
            why = layer.fused_why_not()  # type: ignore[operator]
            if why is not None:
                return why
        return None

    def sequence_why_not(self) -> str | None:
        """Why no sequence kernel runs this cell; None when the C kernel may."""
        for layer in self.layers:
            why = layer.sequence_why_not()  # type: ignore[operator]
            if why is not None:
                return why
        return None

    def _chain(self) -> tuple[list[CfCLayer], list[list[Tensor | None]], Tensor, Tensor]:
        plans = [layer.fused_plan() for layer in self.layers]  # type: ignore[operator]
        assert all(p is not None for p in plans), self.fused_why_not()
        specs = [p[0] for p in plans]  # type: ignore[index]
        params: list[list[Tensor | None]] = []
        for l, (_, (WxT, WhT, b, _, _), _, _) in enumerate(plans):  # type: ignore[misc]
            params.append([None, WhT, None, None, None] if l == 0 else [WxT, WhT, b, None, None])
        _, _, Wx, b0 = plans[0]  # type: ignore[misc]
        return specs, params, Wx, b0

    def sequence_job(self, x: Tensor, h0: Tensor, ts: Tensor, mask: Tensor | None,
                     drops: list[Tensor] | None = None, lstm: CfCLSTM | None = None) -> CfCJob:  # fmt: skip
        """The whole sequence's work for an executor: all layers chained (no backbone: no dropout);
        ``lstm``: the layer's mixed-memory LSTM, before the chain."""
        plans = [layer._sequence_plan() for layer in self.layers]  # type: ignore[operator]
        specs = [p[0] for p in plans]
        if lstm is not None:
            specs[0] = dataclasses.replace(specs[0], memory=True)
        params: list[list[Tensor | None]] = []
        for l, (_, p, _, _) in enumerate(plans):
            params.append([None, p[1], None, *p[3:]] if l == 0 else p)
        Wx, b0 = plans[0][2], plans[0][3]
        P = F.linear(x.transpose(0, 1), Wx, b0)  # (T, B, heads of layer 0)
        keep = None if mask is None else mask.t().unsqueeze(-1)
        return CfCJob(specs, P, ts.transpose(0, 1), keep, h0, params, lstm=lstm)

    def fused_output(self, S: Tensor) -> Tensor:
        return S[..., -self.layer_sizes[-1] :]

    def fused_step(self, x: Tensor, h: Tensor, dt: float | Tensor) -> Tensor:
        """The new state after one step, without autograd (streaming; see ``fused_why_not``)."""
        specs, params, Wx, b0 = self._chain()
        return _fused.cfc_chain_step(specs, F.linear(x, Wx, b0), dt, h, params)

    def get_config(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "wiring": self.wiring.get_config(), "mode": self.mode}


class MixedMemoryLSTMCell(nn.Module):
    """The LSTM that runs before the liquid cell when ``mixed_memory=True`` (as in ncps).

    z = W_x x + b + W_h h;  [i, ig, fg, og] = split(z);  c' = c sigmoid(fg + 1) + tanh(i) sigmoid(ig);
    h' = tanh(c') sigmoid(og).

    ``forget_bias`` (the CfC paper's mixed-memory hyper-parameter, 0.6-2.1 in its recipes): the
    forget gate's total bias at initialisation. The constant 1 stays in the equation (so exports and
    conversions are unchanged); the rest, ``forget_bias - 1``, goes into the forget chunk of ``b``.
    """

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.input_map = nn.Linear(input_size, 4 * hidden_size)
        self.recurrent_map = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        nn.init.xavier_uniform_(self.input_map.weight)
        nn.init.uniform_(self.input_map.bias, -0.1, 0.1)
        if forget_bias != 1.0:
            with torch.no_grad():
                self.input_map.bias[2 * hidden_size : 3 * hidden_size] += float(forget_bias) - 1.0
        nn.init.orthogonal_(self.recurrent_map.weight)

    def precompute(self, x: Tensor) -> Tensor:
        return self.input_map(x)

    def step_pre(self, pre_t: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        z = pre_t + self.recurrent_map(h)
        i, ig, fg, og = z.chunk(4, dim=-1)
        c = c * torch.sigmoid(fg + 1.0) + torch.tanh(i) * torch.sigmoid(ig)
        return torch.tanh(c) * torch.sigmoid(og), c

    def forward(self, x: Tensor, states: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        return self.step_pre(self.input_map(x), states[0], states[1])


__all__ = [
    "ACTIVATIONS",
    "CFC_MODES",
    "HEAD_ACTIVATIONS",
    "LTC_INIT_RANGES",
    "CfCCell",
    "LTCCell",
    "MixedMemoryLSTMCell",
    "WiredCfCCell",
    "inverse_softplus",
]
