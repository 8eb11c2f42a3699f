"""Shared test helpers: the registry of every layer configuration, and glue to the numpy reference.

Tests parametrize over ``LAYERS`` so a new cell, mode, wiring or solver is tested the moment it is
added here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

import reference as ref
from liquidflow.torch import LTC, CfC
from liquidflow.torch._cells import CfCCell, LTCCell, WiredCfCCell
from liquidflow.wirings import NCP, AutoNCP, FullyConnected, Random

INPUT_SIZE = 4

LayerFactory = Callable[[], torch.nn.Module]

# Explicit solvers are only conditionally stable: enough unfolds for dt up to ~2 (random_batch).
LAYERS: dict[str, LayerFactory] = {
    "ltc-fc": lambda: LTC(INPUT_SIZE, 6),
    "ltc-ncp": lambda: LTC(INPUT_SIZE, NCP(4, 3, 2, 2, 2, 2, 2, seed=3)),
    "ltc-autoncp-rk4": lambda: LTC(INPUT_SIZE, AutoNCP(10, 3, seed=5), solver="rk4", ode_unfolds=8),
    "ltc-euler": lambda: LTC(INPUT_SIZE, 5, solver="euler", ode_unfolds=16),
    "ltc-midpoint": lambda: LTC(INPUT_SIZE, 5, solver="midpoint", ode_unfolds=12),
    "ltc-heun": lambda: LTC(INPUT_SIZE, Random(5, 2, 0.4, random_seed=2), solver="heun", ode_unfolds=12),
    "ltc-mixed-proj": lambda: LTC(INPUT_SIZE, FullyConnected(5, 3), mixed_memory=True, proj_size=2),
    "ltc-linear-nomap": lambda: LTC(INPUT_SIZE, 5, input_mapping="linear", output_mapping=None),
    "cfc-default": lambda: CfC(INPUT_SIZE, 6, backbone_units=8),
    "cfc-no_gate": lambda: CfC(INPUT_SIZE, 6, mode="no_gate", backbone_units=8),
    "cfc-pure": lambda: CfC(INPUT_SIZE, 6, mode="pure", backbone_units=8),
    "cfc-nobackbone": lambda: CfC(INPUT_SIZE, 6, backbone_layers=0),
    "cfc-2layers-relu": lambda: CfC(INPUT_SIZE, 5, activation="relu", backbone_units=7, backbone_layers=2),
    "cfc-mixed-proj": lambda: CfC(INPUT_SIZE, 5, mixed_memory=True, proj_size=3, backbone_units=8),
    # the CfC paper's cell: lecun_tanh heads, ReLU backbone, mixed memory with a forget bias
    "cfc-paper-heads": lambda: CfC(
        INPUT_SIZE,
        5,
        activation="relu",
        backbone_units=8,
        head_activation="lecun_tanh",
        mixed_memory=True,
        forget_bias=1.6,
    ),
    "wcfc-autoncp": lambda: CfC(INPUT_SIZE, AutoNCP(10, 3, seed=1)),
    "wcfc-ncp-no_gate": lambda: CfC(INPUT_SIZE, NCP(4, 3, 2, 2, 2, 2, 2), mode="no_gate"),
    "wcfc-ncp-pure": lambda: CfC(INPUT_SIZE, NCP(4, 3, 2, 2, 2, 2, 2), mode="pure"),
    "wcfc-fc": lambda: CfC(INPUT_SIZE, FullyConnected(5, 2)),
}


# One entry per remaining layer option, changing only that option from the default (LAYERS covers
# modes, solvers, wirings, backbones and mixed memory). tests/test_conformance.py runs LAYERS and
# OPTIONS on every path; most other tests parametrize over LAYERS alone to stay fast.
OPTIONS: dict[str, LayerFactory] = {
    "cfc-tanh": lambda: CfC(INPUT_SIZE, 6, activation="tanh", backbone_units=8),
    "cfc-gelu": lambda: CfC(INPUT_SIZE, 6, activation="gelu", backbone_units=8),
    "cfc-silu": lambda: CfC(INPUT_SIZE, 6, activation="silu", backbone_units=8),
    "cfc-relu": lambda: CfC(INPUT_SIZE, 6, activation="relu", backbone_units=8),
    "cfc-lecun-heads": lambda: CfC(INPUT_SIZE, 6, head_activation="lecun_tanh", backbone_units=8),
    "cfc-dropout": lambda: CfC(INPUT_SIZE, 6, backbone_dropout=0.3, backbone_units=8),
    "cfc-4layers-silu": lambda: CfC(INPUT_SIZE, 5, activation="silu", backbone_units=7, backbone_layers=4),
    "cfc-3layers-gelu-pure": lambda: CfC(
        INPUT_SIZE, 5, mode="pure", activation="gelu", backbone_units=7, backbone_layers=3
    ),
    "cfc-nobackbone-pure": lambda: CfC(INPUT_SIZE, 6, mode="pure", backbone_layers=0),
    "cfc-2layers-lecun-heads-no_gate": lambda: CfC(
        INPUT_SIZE, 5, mode="no_gate", head_activation="lecun_tanh", backbone_units=7, backbone_layers=2
    ),
    "cfc-proj": lambda: CfC(INPUT_SIZE, 6, proj_size=2, backbone_units=8),
    "cfc-mixed-forget": lambda: CfC(INPUT_SIZE, 5, mixed_memory=True, forget_bias=1.6, backbone_units=8),
    "ltc-proj": lambda: LTC(INPUT_SIZE, 6, proj_size=3),
    "ltc-unfolds1-eps": lambda: LTC(INPUT_SIZE, 5, ode_unfolds=1, epsilon=1e-3),
    "ltc-nomap-linear": lambda: LTC(INPUT_SIZE, 5, input_mapping=None, output_mapping="linear"),
    "ltc-random-wiring": lambda: LTC(INPUT_SIZE, Random(6, 3, 0.5, random_seed=4)),
    # explicit solvers on the edge-list kernels (LAYERS: rk4 there, euler / midpoint / heun dense)
    "ltc-euler-ncp": lambda: LTC(INPUT_SIZE, NCP(4, 3, 2, 2, 2, 2, 2, seed=3), solver="euler", ode_unfolds=16),
    "ltc-midpoint-autoncp": lambda: LTC(INPUT_SIZE, AutoNCP(10, 3, seed=5), solver="midpoint", ode_unfolds=6),
    "ltc-heun-ncp-proj": lambda: LTC(INPUT_SIZE, NCP(4, 3, 2, 2, 2, 2, 2), solver="heun", ode_unfolds=8, proj_size=2),
    # mixed memory on an edge-list wiring and with an explicit solver
    "ltc-mixed-autoncp": lambda: LTC(INPUT_SIZE, AutoNCP(10, 3, seed=5), mixed_memory=True),
    "ltc-mixed-euler": lambda: LTC(INPUT_SIZE, 5, mixed_memory=True, solver="euler", ode_unfolds=12),
    "wcfc-autoncp-proj": lambda: CfC(INPUT_SIZE, AutoNCP(10, 3, seed=1), proj_size=2),
}
ALL_LAYERS: dict[str, LayerFactory] = {**LAYERS, **OPTIONS}


def make_layer(name: str, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    layer = ALL_LAYERS[name]().to(dtype)
    # move the parameters off their symmetric initial values so that every term matters
    with torch.no_grad():
        for pname, p in layer.named_parameters():
            if pname.endswith(("input_b", "output_b", "bias", "w_tau")) or "vleak" in pname:
                p.add_(0.1 * torch.randn_like(p))
            if pname.endswith(("input_w", "output_w", ".A")):
                p.mul_(1.0 + 0.2 * torch.randn_like(p))
    return layer


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def ltc_params(cell: LTCCell) -> dict[str, np.ndarray]:
    return {k: _np(v) for k, v in cell.effective_parameters().items()}


def cfc_params(cell: CfCCell) -> dict[str, object]:
    mask = None if cell.sparsity_mask is None else _np(cell.sparsity_mask)

    def w(lin: torch.nn.Linear, masked: bool) -> np.ndarray:
        W = _np(lin.weight)
        return W * mask if (masked and mask is not None) else W

    p: dict[str, object] = {"backbone": [(_np(l.weight), _np(l.bias)) for l in cell.backbone]}
    p["f1_w"], p["f1_b"] = w(cell.f1, True), _np(cell.f1.bias)
    if cell.mode == "pure":
        p["w_tau"], p["A"] = _np(cell.w_tau), _np(cell.A)
    else:
        assert cell.f2 is not None and cell.time_a is not None and cell.time_b is not None
        p["f2_w"], p["f2_b"] = w(cell.f2, True), _np(cell.f2.bias)
        p["ta_w"], p["ta_b"] = w(cell.time_a, False), _np(cell.time_a.bias)
        p["tb_w"], p["tb_b"] = w(cell.time_b, False), _np(cell.time_b.bias)
    return p


def reference_step(layer: torch.nn.Module) -> Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]:
    """The reference one-sample step function for a layer's cell."""
    cell = layer.cell
    if isinstance(cell, LTCCell):
        p = ltc_params(cell)
        return lambda x, h, dt: ref.ltc_step(
            p, x, h, dt, cell.motor_size, cell.ode_unfolds, cell.solver.name, cell.epsilon
        )
    if isinstance(cell, WiredCfCCell):
        layers = [cfc_params(c) for c in cell.layers]
        return lambda x, h, dt: ref.wired_cfc_step(layers, cell.layer_sizes, x, h, dt, cell.mode)  # type: ignore[arg-type]
    assert isinstance(cell, CfCCell)
    p = cfc_params(cell)
    return lambda x, h, dt: ref.cfc_step(p, x, h, dt, cell.mode, cell.backbone_activation, cell.head_activation)  # type: ignore[arg-type]


