"""Load ``state_dict``s saved from ncps.torch modules (ncps 1.0.1) into liquidflow modules.

This file holds the one table from ncps parameter names to ours (``from_ncps`` uses it too). An ncps
checkpoint differs from ours in names and, for some entries, in value:

=================================  ===================================  ====================================
ncps (``LTC``/``CfC`` layer)       liquidflow                           value
=================================  ===================================  ====================================
``rnn_cell.gleak``, ``cm``, ``w``,  ``cell.gleak_raw``, ``cm_raw``, ...  the same raw value (ncps's default
``sensory_w``                                                            ``implicit_param_constraints=True``
                                                                         applies the same softplus); with
                                                                         ``False`` ncps stores the positive
                                                                         value: inverse softplus of it
other LTC entries, masks           ``cell.<same name>``                 copied (a mask must equal ours)
``rnn_cell.backbone.<i>``          ``cell.backbone.<k>``                the k-th Linear of ncps's Sequential
``rnn_cell.ff1`` / ``ff2``         ``cell.f2`` / ``f1`` (``f1``: pure)  copied (our gate weights ``f1``)
``rnn_cell.time_a``                ``cell.time_a``                      negated (our gate is
                                                                         sigmoid(-a dt + b))
``rnn_cell.w_tau``, ``A`` (1, H)   ``cell.w_tau``, ``A`` (H,)           reshaped
``rnn_cell.layer_<l>.*`` (wired)   ``cell.layers.<l>.*``                as a CfC cell's
``lstm.*``, ``fc.*``               the same                             copied
=================================  ===================================  ====================================

The sequence layers register :func:`load_ncps_state_pre_hook`, so ``layer.load_state_dict(sd)`` takes
either format; ncps is never imported. Cells (``LTCCell``, ``CfCCell``, ``WiredCfCCell``) convert with
:func:`ncps_state_dict_to_liquidflow`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["is_ncps_state_dict", "load_ncps_state_pre_hook", "ncps_key_problems", "ncps_state_dict_to_liquidflow"]

Tensor = torch.Tensor

#: LTC entries that ncps keeps positive: ncps name -> ours (a raw value, effective = softplus(raw))
LTC_POSITIVE = {"gleak": "gleak_raw", "cm": "cm_raw", "w": "w_raw", "sensory_w": "sensory_w_raw"}
#: LTC entries with the same name and value in both packages
LTC_SAME = ("vleak", "sigma", "mu", "erev", "sensory_sigma", "sensory_mu", "sensory_erev",
            "input_w", "input_b", "output_w", "output_b")  # fmt: skip
#: LTC/CfC entries that hold the wiring's graph: copied, and must equal the target's
MASKS = ("sparsity_mask", "sensory_sparsity_mask")
#: CfC heads, non-pure modes: ncps Linear -> (ours, sign). ncps h' = ff1 (1 - t) + t ff2 with
#: t = sigmoid(ta z dt + tb z); ours h' = f2 + g (f1 - f2) with g = sigmoid(-a z dt + b z).
CFC_HEADS = {"ff1": ("f2", 1.0), "ff2": ("f1", 1.0), "time_a": ("time_a", -1.0), "time_b": ("time_b", 1.0)}
#: CfC heads, pure mode
CFC_PURE_HEADS = {"ff1": ("f1", 1.0)}
CFC_PURE_VECTORS = ("w_tau", "A")  # ncps (1, H), ours (H,)
#: a sequence layer's cell: ncps prefix -> ours; ``lstm.*`` and ``fc.*`` keep their names
CELL_PREFIX = ("rnn_cell.", "cell.")


@dataclass(frozen=True)
class _Rule:
    """One target entry: where it comes from and how its value changes."""

    src: str  # ncps key, relative to the module's prefix
    dst: str  # our key, relative to the module's prefix
    kind: str  # "copy", "positive", "negate", "reshape" or "mask"


@dataclass
class _Conversion:
    converted: dict[str, Tensor] = field(default_factory=dict)  # our key -> value
    used: set[str] = field(default_factory=set)  # ncps keys consumed
    missing: list[str] = field(default_factory=list)  # ncps keys the target needs, absent
    errors: list[str] = field(default_factory=list)


def _linear_rules(src: str, dst: str, kind: str, target: Mapping[str, Tensor]) -> list[_Rule]:
    return [_Rule(f"{src}.{p}", f"{dst}.{p}", kind) for p in ("weight", "bias") if f"{dst}.{p}" in target]


def _cfc_rules(src: str, dst: str, cell: Any, keys: list[str], target: Mapping[str, Tensor]) -> list[_Rule]:
    """A CfCCell's rules; ncps numbers its backbone Linears by Sequential index (activations and
    dropouts in between), so the k-th Linear in the checkpoint becomes our ``backbone.k``."""
    rules: list[_Rule] = []
    pattern = re.compile(re.escape(f"{src}backbone.") + r"(\d+)\.weight$")
    indices = sorted({int(m.group(1)) for k in keys if (m := pattern.match(k))})
    for k in range(cell.backbone_layers):
        i = indices[k] if k < len(indices) else 2 * k  # absent: named as ncps's first layout would
        rules += _linear_rules(f"{src}backbone.{i}", f"{dst}backbone.{k}", "copy", target)
    heads = CFC_PURE_HEADS if cell.mode == "pure" else CFC_HEADS
    for theirs, (ours, sign) in heads.items():
        rules += _linear_rules(src + theirs, dst + ours, "negate" if sign < 0 else "copy", target)
    if cell.mode == "pure":
        rules += [_Rule(src + n, dst + n, "reshape") for n in CFC_PURE_VECTORS]
    if cell.sparsity_mask is not None:
        rules.append(_Rule(src + "sparsity_mask", dst + "sparsity_mask", "mask"))
    return rules


def _cell_rules(src: str, dst: str, cell: Any, keys: list[str], target: Mapping[str, Tensor]) -> list[_Rule]:
    from ._cells import CfCCell, WiredCfCCell
    from ._ltc_cell import LTCCell

    if isinstance(cell, LTCCell):
        rules = [_Rule(src + a, dst + b, "positive") for a, b in LTC_POSITIVE.items()]
        rules += [_Rule(src + n, dst + n, "copy") for n in LTC_SAME if dst + n in target]
        return rules + [_Rule(src + n, dst + n, "mask") for n in MASKS]
    if isinstance(cell, CfCCell):
        return _cfc_rules(src, dst, cell, keys, target)
    if isinstance(cell, WiredCfCCell):
        rules = []
        for l, layer in enumerate(cell.layers):
            rules += _cfc_rules(f"{src}layer_{l}.", f"{dst}layers.{l}.", layer, keys, target)
        return rules
    raise TypeError(f"no ncps mapping for {type(cell).__name__}; expected an LTCCell, CfCCell or WiredCfCCell")


def _rules(module: nn.Module, keys: list[str], target: Mapping[str, Tensor]) -> list[_Rule]:
    """Every rule for ``module`` (a sequence layer or a cell), keys relative to its prefix."""
    cell = getattr(module, "cell", None)
    if cell is None:
        return _cell_rules("", "", module, keys, target)
    rules = _cell_rules(*CELL_PREFIX, cell, keys, target)
    for sub in ("lstm", "fc"):
        rules += [_Rule(k, k, "copy") for k in target if k.startswith(sub + ".")]
    return rules


def _positive(value: Tensor, name: str, implicit: bool) -> Tensor:
    if implicit:
        return value  # ncps applies the same softplus at run time
    from ._ltc_cell import inverse_softplus

    if bool((value <= 0).any()):
        warnings.warn(
            f"ncps parameter {name!r} has non-positive entries (min {value.min().item():.3g}); "
            "liquidflow keeps it positive, so they are clamped to 1e-12",
            stacklevel=4,
        )
    return inverse_softplus(value.detach().double().clamp_min(1e-12)).to(value.dtype)


def _convert(
    state_dict: Mapping[str, Any], module: nn.Module, prefix: str, implicit: bool, target: Mapping[str, Tensor]
) -> _Conversion:
    keys = [k[len(prefix) :] for k in state_dict if k.startswith(prefix)]
    out = _Conversion()
    for rule in _rules(module, keys, target):
        if rule.src not in keys:
            out.missing.append(prefix + rule.src)
            continue
        out.used.add(prefix + rule.src)
        value = state_dict[prefix + rule.src]
        mine = target[rule.dst]
        if rule.kind == "positive":
            value = _positive(value, rule.src, implicit)
        elif rule.kind == "negate":
            value = -value
        elif rule.kind == "reshape" and value.numel() == mine.numel():
            value = value.reshape(mine.shape)
        elif rule.kind == "mask":
            same = tuple(value.shape) == tuple(mine.shape) and bool(torch.equal(value.to(mine).abs(), mine.abs()))
            if not same:
                out.errors.append(
                    f"the ncps checkpoint's {prefix + rule.src} (the wiring's graph) differs from this layer's "
                    f"{prefix + rule.dst}: build the layer with the same wiring (same class, sizes and seed; "
                    "liquidflow.compat.ncps.wiring_from_ncps converts an ncps wiring)"
                )
        out.converted[prefix + rule.dst] = value
    return out


def is_ncps_state_dict(state_dict: Mapping[str, Any], prefix: str = "") -> bool:
    """True when the entries under ``prefix`` are named as an ncps.torch LTC/CfC layer names them."""
    return any(k.startswith(prefix + CELL_PREFIX[0]) for k in state_dict)


def ncps_state_dict_to_liquidflow(
    state_dict: Mapping[str, Any],
    module: nn.Module,
    *,
    implicit_param_constraints: bool = True,
    strict: bool = True,
) -> dict[str, Any]:
    """The ncps ``state_dict`` renamed and re-valued for ``module`` (an LTC/CfC layer or a cell).

    ``implicit_param_constraints``: what the ncps LTC was built with (``True``, ncps's default for
    the ``LTC`` layer, stores raw values; ``False``, the default of a bare ncps ``LTCCell``, stores
    the positive values). With ``strict``, unknown or missing ncps keys raise a ``KeyError`` naming
    them; otherwise unknown keys are passed through unchanged.
    """
    target = module.state_dict(keep_vars=True)
    conv = _convert(state_dict, module, "", implicit_param_constraints, target)
    unknown = [k for k in state_dict if k not in conv.used]
    if conv.errors:
        raise ValueError("; ".join(conv.errors))
    if strict and (unknown or conv.missing):
        raise KeyError(_key_message(type(module).__name__, unknown, conv.missing))
    out: dict[str, Any] = dict(conv.converted)
    out.update({k: state_dict[k] for k in unknown})
    return out


def _stack_problem(module: nn.Module) -> str | None:
    num_layers, bidirectional = getattr(module, "num_layers", 1), getattr(module, "bidirectional", False)
    if num_layers == 1 and not bidirectional:
        return None
    return (f"an ncps checkpoint holds one unidirectional layer; this {type(module).__name__} has "
            f"num_layers={num_layers}, bidirectional={bidirectional}: load it into a single layer")  # fmt: skip


def ncps_key_problems(state_dict: Mapping[str, Any], module: nn.Module, prefix: str = "") -> str | None:
    """Why an ncps ``state_dict`` does not fit ``module`` (unknown and missing ncps keys), or None."""
    if not is_ncps_state_dict(state_dict, prefix):
        return None
    if _stack_problem(module) is not None:
        return None  # the pre-hook said so already
    target = module.state_dict(keep_vars=True)
    conv = _convert(state_dict, module, prefix, True, target)
    unknown = [k for k in state_dict if k.startswith(prefix) and k not in conv.used and k[len(prefix) :] not in target]
    if not unknown and not conv.missing:
        return None
    return _key_message(type(module).__name__, unknown, conv.missing)


def _key_message(name: str, unknown: list[str], missing: list[str]) -> str:
    parts = [f"this is an ncps checkpoint but it does not match this liquidflow {name}"]
    if unknown:
        parts.append(f"unknown ncps keys: {', '.join(unknown)}")
    if missing:
        parts.append(f"missing ncps keys: {', '.join(missing)}")
    parts.append("build the layer with the same arguments as the ncps one (docs/porting-pytorch.md)")
    return "; ".join(parts)


def load_ncps_state_pre_hook(
    module: nn.Module,
    state_dict: dict[str, Any],
    prefix: str,
    local_metadata: dict[str, Any],
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    """``load_state_dict`` pre-hook of the sequence layers: entries under ``prefix`` named as ncps
    names them are converted in place; what no rule takes stays, for torch to report as unexpected."""
    if not is_ncps_state_dict(state_dict, prefix):
        return
    why = _stack_problem(module)
    if why is not None:
        error_msgs.append(why)
        return
    target = module.state_dict(keep_vars=True)
    conv = _convert(state_dict, module, prefix, True, target)
    error_msgs.extend(conv.errors)
    stray = sorted(k for k in state_dict if k.startswith(prefix + CELL_PREFIX[1]))
    if stray:
        error_msgs.append(f"the state_dict mixes ncps names (rnn_cell.*) with liquidflow names: {', '.join(stray)}")
    # Unknown and missing keys are left to torch, which alone knows ``strict`` (hooks always get
    # True); the layer's load_state_dict adds ncps_key_problems() to torch's error.
    for k in conv.used:
        del state_dict[k]
    state_dict.update(conv.converted)
