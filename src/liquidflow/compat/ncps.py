"""Import modules from the ``ncps`` package (ncps 1.0.1, ``ncps.torch``) with their weights.

``from_ncps(module)`` returns the liquidflow module that computes the same function: an ncps
``CfC``/``LTC`` layer becomes a :class:`liquidflow.torch.CfC`/:class:`~liquidflow.torch.LTC`, an
``CfCCell``/``WiredCfCCell``/``LTCCell`` the matching cell. The parameter mapping is the table in
:mod:`liquidflow.compat.ncps_state` (also documented in docs/math.md, "Mapping from ncps"), which
also lets ``layer.load_state_dict`` read an ncps checkpoint directly. ncps itself is only needed
to *have* such a module; this file never imports it (modules are recognised by class name and attributes).

Differences that are bug fixes, not mismatches: liquidflow applies ``timespans`` per sample; ncps
broadcasts them along the hidden axis, which is only correct at batch size 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ..torch import LTC, CfC, CfCCell, LTCCell, WiredCfCCell, ncps_state_dict_to_liquidflow
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


def _load(new: nn.Module, module: Any, implicit: bool = True) -> None:
    """Copy ``module``'s weights into ``new`` by the one ncps -> liquidflow table (ncps_state.py)."""
    new.load_state_dict(ncps_state_dict_to_liquidflow(module.state_dict(), new, implicit_param_constraints=implicit))


def _ltc_cell_from_ncps(cell: Any, implicit: bool) -> LTCCell:
    wiring = wiring_from_ncps(cell._wiring)
    new = LTCCell(
        wiring,
        input_mapping=cell._input_mapping,
        output_mapping=cell._output_mapping,
        ode_unfolds=cell._ode_unfolds,
        epsilon=cell._epsilon,
    )
    _load(new, cell, implicit)
    return new


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
    _load(new, cell)
    return new


def _wired_cfc_from_ncps(cell: Any) -> WiredCfCCell:
    new = WiredCfCCell(None, wiring_from_ncps(cell._wiring), cell._layers[0].mode)
    _load(new, cell)
    return new


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
        new_ltc = LTC(
            int(module.input_size),
            wiring_from_ncps(src_cell._wiring),
            **_layer_kwargs(module),
            input_mapping=src_cell._input_mapping,
            output_mapping=src_cell._output_mapping,
            ode_unfolds=src_cell._ode_unfolds,
            epsilon=src_cell._epsilon,
        ).to(next(module.parameters()).dtype)
        _load(new_ltc, module, bool(getattr(src_cell, "_implicit_param_constraints", False)))
        return new_ltc
    if name == "CfC":
        src = module.rnn_cell
        proj = module.fc.out_features if isinstance(module.fc, nn.Linear) else None
        if type(src).__name__ == "WiredCfCCell":
            kw = _layer_kwargs(module)
            mode = src._layers[0].mode
            new_cfc = CfC(int(module.input_size), wiring_from_ncps(src._wiring), proj_size=proj, mode=mode, **kw)
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
        new_cfc = new_cfc.to(next(module.parameters()).dtype)
        _load(new_cfc, module)
        return new_cfc
    raise TypeError(f"from_ncps expects an ncps.torch CfC, LTC, CfCCell, WiredCfCCell or LTCCell; got {name}")
