"""Copy weights between liquidflow.torch and liquidflow.keras layers (and cells) of one configuration.

Both front ends implement docs/math.md with the same parameter names, so the copy is one to one;
only Dense kernels are the transposes of torch ``Linear`` weights (and the CfC ``sparsity_mask``,
stored in kernel layout in Keras). Everything is checked before anything is written: the kind of
layer, the wiring graph, the solver and mode, and the shape of every tensor.

    keras_layer = keras_from_torch(torch_layer)        # a new Keras layer with the torch weights
    torch_to_keras(torch_layer, keras_layer)           # copy into an existing Keras layer
    keras_to_torch(keras_layer, torch_layer)           # and back
    torch_layer = torch_from_keras(keras_layer)

This module imports both torch and keras (any Keras backend).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

import keras

from .. import keras as lk
from .. import torch as lt
from .._frontend import cfc_options, ltc_options
from ..wirings import Wiring

__all__ = ["keras_from_torch", "keras_to_torch", "torch_from_keras", "torch_to_keras"]

# (torch tensor or None, keras variable or None, transpose, name)
_Pair = tuple[Any, Any, bool, str]

_LTC_PARAMS = (
    "gleak_raw",
    "vleak",
    "cm_raw",
    "w_raw",
    "sigma",
    "mu",
    "erev",
    "sensory_w_raw",
    "sensory_sigma",
    "sensory_mu",
    "sensory_erev",
    "sparsity_mask",
    "sensory_sparsity_mask",
    "input_w",
    "input_b",
    "output_w",
    "output_b",
)


def _check_same(what: str, torch_value: Any, keras_value: Any) -> None:
    if torch_value != keras_value:
        raise ValueError(f"the layers differ in {what}: torch has {torch_value!r}, keras has {keras_value!r}")


def _check_wiring(prefix: str, tw: Wiring, kw: Wiring) -> None:
    same = (
        tw.units == kw.units
        and tw.input_dim == kw.input_dim
        and np.array_equal(tw.adjacency_matrix, kw.adjacency_matrix)
        and (
            (tw.sensory_adjacency_matrix is None and kw.sensory_adjacency_matrix is None)
            or np.array_equal(np.asarray(tw.sensory_adjacency_matrix), np.asarray(kw.sensory_adjacency_matrix))
        )
    )
    if not same:
        raise ValueError(
            f"{prefix}: the two layers have different wiring graphs ({tw!r} vs {kw!r}); build the Keras layer "
            "from the torch layer's wiring (or use keras_from_torch)"
        )


def _dense_pairs(prefix: str, linear: nn.Linear | None, dense: Any) -> list[_Pair]:
    if (linear is None) != (dense is None):
        raise ValueError(f"{prefix}: present in one layer only")
    if linear is None:
        return []
    pairs: list[_Pair] = [(linear.weight, dense.kernel, True, f"{prefix}.weight")]
    has_bias = linear.bias is not None
    if has_bias != bool(dense.use_bias):
        raise ValueError(f"{prefix}: bias present in one layer only")
    if has_bias:
        pairs.append((linear.bias, dense.bias, False, f"{prefix}.bias"))
    return pairs


def _cell_pairs(prefix: str, tcell: nn.Module, kcell: Any) -> list[_Pair]:
    if isinstance(tcell, lt.LTCCell) and isinstance(kcell, lk.LTCCell):
        _check_wiring(prefix, tcell.wiring, kcell.wiring)
        _check_same(f"{prefix}.ode_unfolds", tcell.ode_unfolds, kcell.ode_unfolds)
        _check_same(f"{prefix}.solver", tcell.solver.name, kcell.solver)
        _check_same(f"{prefix}.input_mapping", tcell.input_mapping, kcell.input_mapping)
        _check_same(f"{prefix}.output_mapping", tcell.output_mapping, kcell.output_mapping)
        _check_same(f"{prefix}.epsilon", tcell.epsilon, kcell.epsilon)
        return [(getattr(tcell, n), getattr(kcell, n), False, f"{prefix}.{n}") for n in _LTC_PARAMS]
    if isinstance(tcell, lt.WiredCfCCell) and isinstance(kcell, lk.WiredCfCCell):
        _check_wiring(prefix, tcell.wiring, kcell.wiring)
        _check_same(f"{prefix}.mode", tcell.mode, kcell.mode)
        _check_same(f"{prefix}.layer_sizes", list(tcell.layer_sizes), list(kcell.layer_sizes))
        pairs: list[_Pair] = []
        for i, (tc, kc) in enumerate(zip(tcell.layers, kcell.layers, strict=True)):
            pairs += _cell_pairs(f"{prefix}.layers[{i}]", tc, kc)
        return pairs
    if isinstance(tcell, lt.CfCCell) and isinstance(kcell, lk.CfCCell):
        _check_same(f"{prefix}.mode", tcell.mode, kcell.mode)
        _check_same(f"{prefix}.backbone_activation", tcell.backbone_activation, kcell.backbone_activation)
        _check_same(f"{prefix}.head_activation", tcell.head_activation, kcell.head_activation)
        _check_same(f"{prefix}.backbone_layers", tcell.backbone_layers, kcell.backbone_layers)
        _check_same(f"{prefix}.hidden_size", tcell.hidden_size, kcell.units)
        pairs = []
        for i, (lin, dense) in enumerate(zip(tcell.backbone, kcell.backbone, strict=True)):
            assert isinstance(lin, nn.Linear)
            pairs += _dense_pairs(f"{prefix}.backbone[{i}]", lin, dense)
        for head in ("f1", "f2", "time_a", "time_b"):
            pairs += _dense_pairs(f"{prefix}.{head}", getattr(tcell, head), getattr(kcell, head))
        if tcell.mode == "pure":
            pairs += [(tcell.w_tau, kcell.w_tau, False, f"{prefix}.w_tau"), (tcell.A, kcell.A, False, f"{prefix}.A")]
        # torch keeps the mask in weight layout (H, width), Keras in kernel layout (width, H)
        pairs.append((tcell.sparsity_mask, kcell.sparsity_mask, True, f"{prefix}.sparsity_mask"))
        return pairs
    raise TypeError(
        f"{prefix}: cannot pair torch {type(tcell).__name__} with keras {type(kcell).__name__} "
        "(LTCCell<->LTCCell, CfCCell<->CfCCell, WiredCfCCell<->WiredCfCCell)"
    )


def _ensure_built(torch_obj: nn.Module, keras_obj: Any) -> None:
    if keras_obj.built:
        return
    if isinstance(torch_obj, (lt.LTC, lt.CfC)):
        keras_obj.build((None, None, torch_obj.input_size))
    else:
        n_in = torch_obj.input_size
        keras_obj.build((None, n_in))


def _pairs(torch_obj: nn.Module, keras_obj: Any) -> list[_Pair]:
    _ensure_built(torch_obj, keras_obj)
    if isinstance(torch_obj, (lt.LTC, lt.CfC)):
        if not isinstance(keras_obj, (lk.LTC, lk.CfC)):
            raise TypeError(
                f"a torch {type(torch_obj).__name__} layer pairs with a keras LTC/CfC layer; got {keras_obj!r}"
            )
        if type(torch_obj).__name__ != type(keras_obj).__name__:
            raise TypeError(
                f"cannot pair torch {type(torch_obj).__name__} with keras {type(keras_obj).__name__} "
                "(LTC<->LTC, CfC<->CfC)"
            )
        _check_same("input_size", torch_obj.input_size, keras_obj.input_size)
        _check_same("mixed_memory", torch_obj.mixed_memory, keras_obj.mixed_memory)
        _check_same("proj_size", torch_obj.proj_size, keras_obj.proj_size)
        pairs = _cell_pairs("cell", torch_obj.cell, keras_obj.rnn_cell)
        if torch_obj.lstm is not None:
            if keras_obj.lstm is None:
                raise ValueError("lstm: present in the torch layer only")
            pairs += _dense_pairs("lstm.input_map", torch_obj.lstm.input_map, keras_obj.lstm.input_map)
            pairs += _dense_pairs("lstm.recurrent_map", torch_obj.lstm.recurrent_map, keras_obj.lstm.recurrent_map)
        pairs += _dense_pairs("fc", torch_obj.fc, keras_obj.fc)
        return pairs
    return _cell_pairs("cell", torch_obj, keras_obj)


def _checked(pairs: list[_Pair]) -> list[_Pair]:
    out = []
    for t, k, transpose, name in pairs:
        if (t is None) != (k is None):
            raise ValueError(f"{name}: present in the {'torch' if k is None else 'keras'} layer only")
        if t is None:
            continue
        t_shape = tuple(t.shape)[::-1] if transpose else tuple(t.shape)
        if t_shape != tuple(k.shape):
            raise ValueError(f"{name}: torch shape {tuple(t.shape)} does not match keras shape {tuple(k.shape)}")
        out.append((t, k, transpose, name))
    return out


def torch_to_keras(torch_layer: nn.Module, keras_layer: Any) -> Any:
    """Copy every weight of a liquidflow.torch layer or cell into the matching Keras one (in place).

    The Keras layer is built with the torch layer's input size if it is not built yet. Returns it.
    """
    for t, k, transpose, _ in _checked(_pairs(torch_layer, keras_layer)):
        value = t.detach().cpu().numpy()
        k.assign(np.ascontiguousarray(value.T if transpose else value).astype(k.dtype))
    return keras_layer


def keras_to_torch(keras_layer: Any, torch_layer: nn.Module) -> nn.Module:
    """Copy every weight of a liquidflow.keras layer or cell into the matching torch one (in place)."""
    with torch.no_grad():
        for t, k, transpose, _ in _checked(_pairs(torch_layer, keras_layer)):
            value = np.asarray(keras.ops.convert_to_numpy(k))
            t.copy_(torch.as_tensor(np.ascontiguousarray(value.T if transpose else value), dtype=t.dtype))
    return torch_layer


def _keras_dtype(torch_layer: nn.Module) -> str:
    p = next(torch_layer.parameters())
    return {torch.float64: "float64", torch.float32: "float32", torch.float16: "float16"}[p.dtype]


def keras_from_torch(torch_layer: nn.Module, batch_size: int | None = None, **kwargs: Any) -> Any:
    """A new Keras ``LTC``/``CfC`` with the configuration and weights of a torch one.

    ``kwargs`` go to the Keras constructor (e.g. ``return_state=True``, ``stateful=True``);
    ``return_sequences`` and the dtype follow the torch layer unless given. The layer is built for
    inputs (batch_size, None, input_size); a stateful layer needs a ``batch_size``.
    """
    if not isinstance(torch_layer, (lt.LTC, lt.CfC)):
        raise TypeError(f"torch_layer must be a liquidflow.torch LTC or CfC; got {type(torch_layer).__name__}")
    cfg = torch_layer.get_config()
    common = {
        "mixed_memory": cfg["mixed_memory"],
        "proj_size": cfg["proj_size"],
        "return_sequences": cfg["return_sequences"],
        "dtype": _keras_dtype(torch_layer),
    }
    common.update(kwargs)
    layer: Any
    if isinstance(torch_layer, lt.LTC):
        layer = lk.LTC(torch_layer.wiring, **ltc_options(cfg), **common)
    else:
        wiring = torch_layer.wiring
        if wiring is not None:
            layer = lk.CfC(wiring, mode=cfg["mode"], **common)
        else:
            layer = lk.CfC(torch_layer.state_size, **cfc_options(cfg), **common)
    if layer.stateful and batch_size is None:
        raise ValueError("a stateful Keras layer needs a fixed batch size: pass batch_size=")
    layer.build((batch_size, None, torch_layer.input_size))
    return torch_to_keras(torch_layer, layer)


def torch_from_keras(keras_layer: Any, **kwargs: Any) -> nn.Module:
    """A new torch ``LTC``/``CfC`` (batch_first) with the configuration and weights of a built Keras one."""
    if not isinstance(keras_layer, (lk.LTC, lk.CfC)):
        raise TypeError(f"keras_layer must be a liquidflow.keras LTC or CfC; got {type(keras_layer).__name__}")
    if not keras_layer.built or keras_layer.input_size is None:
        raise ValueError("keras_layer must be built (call it once or call build((None, None, features)))")
    cell = keras_layer.rnn_cell
    common: dict[str, Any] = {
        "mixed_memory": keras_layer.mixed_memory,
        "proj_size": keras_layer.proj_size,
        "return_sequences": keras_layer.return_sequences,
    }
    common.update(kwargs)
    n_in = int(keras_layer.input_size)
    layer: nn.Module
    if isinstance(keras_layer, lk.LTC):
        layer = lt.LTC(n_in, cell.wiring, **ltc_options(cell), **common)
    elif isinstance(cell, lk.WiredCfCCell):
        layer = lt.CfC(n_in, cell.wiring, mode=cell.mode, **common)
    else:
        layer = lt.CfC(
            n_in,
            cell.units,
            mode=cell.mode,
            activation=cell.backbone_activation,
            backbone_units=cell.backbone_units,
            backbone_layers=cell.backbone_layers,
            backbone_dropout=cell.backbone_dropout,
            head_activation=cell.head_activation,
            **common,
        )
    dtype = {"float64": torch.float64, "float16": torch.float16}.get(str(cell.variable_dtype), torch.float32)
    layer = layer.to(dtype)
    return keras_to_torch(keras_layer, layer)
