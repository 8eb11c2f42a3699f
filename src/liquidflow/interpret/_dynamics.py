"""Dynamics of a liquid layer: neuron traces, LTC time constants, CfC gate time scales.

LTC (docs/math.md, section 2): the membrane equation of neuron j is
``C_m,j dv_j/dt = numer_j(v, x) - denom_j(v, x) v_j`` with
``denom_j = g_leak,j + sum_i a_ij(v_i) + sum_k s_kj(x_k)``, so the neuron relaxes towards
``numer_j / denom_j`` with the time constant ``tau_sys,j = C_m,j / denom_j``. Synaptic conductances
open and close with the state and the input: tau_sys is "liquid".

CfC (section 3): the new state is a gate between two heads, ``g = sigmoid(-(Wa z + ba) dt + (Wb z + bb))``.
``Wa z + ba`` is the rate at which the gate moves from ``f1`` to ``f2`` as the elapsed time grows; its
inverse magnitude ``1 / |Wa z + ba|`` is the time scale of the neuron, again a function of the input
and the state through ``z``. In ``pure`` mode the rate is ``|w_tau| + |W1 z + b1|``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..torch import CfCCell, LTCCell, WiredCfCCell
from ._model import Trace, as_batch, get_core, kind, neuron_order, neuron_types, normalize_inputs

Tensor = torch.Tensor


def _ltc_cell(model: nn.Module) -> LTCCell:
    if isinstance(model, LTCCell):
        return model
    cell = get_core(model).cell
    if not isinstance(cell, LTCCell):
        raise TypeError(f"time constants tau_sys are defined for LTC cells; got {type(cell).__name__}")
    return cell


def ltc_conductances(model: nn.Module, x: Tensor, v: Tensor) -> dict[str, Tensor]:
    """Synaptic and leak conductances of an LTC neuron for inputs ``x`` (B, I) and states ``v`` (B, N).

    ``x`` is the layer's input before its input mapping (the cell applies ``input_w x + input_b``).
    Returns ``gleak`` (N,), ``cm`` (N,), ``synaptic`` (B, N) = sum_i a_ij(v_i), ``sensory`` (B, N) =
    sum_k s_kj(x_k), ``denom`` (B, N) = gleak + synaptic + sensory and ``tau`` (B, N) = cm / denom.
    """
    cell = _ltc_cell(model)
    p = cell.effective_parameters()
    xm = cell.map_inputs(x)  # (B, I)
    ws = p["sensory_w"] * p["sensory_sparsity_mask"]  # (I, N)
    s = ws * torch.sigmoid(p["sensory_sigma"] * (xm.unsqueeze(-1) - p["sensory_mu"]))  # (B, I, N)
    w = p["w"] * p["sparsity_mask"]  # (N, N)
    a = w * torch.sigmoid(p["sigma"] * (v.unsqueeze(-1) - p["mu"]))  # (B, N, N): pre i, post j
    synaptic = a.sum(1)
    sensory = s.sum(1)
    denom = p["gleak"] + synaptic + sensory
    return {
        "gleak": p["gleak"],
        "cm": p["cm"],
        "synaptic": synaptic,
        "sensory": sensory,
        "denom": denom,
        "tau": p["cm"] / denom,
    }


def ltc_time_constants(model: nn.Module, x: Tensor, v: Tensor) -> Tensor:
    """tau_sys (B, N) = C_m / (g_leak + sum_i a_ij(v_i) + sum_k s_kj(x_k)) of an LTC layer or cell,
    for inputs ``x`` (B, I) (before the input mapping) and states ``v`` (B, N) (docs/math.md)."""
    return ltc_conductances(model, x, v)["tau"]


def cfc_internals(cell: CfCCell, pre_t: Tensor, h: Tensor, dt: Tensor | float) -> dict[str, Tensor]:
    """One CfC step (as ``CfCCell.step_pre``) with its internals: f1, f2, rate (Wa z + ba), bias
    (Wb z + bb), gate g and the new state (pure mode: rate = |w_tau| + |u1|, no gate)."""
    weight, _ = cell._first()
    u = pre_t + F.linear(h, weight[:, cell.input_size :])
    if cell.backbone_layers > 0:
        z = cell._act(u)
        if cell.dropout is not None:
            z = cell.dropout(z)
        for layer in list(cell.backbone)[1:]:
            z = cell._act(layer(z))
            if cell.dropout is not None:
                z = cell.dropout(z)
        hw, hb = cell._heads()
        u = F.linear(z, hw, hb)
    H = cell.hidden_size
    if cell.mode == "pure":
        rate = torch.abs(cell.w_tau) + torch.abs(u)
        new = cell.A - cell.A * torch.exp(-dt * rate) * u
        return {"rate": rate, "new": new}
    f1 = cell._head_act(u[:, :H])
    f2 = cell._head_act(u[:, H : 2 * H])
    rate = u[:, 2 * H : 3 * H]
    bias = u[:, 3 * H :]
    g = torch.sigmoid(-rate * dt + bias)
    new = f1 * g + f2 if cell.mode == "no_gate" else f2 + g * (f1 - f2)
    return {"f1": f1, "f2": f2, "rate": rate, "bias": bias, "gate": g, "new": new}


def _cfc_step(cell: nn.Module, pre_t: Tensor, h: Tensor, dt: Tensor) -> dict[str, Tensor]:
    if isinstance(cell, CfCCell):
        return cfc_internals(cell, pre_t, h, dt)
    assert isinstance(cell, WiredCfCCell)
    states = torch.split(h, cell.layer_sizes, dim=1)
    parts: list[dict[str, Tensor]] = []
    inp: Tensor | None = None
    for layer, state in zip(cell.layers, states, strict=True):
        assert isinstance(layer, CfCCell)
        pre = pre_t if inp is None else layer.precompute(inp)
        out = cfc_internals(layer, pre, state, dt)
        parts.append(out)
        inp = out["new"]
    return {key: torch.cat([p[key] for p in parts], dim=1) for key in parts[0]}


@torch.no_grad()
def trace(
    model: nn.Module,
    x: Tensor | np.ndarray,
    timespans: Tensor | np.ndarray | float | None = None,
    mask: Any = None,
    hx: Tensor | None = None,
) -> Trace:
    """Run the liquid layer of ``model`` over ``x`` (B, T, I) (raw inputs; a SequenceModel's input
    normalization is applied) and record states, time constants and gates at every step.

    The states equal those of the layer's own forward pass; for LTC, ``tau`` at step t uses the
    state before the step and the input of the step. Masked steps carry the state and get NaN
    time constants and gates.
    """
    core = get_core(model)
    xb, ts, m = as_batch(model, x, timespans, mask)
    xb = normalize_inputs(model, xb)
    B, T, _ = xb.shape
    cell = core.cell
    h = torch.zeros(B, core.state_size, dtype=xb.dtype, device=xb.device) if hx is None else hx
    c = torch.zeros_like(h) if core.lstm is not None else None
    pre = cell.precompute(xb)  # type: ignore[operator]
    pre_lstm = core.lstm.precompute(xb) if core.lstm is not None else None
    k = kind(model)
    states, taus, gates, rates = [], [], [], []
    for t in range(T):
        h_prev, c_prev = h, c
        if core.lstm is not None:
            assert pre_lstm is not None and c is not None
            h, c = core.lstm.step_pre(pre_lstm[:, t], h, c)
        dt = ts[:, t : t + 1]
        if k == "ltc":
            taus.append(ltc_time_constants(cell, xb[:, t], h))
            _, h = cell.step_pre(pre[:, t], h, dt)  # type: ignore[operator]
        else:
            out = _cfc_step(cell, pre[:, t], h, dt)
            rates.append(out["rate"])
            if "gate" in out:
                gates.append(out["gate"])
            h = out["new"]
        if m is not None:
            keep = m[:, t : t + 1]
            h = torch.where(keep, h, h_prev)
            if c is not None:
                assert c_prev is not None
                c = torch.where(keep, c, c_prev)
            nan = torch.full_like(h, float("nan"))
            for series in (taus, gates, rates):
                if len(series) == t + 1:
                    series[-1] = torch.where(keep, series[-1], nan)
        states.append(h)
    order = np.argsort(neuron_order(model))  # state slot of each neuron id

    def stack(series: list[Tensor]) -> np.ndarray | None:
        if not series:
            return None
        return torch.stack(series, dim=1).detach().cpu().numpy()[..., order]

    return Trace(
        kind=k,
        inputs=xb.detach().cpu().numpy(),
        timespans=ts.detach().cpu().numpy(),
        states=stack(states),  # type: ignore[arg-type]
        neuron_types=neuron_types(model),
        tau=stack(taus),
        gate=stack(gates),
        rate=stack(rates),
    )


def step_probe(
    input_size: int,
    steps: int = 80,
    switch: int | None = None,
    low: float = -1.0,
    high: float = 1.0,
    channel: int | None = None,
) -> np.ndarray:
    """A probe sequence (1, steps, I) that holds every input at ``low`` and switches to ``high`` at
    step ``switch`` (default: the middle), on one ``channel`` or all: the response of the time
    constants to it shows how they follow the input."""
    switch = steps // 2 if switch is None else switch
    if not 0 < switch < steps:
        raise ValueError(f"switch must be in (0, {steps}); got {switch}")
    x = np.full((1, steps, input_size), low, dtype=np.float32)
    if channel is None:
        x[:, switch:, :] = high
    else:
        if not 0 <= channel < input_size:
            raise ValueError(f"channel must be in [0, {input_size}); got {channel}")
        x[:, :, :] = 0.0
        x[:, :switch, channel] = low
        x[:, switch:, channel] = high
    return x


def timescale_shift(tr: Trace, switch: int, settle: int = 5) -> np.ndarray:
    """Per neuron, the ratio of the median time scale after an input switch (from ``switch + settle``)
    to the median before it (the last ``switch - settle`` steps before): the "liquid" response of each
    neuron's time constant to a change of input. Sample 0 of the trace is used."""
    ts = tr.timescale[0]  # (T, N)
    before = np.nanmedian(ts[settle:switch], axis=0)
    after = np.nanmedian(ts[switch + settle :], axis=0)
    return np.asarray(after / before)