def reference_run(
    layer: torch.nn.Module,
    x: torch.Tensor,
    dt: torch.Tensor,
    mask: torch.Tensor | None = None,
    hx: object = None,
    return_sequences: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Run the reference over a batch, one sample at a time. x (B,T,I), dt (B,T)."""
    step = reference_step(layer)
    lstm = None
    if layer.lstm is not None:
        lstm = {
            "input_w": _np(layer.lstm.input_map.weight),
            "input_b": _np(layer.lstm.input_map.bias),
            "recurrent_w": _np(layer.lstm.recurrent_map.weight),
        }
    proj = None if layer.fc is None else (_np(layer.fc.weight), _np(layer.fc.bias))
    outs, hs, cs = [], [], []
    n = layer.state_size
    for b in range(x.shape[0]):
        if hx is None:
            h0, c0 = np.zeros(n), (np.zeros(n) if lstm is not None else None)
        elif isinstance(hx, tuple):
            h0, c0 = _np(hx[0][b]), _np(hx[1][b])
        else:
            h0, c0 = _np(hx[b]), None  # type: ignore[index]
        y, h, c = ref.run_sequence(
            step,
            _np(x[b]),
            _np(dt[b]),
            h0,
            None if mask is None else mask[b].numpy(),
            lstm,
            c0,
            proj,
            return_sequences,
        )
        outs.append(y)
        hs.append(h)
        cs.append(c)
    return np.stack(outs), np.stack(hs), (np.stack(cs) if lstm is not None else None)  # type: ignore[arg-type]


def random_batch(B: int, T: int, dtype: torch.dtype = torch.float64, seed: int = 0, masked: bool = False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, INPUT_SIZE, generator=g, dtype=dtype)
    dt = (torch.rand(B, T, generator=g, dtype=dtype) * 2.0 + 0.05).to(dtype)
    mask = None
    if masked:
        mask = torch.rand(B, T, generator=g) > 0.3
        mask[:, 0] = True
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        for b in range(B):
            mask[b, lengths[b] :] = False
            dt[b, lengths[b] :] = 0.0  # padding may hold anything non-positive
    return x, dt, mask


# ------------------------------------------------------------------------------- native kernels
def require_native(name: str) -> None:
    """Skip (fail under CI=true) when the native kernel library ``name`` cannot be built here."""
    import os

    import pytest

    from liquidflow import _native

    if _native.load(name) is None:
        why = _native.status().get(name, "")
        if os.environ.get("CI") == "true":
            pytest.fail(f"the native {name} kernel is unavailable in CI: {why}")
        pytest.skip(f"the native {name} kernel is unavailable: {why}")


def close_scaled(a: torch.Tensor, b: torch.Tensor, tol: float, what: str) -> None:
    """max |a - b| <= tol * max(1, max |b|)."""
    scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
    err = float((a - b).abs().max()) if a.numel() else 0.0
    assert err <= tol * scale, f"{what}: max abs difference {err:.3g} (scale {scale:.3g})"


def run_with_grads(layer, x, dt, mask, h0, native: bool, return_sequences: bool = True):
    """Outputs, final state and the gradients of a random projection of both with respect to every
    trainable parameter, the input and h0 — with the native kernels on or off (torch kernels)."""
    from liquidflow import _native
    from liquidflow._ops import fused as _fused

    layer.return_sequences = return_sequences
    params = [p for p in layer.parameters() if p.requires_grad]
    xx = x.clone().requires_grad_()
    hh = h0.clone().requires_grad_() if h0 is not None else None
    with _native.use_native(native), _fused.use_fused(True):
        out, h = layer(xx, hh, timespans=dt, mask=mask)
    g = torch.Generator().manual_seed(7)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    loss = loss + (h * torch.randn(h.shape, generator=g, dtype=h.dtype)).sum()
    wrt = params + [xx] + ([hh] if hh is not None else [])
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    grads = [torch.zeros_like(w) if gr is None else gr for gr, w in zip(grads, wrt)]
    return out.detach(), h.detach(), grads
