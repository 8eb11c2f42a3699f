"""What an exporter sees of a model: the recurrent core, the baked-in input normalisation and head.

Two kinds of model are accepted:

* a bare :class:`liquidflow.torch.LTC` or :class:`liquidflow.torch.CfC` layer;
* a sequence model in the shape of ``liquidflow.training.SequenceModel``: attributes ``core`` (the
  LTC/CfC layer), ``head`` (an ``nn.Linear`` or None) and buffers ``input_mean``, ``input_std`` of
  shape (F,), with ``x_norm = (x - input_mean) / input_std``. It is recognised by these attribute
  names (duck typing), so any module laid out the same way exports too.

:class:`StepModule` is one streaming step of such a model written with plain tensor ops: the ONNX
exporter traces it, and the tests use it as the PyTorch side of every comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..torch import LTC, CfC, CfCCell, LTCCell, WiredCfCCell

Tensor = torch.Tensor


@dataclass
class ExportModel:
    """A model reduced to the parts an exporter needs (all in float32, eval mode)."""

    core: LTC | CfC
    head: nn.Linear | None
    input_mean: Tensor | None  # (F,)
    input_std: Tensor | None  # (F,)

    @property
    def input_size(self) -> int:
        return int(self.core.input_size)

    @property
    def output_size(self) -> int:
        return int(self.head.out_features) if self.head is not None else int(self.core.out_features)

    @property
    def hidden_size(self) -> int:
        return int(self.core.state_size)

    @property
    def state_size(self) -> int:
        """Floats of recurrent state: N, or 2 N with mixed memory (h then c)."""
        return self.hidden_size * (2 if self.core.lstm is not None else 1)

    @property
    def kind(self) -> str:
        cell = self.core.cell
        if isinstance(cell, LTCCell):
            return f"LTC ({cell.solver.name}, {cell.ode_unfolds} unfolds)"
        if isinstance(cell, WiredCfCCell):
            return f"wired CfC ({cell.mode})"
        assert isinstance(cell, CfCCell)
        return f"CfC ({cell.mode}, {cell.backbone_layers} backbone layers)"


def unwrap(model: nn.Module) -> ExportModel:
    """Reduce ``model`` (an LTC/CfC layer or a SequenceModel-like module) to an :class:`ExportModel`.

    Raises:
        TypeError: if ``model`` is neither.
    """
    if isinstance(model, (LTC, CfC)):
        return ExportModel(model, None, None, None)
    core = getattr(model, "core", None)
    if isinstance(model, nn.Module) and isinstance(core, (LTC, CfC)):
        head = getattr(model, "head", None)
        if head is not None and not isinstance(head, nn.Linear):
            raise TypeError(f"model.head must be an nn.Linear or None to be exported; got {type(head).__name__}")
        mean = getattr(model, "input_mean", None)
        std = getattr(model, "input_std", None)
        f = int(core.input_size)
        for name, t in (("input_mean", mean), ("input_std", std)):
            if t is not None and (not isinstance(t, torch.Tensor) or tuple(t.shape) != (f,)):
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"model.{name} must be a tensor of shape ({f},); got {shape}")
        if std is not None and not bool(torch.all(std > 0)):
            raise ValueError("model.input_std must be positive everywhere to be baked into an export")
        if head is not None and head.in_features != core.out_features:
            raise ValueError(f"model.head takes {head.in_features} features but the core produces {core.out_features}")
        return ExportModel(core, head, mean, std)
    raise TypeError(
        "model must be a liquidflow.torch.LTC or CfC layer, or a sequence model with attributes "
        f"core (LTC/CfC), head (nn.Linear or None), input_mean and input_std; got {type(model).__name__}"
    )


class StepModule(nn.Module):
    """One streaming step of an exported model: ``(x (B,F), dt (B,), state (B,S)) -> (y (B,O), state)``.

    Written with tensor ops only (no Python branches on values) so that it traces to ONNX; the
    state of a mixed-memory model is ``[h, c]`` concatenated along the last axis.
    """

    def __init__(self, model: ExportModel) -> None:
        super().__init__()
        self.core: LTC | CfC = model.core
        self.head: nn.Linear | None = model.head
        self.register_buffer("mean", None if model.input_mean is None else model.input_mean.detach().clone())
        self.register_buffer("std", None if model.input_std is None else model.input_std.detach().clone())
        self.hidden = model.hidden_size
        self.mean: Tensor | None
        self.std: Tensor | None

    def forward(self, x: Tensor, dt: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        if self.mean is not None:
            x = x - self.mean
        if self.std is not None:
            x = x / self.std
        core: LTC | CfC = self.core
        dtc = dt.reshape(-1, 1)
        if core.lstm is not None:
            h, c = state[:, : self.hidden], state[:, self.hidden :]
            h, c = core.lstm.step_pre(core.lstm.precompute(x), h, c)
        else:
            h, c = state, None
        cell: LTCCell | CfCCell | WiredCfCCell = core.cell  # type: ignore[assignment]
        pre = cell.precompute(x.unsqueeze(1))[:, 0]
        y, h = cell.step_pre(pre, h, dtc)
        if core.fc is not None:
            y = core.fc(y)
        if self.head is not None:
            y = self.head(y)
        new_state = h if c is None else torch.cat([h, c], dim=1)
        return y, new_state


def reference_outputs(model: nn.Module, x: Tensor, dt: Tensor) -> Tensor:
    """PyTorch outputs of ``model`` at every step of a sequence: x (B,T,F), dt (B,T) -> (B,T,O).

    Runs the layer's own sequence code (not :class:`StepModule`), with the input normalisation, the
    projection and the head of the model applied as the model does.
    """
    em = unwrap(model)
    with torch.no_grad():
        if em.input_mean is not None:
            x = x - em.input_mean.to(x.dtype)
        if em.input_std is not None:
            x = x / em.input_std.to(x.dtype)
        # every step's output, whatever the layer's return_sequences
        y, _ = em.core._forward(x, None, dt, None, True, True)
        if em.head is not None:
            y = em.head(y)
    return y
