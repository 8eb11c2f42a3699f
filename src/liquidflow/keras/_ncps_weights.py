"""Weights saved by ncps.keras (``.weights.h5``, ``.keras``) into the same liquidflow.keras layer.

``model.load_weights(path)`` walks the model by attribute path. An ncps.keras ``LTC`` keeps its
weights at ``<layer>/cell/vars/<i>`` (the ``LTCCell``'s variables in creation order); ours are one
level deeper, under other names and reparametrised (``gleak_raw`` = softplus^-1(gleak)). The layer's
``load_own_variables`` sees such a file through the store it is given (``H5IOStore``: its file and
the layer's path), converts it here, and marks the sublayers as loaded so that Keras' visits at
their own (absent) paths do nothing.

Supported: ``LTC`` (any wiring, input / output mapping), and the dense ``CfC`` in ``mode="pure"``.
Refused with the reason: ``mixed_memory`` (ncps.keras feeds the LSTM's output to the cell as its
input; liquidflow, like ncps.torch and docs/math.md section 4, makes it the cell's state: another
network), ``CfC`` in the default / no_gate modes and wired (ncps.keras computes ff1, ff2 without the
tanh of ncps.torch and the paper: another function), ``proj_size`` (ncps has none).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ._common import LOADED_FROM_NCPS, _SkipWhenLoadedFromNcps

# ncps.keras LTCCell.build: the order of its add_weight calls (= the indices in the file)
_LTC_ORDER = [
    "gleak",
    "vleak",
    "cm",
    "sigma",
    "mu",
    "w",
    "erev",
    "sensory_sigma",
    "sensory_mu",
    "sensory_w",
    "sensory_erev",
]
_POSITIVE = {"gleak", "cm", "w", "sensory_w"}
_FLOOR = 1e-12  # ncps.keras clips these at 0 (NonNeg); softplus never reaches it


def _inverse_softplus(value: np.ndarray) -> np.ndarray:
    v = np.maximum(value.astype(np.float64), _FLOOR)
    return v + np.log(-np.expm1(-v))


def _vars(h5: Any, path: str) -> list[np.ndarray]:
    group = h5[path]
    return [np.asarray(group[str(i)]) for i in range(len(group))]


def _natural(name: str) -> tuple[str, int]:
    m = re.match(r"^(.*?)(?:_(\d+))?$", name)
    assert m is not None
    return m.group(1), int(m.group(2) or 0)


def is_ncps_file(store: Any) -> bool:
    """Whether the store holds an ncps.keras layer at this layer's path (its cell has variables:
    ours never does, the liquid cell being one level deeper)."""
    h5, path = getattr(store, "h5_file", None), getattr(store, "_h5_entry_path", None)
    key = f"{path}/cell/vars"
    return h5 is not None and path is not None and key in h5 and len(h5[key]) > 0


def load(layer: Any, store: Any) -> None:
    """Assign the ncps.keras weights at the store's path to ``layer`` (an LTC or CfC), or raise why not."""
    h5, path = store.h5_file, store._h5_entry_path
    name = type(layer).__name__
    if f"{path}/cell/rnn_cell" in h5 or layer.mixed_memory:
        raise ValueError(
            f"cannot load ncps.keras weights into {name}(mixed_memory=True): ncps.keras feeds its LSTM's output "
            "to the liquid cell as input, liquidflow (as ncps.torch, docs/math.md section 4) as its state, a "
            "different network. Use keras.layers.RNN(liquidflow.keras.MixedMemoryRNN(cell)) for ncps.keras's form"
        )
    if layer.proj_size:
        raise ValueError(
            f"cannot load ncps.keras weights into {name}(proj_size={layer.proj_size}): ncps has no projection"
        )
    if not layer.rnn_cell.built:
        raise ValueError(f"build the {name} layer (call it, or build the model) before loading ncps.keras weights")
    cell = layer.rnn_cell
    if name == "LTC":
        values = _ltc_values(cell, _vars(h5, f"{path}/cell/vars"))
    else:
        values = _cfc_values(layer, h5, f"{path}/cell")
    for variable, value in values:
        if tuple(variable.shape) != value.shape:
            raise ValueError(
                f"ncps.keras weight for {variable.path} has shape {value.shape}; this layer's is "
                f"{tuple(variable.shape)}: build the layer with the same configuration (units, wiring, inputs)"
            )
    for variable, value in values:
        variable.assign(value.astype(variable.dtype))
    # the sublayers Keras visits next at their own (absent) paths; only ours skip, once
    subs = layer._flatten_layers(include_self=False)
    LOADED_FROM_NCPS.update(id(sub) for sub in subs if isinstance(sub, _SkipWhenLoadedFromNcps))


