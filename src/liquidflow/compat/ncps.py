"""Import modules from the ``ncps`` package (ncps 1.0.1, ``ncps.torch``) with their weights.

``from_ncps(module)`` returns the liquidflow module that computes the same function: an ncps
``CfC``/``LTC`` layer becomes a :class:`liquidflow.torch.CfC`/:class:`~liquidflow.torch.LTC`, an
``CfCCell``/``WiredCfCCell``/``LTCCell`` the matching cell. The parameter mapping is documented in
docs/math.md ("Mapping from ncps"). ncps itself is only needed to *have* such a module; this file
never imports it (modules are recognised by class name and attributes).

Differences that are bug fixes, not mismatches: liquidflow applies ``timespans`` per sample; ncps
broadcasts them along the hidden axis, which is only correct at batch size 1.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ..torch import LTC, CfC, CfCCell, LTCCell, WiredCfCCell, inverse_softplus
from ..wirings import Wiring

__all__ = ["from_ncps", "wiring_from_ncps"]


def wiring_from_ncps(wiring: Any) -> Wiring:
    """Convert an ``ncps.wirings`` object to the liquidflow wiring with the same graph."""
    name = type(wiring).__name__
    units = int(wiring.units)
    registry: dict[str, Any] = dict(Wiring._registry)
    new: Wiring
    try:
        if name == "AutoNCP":
            new = registry["AutoNCP"](units, wiring._output_size, wiring._sparsity_level, wiring._seed)
        elif name == "NCP":
            new = registry["NCP"](
                wiring._num_inter_neurons,
                wiring._num_command_neurons,
                wiring._num_motor_neurons,
                wiring._sensory_fanout,
                wiring._inter_fanout,
                wiring._recurrent_command_synapses,
                wiring._motor_fanin,
            )
        elif name == "FullyConnected":
            new = registry["FullyConnected"](units, wiring.output_dim, self_connections=wiring.self_connections)
        elif name == "Random":
            new = registry["Random"](units, wiring.output_dim, wiring.sparsity_level)
        else:
            new = Wiring(units)
    except (AttributeError, TypeError):  # an unexpected subclass: keep the graph only
        new = Wiring(units)
    # The graph itself is copied, whatever the seed was: it is what the weights were trained on.
    new.adjacency_matrix = np.asarray(wiring.adjacency_matrix, dtype=np.int32).copy()
    new.output_dim = int(wiring.output_dim) if wiring.output_dim is not None else units
    if wiring.input_dim is not None:
        new.input_dim = int(wiring.input_dim)
        new.sensory_adjacency_matrix = np.asarray(wiring.sensory_adjacency_matrix, dtype=np.int32).copy()
        new._restore_after_build()
    return new


def _copy(dst: torch.Tensor, src: torch.Tensor) -> None:
    if dst.shape != src.shape:
        raise ValueError(f"shape mismatch while importing ncps weights: {tuple(src.shape)} -> {tuple(dst.shape)}")
    with torch.no_grad():
        dst.copy_(src.detach().to(dst.dtype))


def _copy_linear(dst: nn.Linear, src: nn.Linear, sign: float = 1.0) -> None:
    _copy(dst.weight, sign * src.weight)
    _copy(dst.bias, sign * src.bias)


def _ltc_cell_from_ncps(cell: Any, implicit: bool) -> LTCCell:
    wiring = wiring_from_ncps(cell._wiring)
    new = LTCCell(
        wiring,
        input_mapping=cell._input_mapping,
        output_mapping=cell._output_mapping,
        ode_unfolds=cell._ode_unfolds,
        epsilon=cell._epsilon,
    )
    params = dict(cell.named_parameters())
    for name in ("vleak", "sigma", "mu", "erev", "sensory_sigma", "sensory_mu", "sensory_erev"):
        _copy(getattr(new, name), params[name])
    for name in ("gleak", "cm", "w", "sensory_w"):
        value = params[name].detach()
        if implicit:
            raw = value  # ncps applies the same softplus at run time
        else:
            if (value <= 0).any():
                warnings.warn(
                    f"ncps parameter {name!r} has non-positive entries (min {value.min().item():.3g}); "
                    "liquidflow keeps it positive, so they are clamped to 1e-12",
                    stacklevel=3,
                )
            raw = inverse_softplus(value.double().clamp_min(1e-12)).to(value.dtype)
        _copy(getattr(new, f"{name}_raw"), raw)
    for name in ("input_w", "input_b", "output_w", "output_b"):
        if getattr(new, name) is not None:
            _copy(getattr(new, name), params[name])
    return new


def _cfc_cell_into(new: CfCCell, cell: Any) -> None:
    """Copy an ncps CfCCell's weights into a liquidflow CfCCell of the same shape."""
    if cell.backbone is not None:
        linears = [m for m in cell.backbone if isinstance(m, nn.Linear)]
        for dst, src in zip(new.backbone, linears):
            _copy_linear(dst, src)  # type: ignore[arg-type]
    if new.mode == "pure":
        _copy_linear(new.f1, cell.ff1)
        _copy(new.w_tau, cell.w_tau.reshape(-1))
        _copy(new.A, cell.A.reshape(-1))
        return
    assert new.f2 is not None and new.time_a is not None and new.time_b is not None
    # ncps: t = sigmoid(ta z ts + tb z), h' = ff1 (1 - t) + t ff2. Ours: g = t, f1 = ff2, f2 = ff1.
    _copy_linear(new.f1, cell.ff2)
    _copy_linear(new.f2, cell.ff1)
    _copy_linear(new.time_a, cell.time_a, sign=-1.0)
    _copy_linear(new.time_b, cell.time_b)


