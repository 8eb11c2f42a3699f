"""Find the liquid layer inside a model and run it step by step with its internals exposed.

Everything in ``liquidflow.interpret`` accepts either a bare sequence layer (``liquidflow.torch.LTC``
/ ``CfC``) or a wrapper that holds one in ``.core`` (``liquidflow.training.SequenceModel``: ``.core``,
``.head``, ``.input_mean``, ``.input_std``). The wrapper is duck-typed, so this module imports nothing
from ``liquidflow.training``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..torch import LTC, CfC, LTCCell, WiredCfCCell
from ..wirings import Wiring

Tensor = torch.Tensor


def _is_layer(obj: Any) -> bool:
    return isinstance(obj, (LTC, CfC))


def get_core(model: nn.Module) -> LTC | CfC:
    """The liquid sequence layer of ``model``: the model itself or its ``.core``.

    Raises:
        TypeError: if neither ``model`` nor ``model.core`` is an ``LTC`` or ``CfC`` layer.
    """
    if _is_layer(model):
        return model  # type: ignore[return-value]
    core = getattr(model, "core", None)
    if _is_layer(core):
        return core  # type: ignore[return-value]
    raise TypeError(
        "model must be a liquidflow.torch LTC/CfC layer or have one in `.core` (a SequenceModel); "
        f"got {type(model).__name__}" + (f" with core {type(core).__name__}" if core is not None else "")
    )


def get_wiring(model: nn.Module | Wiring) -> Wiring | None:
    """The wiring of a model (LTC, wired CfC), the wiring itself, or None (CfC with a backbone)."""
    if isinstance(model, Wiring):
        return model
    core = get_core(model)
    return core.wiring


def kind(model: nn.Module) -> str:
    """``"ltc"``, ``"wired_cfc"`` or ``"cfc"``."""
    cell = get_core(model).cell
    if isinstance(cell, LTCCell):
        return "ltc"
    if isinstance(cell, WiredCfCCell):
        return "wired_cfc"
    return "cfc"


def normalize_inputs(model: nn.Module, x: Tensor) -> Tensor:
    """The input as the liquid layer sees it: ``(x - input_mean) / input_std`` for a wrapper that has
    those attributes (a SequenceModel), ``x`` unchanged for a bare layer."""
    if _is_layer(model):
        return x
    mean = getattr(model, "input_mean", None)
    std = getattr(model, "input_std", None)
    if mean is not None:
        x = x - torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    if std is not None:
        x = x / torch.as_tensor(std, dtype=x.dtype, device=x.device)
    return x


def model_outputs(model: nn.Module, x: Tensor, timespans: Tensor | float | None, mask: Tensor | None) -> Tensor:
    """Run the whole model on (raw) inputs and return its output tensor (first element of a tuple)."""
    kwargs: dict[str, Any] = {}
    if timespans is not None:
        kwargs["timespans"] = timespans
    if mask is not None:
        kwargs["mask"] = mask
    out = model(x, **kwargs)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model must return a tensor or a tuple starting with one; got {type(out).__name__}")
    return out


def neuron_order(model: nn.Module) -> np.ndarray:
    """``order[s]`` = neuron id of state entry ``s``. Identity except for wired CfC, whose state is
    laid out layer by layer (NCP: inter, command, motor) rather than by neuron id."""
    core = get_core(model)
    cell = core.cell
    if isinstance(cell, WiredCfCCell):
        ids: list[int] = []
        for layer in range(cell.wiring.num_layers):
            ids.extend(cell.wiring.get_neurons_of_layer(layer))
        return np.asarray(ids, dtype=np.int64)
    return np.arange(core.state_size, dtype=np.int64)


def neuron_types(model: nn.Module) -> list[str]:
    """Type of each neuron id: 'motor', 'command', 'inter' (wiring) or 'hidden' (CfC with a backbone)."""
    wiring = get_wiring(model)
    core = get_core(model)
    if wiring is None:
        return ["hidden"] * core.state_size
    return [wiring.get_type_of_neuron(i) for i in range(wiring.units)]


def as_batch(
    model: nn.Module, x: Tensor | np.ndarray, timespans: Tensor | np.ndarray | float | None, mask: Any
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validate and convert to (B, T, I) inputs, (B, T) elapsed times and an optional (B, T) mask,
    in the dtype and on the device of the model's parameters."""
    core = get_core(model)
    p = next(core.parameters())
    x = torch.as_tensor(x, dtype=p.dtype, device=p.device)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise ValueError(f"x must be (B, T, I) or (T, I); got shape {tuple(x.shape)}")
    if not core.batch_first:
        raise ValueError("liquidflow.interpret needs a batch_first=True layer")
    if x.shape[-1] != core.input_size:
        raise ValueError(f"x has {x.shape[-1]} features but the model expects input_size={core.input_size}")
    B, T, _ = x.shape
    if timespans is None:
        ts = torch.ones(B, T, dtype=p.dtype, device=p.device)
    elif isinstance(timespans, (int, float)):
        ts = torch.full((B, T), float(timespans), dtype=p.dtype, device=p.device)
    else:
        ts = torch.as_tensor(timespans, dtype=p.dtype, device=p.device)
        if ts.dim() == 1 and B == 1:
            ts = ts.unsqueeze(0)
        if ts.dim() == 3 and ts.shape[-1] == 1:
            ts = ts[..., 0]
        if tuple(ts.shape) != (B, T):
            raise ValueError(
                f"timespans must be a float, (B, T) or (B, T, 1) with B, T = {B}, {T}; got {tuple(ts.shape)}"
            )
    m = None
    if mask is not None:
        m = torch.as_tensor(mask, dtype=torch.bool, device=p.device)
        if m.dim() == 1 and B == 1:
            m = m.unsqueeze(0)
        if tuple(m.shape) != (B, T):
            raise ValueError(f"mask must be (B, T) = ({B}, {T}); got {tuple(m.shape)}")
    return x, ts, m


@dataclass
class Trace:
    """What the liquid layer did over a batch of sequences, step by step.

    All neuron axes are in neuron-id order (motor neurons first), whatever the cell's state layout.

    Attributes:
        kind: ``"ltc"``, ``"wired_cfc"`` or ``"cfc"``.
        inputs: (B, T, I) the inputs as the layer saw them (normalized for a SequenceModel).
        timespans: (B, T) elapsed time before each step.
        states: (B, T, N) neuron states after each step.
        tau: (B, T, N) LTC only: tau_sys = C_m / (g_leak + sum_i a_ij + sum_k s_kj), evaluated with the
            state before the step and the step's input (the values the conductances start the interval
            with). None for CfC.
        gate: (B, T, N) CfC (default / no_gate) gate g = sigmoid(-(Wa z + ba) dt + (Wb z + bb)); None for
            LTC and pure CfC.
        rate: (B, T, N) CfC: the rate of the gate's decay in time, Wa z + ba (pure mode:
            |w_tau| + |W1 z + b1|); its inverse magnitude is the neuron's time scale. None for LTC.
        timescale: (B, T, N) tau for LTC, 1/|rate| for CfC (capped at 1e6).
        neuron_types: neuron type per neuron id.
    """

    kind: str
    inputs: np.ndarray
    timespans: np.ndarray
    states: np.ndarray
    neuron_types: list[str]
    tau: np.ndarray | None = None
    gate: np.ndarray | None = None
    rate: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def timescale(self) -> np.ndarray:
        if self.tau is not None:
            return self.tau
        assert self.rate is not None
        return 1.0 / np.maximum(np.abs(self.rate), 1e-6)