def _ltc_values(cell: Any, saved: list[np.ndarray]) -> list[tuple[Any, np.ndarray]]:
    names = list(_LTC_ORDER)
    if cell.input_mapping in ("affine", "linear"):
        names.append("input_w")
    if cell.input_mapping == "affine":
        names.append("input_b")
    if cell.output_mapping in ("affine", "linear"):
        names.append("output_w")
    if cell.output_mapping == "affine":
        names.append("output_b")
    if len(saved) != len(names):
        raise ValueError(
            f"the ncps.keras LTCCell in the file has {len(saved)} weights; an LTC with input_mapping="
            f"{cell.input_mapping!r} and output_mapping={cell.output_mapping!r} has {len(names)}: use the mappings "
            "the ncps model had"
        )
    weights = dict(zip(names, saved, strict=True))
    for erev, mask in (("erev", cell.sparsity_mask), ("sensory_erev", cell.sensory_sparsity_mask)):
        ours = np.asarray(mask) != 0
        if weights[erev].shape == ours.shape and not np.array_equal(weights[erev] != 0, ours):
            raise ValueError(
                f"the ncps.keras file's synapses ({erev} != 0) differ from this layer's wiring: build the "
                "liquidflow layer with the same wiring (class, sizes and seed) as the ncps model"
            )
    out = []
    for key, value in weights.items():
        if key in _POSITIVE:
            out.append((getattr(cell, f"{key}_raw"), _inverse_softplus(value)))
        else:
            out.append((getattr(cell, key), value))
    return out


def _cfc_values(layer: Any, h5: Any, path: str) -> list[tuple[Any, np.ndarray]]:
    cell = layer.rnn_cell
    if layer.wiring is not None or layer.mode != "pure":
        raise ValueError(
            f"cannot load ncps.keras CfC weights into CfC(mode={layer.mode!r}{', wiring' if layer.wiring else ''}): "
            "ncps.keras computes ff1 and ff2 without the tanh that ncps.torch, the CfC paper and liquidflow apply "
            "(and swaps their gates), so the same weights give another function; only the dense mode='pure' "
            "CfC is the same network. Convert through ncps.torch (liquidflow.compat) or retrain"
        )
    if cell.sparsity_mask is not None:  # pragma: no cover - the CfC layer takes no sparsity_mask
        raise ValueError("cannot load ncps.keras weights into a CfC cell with a sparsity_mask")
    own = _vars(h5, f"{path}/vars")  # ff1_weight, ff1_bias, w_tau (1, n), A (1, n)
    if len(own) != 4:
        raise ValueError(f"the ncps.keras CfCCell in the file has {len(own)} weights; mode='pure' has 4")
    out: list[tuple[Any, np.ndarray]] = []
    backbone = f"{path}/backbone_fn/layers"
    groups = sorted((g for g in h5[backbone] if "vars" in h5[backbone][g] and len(h5[backbone][g]["vars"]) == 2),
                    key=_natural) if backbone in h5 else []  # fmt: skip
    if len(groups) != len(cell.backbone):
        raise ValueError(
            f"the ncps.keras CfC in the file has {len(groups)} backbone layers; this layer has "
            f"{len(cell.backbone)}: use the same backbone_layers"
        )
    for dense, group in zip(cell.backbone, groups, strict=True):
        kernel, bias = _vars(h5, f"{backbone}/{group}/vars")
        out += [(dense.kernel, kernel), (dense.bias, bias)]
    ff1_kernel, ff1_bias, w_tau, a = own
    out += [
        (cell.f1.kernel, ff1_kernel),
        (cell.f1.bias, ff1_bias),
        (cell.w_tau, w_tau.reshape(-1)),
        (cell.A, a.reshape(-1)),
    ]
    return out