def _activation_name(cell: Any) -> str:
    if cell.backbone is None:
        return "lecun_tanh"
    act = cell.backbone[1]
    names = {"LeCun": "lecun_tanh", "Tanh": "tanh", "ReLU": "relu", "GELU": "gelu", "SiLU": "silu"}
    if type(act).__name__ not in names:
        raise ValueError(f"unsupported ncps backbone activation {type(act).__name__}")
    return names[type(act).__name__]


def _cfc_cell_from_ncps(cell: Any) -> CfCCell:
    linears = [] if cell.backbone is None else [m for m in cell.backbone if isinstance(m, nn.Linear)]
    dropouts = [] if cell.backbone is None else [m for m in cell.backbone if isinstance(m, nn.Dropout)]
    new = CfCCell(
        cell.ff1.in_features - cell.hidden_size if not linears else linears[0].in_features - cell.hidden_size,
        cell.hidden_size,
        cell.mode,
        _activation_name(cell),
        linears[0].out_features if linears else 128,
        len(linears),
        dropouts[0].p if dropouts else 0.0,
        sparsity_mask=None if cell.sparsity_mask is None else cell.sparsity_mask.detach().T.cpu().numpy(),
    )
    _cfc_cell_into(new, cell)
    return new


def _wired_cfc_from_ncps(cell: Any) -> WiredCfCCell:
    new = WiredCfCCell(None, wiring_from_ncps(cell._wiring), cell._layers[0].mode)
    for dst, src in zip(new.layers, cell._layers):
        _cfc_cell_into(dst, src)  # type: ignore[arg-type]
    return new


def _mixed_memory_into(dst: Any, src: Any) -> None:
    _copy_linear(dst.input_map, src.input_map)
    _copy(dst.recurrent_map.weight, src.recurrent_map.weight)


def _layer_kwargs(module: Any) -> dict[str, Any]:
    """The sequence-layer options an ncps LTC/CfC shares with ours."""
    return {"return_sequences": module.return_sequences, "batch_first": module.batch_first,
            "mixed_memory": module.use_mixed}  # fmt: skip


def from_ncps(ncps_module: nn.Module) -> nn.Module:
    """Convert an ncps.torch CfC, LTC, CfCCell, WiredCfCCell or LTCCell, weights included."""
    module: Any = ncps_module
    name = type(module).__name__
    if name == "LTCCell":
        return _ltc_cell_from_ncps(module, bool(getattr(module, "_implicit_param_constraints", False)))
    if name == "CfCCell":
        return _cfc_cell_from_ncps(module)
    if name == "WiredCfCCell":
        return _wired_cfc_from_ncps(module)
    if name == "LTC":
        src_cell = module.rnn_cell
        implicit = bool(getattr(src_cell, "_implicit_param_constraints", False))
        cell = _ltc_cell_from_ncps(src_cell, implicit)
        new_ltc = LTC(
            int(module.input_size),
            cell.wiring,
            **_layer_kwargs(module),
            input_mapping=cell.input_mapping,
            output_mapping=cell.output_mapping,
            ode_unfolds=cell.ode_unfolds,
            epsilon=cell.epsilon,
        )
        new_ltc.cell.load_state_dict(cell.state_dict())
        if module.use_mixed:
            _mixed_memory_into(new_ltc.lstm, module.lstm)  # type: ignore[arg-type]
        return new_ltc.to(next(module.parameters()).dtype)
    if name == "CfC":
        src = module.rnn_cell
        proj = module.fc.out_features if isinstance(module.fc, nn.Linear) else None
        if type(src).__name__ == "WiredCfCCell":
            wired = _wired_cfc_from_ncps(src)
            kw = _layer_kwargs(module)
            new_cfc = CfC(int(module.input_size), wired.wiring, proj_size=proj, mode=wired.mode, **kw)
            new_cfc.cell.load_state_dict(wired.state_dict())
        else:
            c = _cfc_cell_from_ncps(src)
            new_cfc = CfC(
                int(module.input_size),
                c.hidden_size,
                proj_size=proj,
                **_layer_kwargs(module),
                mode=c.mode,
                activation=c.backbone_activation,
                backbone_units=c.backbone_units,
                backbone_layers=c.backbone_layers,
                backbone_dropout=c.backbone_dropout,
            )
            new_cfc.cell.load_state_dict(c.state_dict())
        if module.use_mixed:
            _mixed_memory_into(new_cfc.lstm, module.lstm)  # type: ignore[arg-type]
        if proj is not None:
            assert new_cfc.fc is not None
            _copy_linear(new_cfc.fc, module.fc)  # type: ignore[arg-type]
        return new_cfc.to(next(module.parameters()).dtype)
    raise TypeError(f"from_ncps expects an ncps.torch CfC, LTC, CfCCell, WiredCfCCell or LTCCell; got {name}")
