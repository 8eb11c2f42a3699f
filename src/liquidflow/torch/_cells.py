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

from .._frontend import WiredCfCSizes
from .._ops import fused as _fused
from .._ops.jobs import CfCJob, CfCLSTM
from .._spec import (
    CFC_MODES,
    HEAD_ACTIVATIONS,
    LECUN_A,
    LECUN_B,
    LTC_INIT_RANGES,
    CfCLayer,
    CfCSpec,
    ncp_layer_masks,
)
from ..wirings import Wiring
from ._ltc_cell import LTCCell as LTCCell
from ._ltc_cell import _as_dt
from ._ltc_cell import inverse_softplus as inverse_softplus

Tensor = torch.Tensor


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


class WiredCfCCell(WiredCfCSizes, nn.Module):
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
        # the user's wiring, built in place (as ncps), or a copy when it is built for another size
        wiring = wiring.built_for(input_size)
        assert wiring.input_dim is not None
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
        self.layer_sizes = self.wiring_layer_sizes(wiring)

    # state_size, output_size, num_layers: from WiredCfCSizes; the rest of ncps's sizes from the wiring
    @property
    def sensory_size(self) -> int:
        return int(self.input_size)

    @property
    def motor_size(self) -> int:
        return int(self.output_size)

    @property
    def synapse_count(self) -> int:
        return int(self.wiring.synapse_count)

    @property
    def sensory_synapse_count(self) -> int:
        return int(self.wiring.sensory_synapse_count)

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
