"""Which executor runs a layer's call: the one place that decides, and that can say why.

A sequence call (``layer(x)``) runs on one of three paths, tried in this order:

* ``"native"``: the C kernels of :mod:`liquidflow._native` (CPU tensors, float32/float64), forward
  and backward over the whole sequence in one call each;
* ``"fused"``: the torch kernels of :mod:`liquidflow._ops.fused` — one autograd node per sequence, any device.
  On CPU they run only where the C kernels do not apply (native code switched off or not built,
  another dtype); on GPUs they are the fast path;
* ``"loop"``: the cells' ``step_pre`` in a Python loop, autograd recording every operation. It
  always applies: it is the reference the others are tested against.

A streaming step (``layer.step(x, h, dt)`` with gradients off) has the same three paths: the whole
step in C, the cell's one-step kernel (``fused_step``), or the loop on a one-step sequence.

Each path says why it does not apply; nothing falls back silently. :func:`explain` shows the choice
for a call, and :func:`use_path` forces one path (tests run every path on CPU this way); forcing a
path that does not apply raises with its reason.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import _ops
from .._ops import fused as _fused
from .._ops import switch as _switch
from .._ops.jobs import CfCJob, CfCLSTM, LTCJob
from . import _native_step

Tensor = torch.Tensor
PATHS = _switch.PATHS
_FORCE = _switch.ForcedPath()
_NATIVE_RUNS = "the C kernel runs this case on CPU"


@contextlib.contextmanager
def use_path(path: str | None) -> Iterator[None]:
    """Run every layer call inside the block on ``path`` ("native", "fused" or "loop"; None: choose)."""
    with _FORCE.forcing(path):
        yield


@dataclass(frozen=True)
class Choice:
    """The path a call takes and, for every path, why it does not apply (None where it does)."""

    kind: str  # "sequence" or "step"
    path: str
    reasons: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.kind} path: {self.path}"]
        for p in PATHS:
            if p == self.path:
                lines.append(f"  {p:<6} runs")
            elif p in self.reasons:
                lines.append(f"  {p:<6} not used: {self.reasons[p] or 'a path before it runs'}")
        return "\n".join(lines)


class PathError(RuntimeError):
    """A forced path (:func:`use_path`) does not apply to the call."""


class SlowPathWarning(UserWarning):
    """A layer option keeps the calls on the step-by-step loop (issued once per layer)."""


def _warn_slow(layer: Any, reason: str) -> None:
    """Say once per layer that an option (not the call's inputs) rules out every kernel."""
    if getattr(layer, "_slow_path_warned", False):
        return
    object.__setattr__(layer, "_slow_path_warned", True)
    warnings.warn(
        f"{type(layer).__name__}: {reason}; this layer runs the step-by-step loop, several times slower than "
        "the kernels (liquidflow.torch.explain(layer, x) shows why; docs/performance.md lists such options)",
        SlowPathWarning,
        stacklevel=4,
    )


def _forced(choice_reasons: dict[str, str | None], kind: str) -> Choice:
    assert _FORCE.path is not None
    why = choice_reasons.get(_FORCE.path)
    if why is not None:
        raise PathError(f"use_path({_FORCE.path!r}): the {_FORCE.path} {kind} path does not apply: {why}")
    return Choice(kind, _FORCE.path, choice_reasons)


# ------------------------------------------------------------------------------------- sequences
def _option_why_not(layer: Any) -> str | None:
    """Why the layer's options (not a call's inputs or switches) rule out both kernels."""
    cell = layer.cell
    if layer.lstm is not None and not hasattr(cell, "sequence_why_not"):  # CfC and LTC cells run it in C
        return "mixed_memory=True: its LSTM runs step by step"
    why: str | None = cell.sequence_why_not() if hasattr(cell, "sequence_why_not") else cell.fused_why_not()
    return why


def _kernel_why_not(layer: Any, ts: Tensor, m: Tensor | None) -> str | None:
    """Why neither kernel (C or fused torch) can run this sequence call."""
    option = _option_why_not(layer)
    if option is not None:
        return option
    off = _fused.off_reason()
    if off is not None:
        return off
    if ts.requires_grad:
        return "timespans require grad: the kernels do not differentiate the elapsed time"
    if m is not None and not bool(m.any(1).all()):
        return "a sample has no observed step"
    return None


def _run_native(job: CfCJob | LTCJob) -> Tensor:
    return _ops.run_native(job)


def _run_fused(job: CfCJob | LTCJob) -> Tensor:
    return _ops.run_fused(job)


def _decide(kind: str, common: str | None, native: Callable[[], str | None], fused: Callable[[], str | None],
            every: bool) -> Choice:  # fmt: skip
    """The path from the reasons: ``common`` rules out both kernels; ``native`` / ``fused`` give each
    kernel's reason, asked only when needed (``every``: all of them, for ``explain``)."""
    if common is not None:
        reasons: dict[str, str | None] = {"native": common, "fused": common, "loop": None}
        return _forced(reasons, kind) if _FORCE.path else Choice(kind, "loop", reasons)
    why_native = native()
    if why_native is None and _FORCE.path is None and not every:
        return Choice(kind, "native", {"native": None})
    why_fused = fused()
    if why_fused is None and why_native is None and _FORCE.path != "fused":
        why_fused = _NATIVE_RUNS  # on CPU the fused torch kernels stand behind the C ones
    reasons = {"native": why_native, "fused": why_fused, "loop": None}
    if _FORCE.path is not None:
        return _forced(reasons, kind)
    return Choice(kind, next(p for p in PATHS if reasons[p] is None), reasons)


def lstm_part(layer: Any, x: Tensor, c0: Tensor, pre: Tensor | None = None) -> CfCLSTM:
    """The mixed-memory LSTM of a CfC layer as its job carries it: x (B, T, I), c0 (B, N), ``pre`` the
    LSTM's input map of x, time-major (T, B, 4N), where already computed."""
    pre = layer.lstm.precompute(x.transpose(0, 1)) if pre is None else pre
    return CfCLSTM(pre, layer.lstm.recurrent_map.weight.T, c0)


def _sequence_choice(layer: Any, x: Tensor, h: Tensor, ts: Tensor, m: Tensor | None, every: bool,
                     drops: Any = None,
                     lstm: CfCLSTM | None = None) -> tuple[Choice, CfCJob | LTCJob | None]:  # fmt: skip
    """The path for a sequence call, and the job a kernel runs (None for the loop). ``drops``: the
    dropout multipliers the call drew (``CfCCell.draw_dropout``), the same for every path; ``lstm``:
    a CfC's mixed-memory LSTM (:func:`lstm_part`; made here with c0 = 0 where not given)."""
    jobs: list[CfCJob | LTCJob] = []

    def make_job() -> CfCJob | LTCJob:
        if not hasattr(layer.cell, "sequence_why_not"):
            return layer.cell.sequence_job(x, h, ts, m)  # type: ignore[no-any-return]
        part = lstm if lstm is not None or layer.lstm is None else lstm_part(layer, x, torch.zeros_like(h))
        return layer.cell.sequence_job(x, h, ts, m, drops, part)  # type: ignore[no-any-return]

    def native() -> str | None:
        jobs.append(make_job())
        return _ops.native_why_not(jobs[0])

    def fused() -> str | None:
        if not jobs:
            jobs.append(make_job())
        job = jobs[0]
        return _ops.fused_why_not(job)

    choice = _decide("sequence", _kernel_why_not(layer, ts, m), native, fused, every)
    return choice, (jobs[0] if jobs else None)


def run_sequence(layer: Any, x: Tensor, h: Tensor, ts: Tensor, m: Tensor | None, drops: Any = None,
                 lstm: CfCLSTM | None = None) -> Tensor | None:  # fmt: skip
    """States (T, B, N) from a kernel, or None when the loop is the path (the caller runs it); with
    ``lstm`` the kernel leaves the LSTM's cell states (T, B, N) in ``lstm.c``."""
    choice, job = _sequence_choice(layer, x, h, ts, m, every=False, drops=drops, lstm=lstm)
    if choice.path == "loop":
        option = _option_why_not(layer)
        if option is not None and _FORCE.path is None:
            _warn_slow(layer, option)
        return None
    assert job is not None
    return _run_native(job) if choice.path == "native" else _run_fused(job)


# ------------------------------------------------------------------------------------------ steps
def _step_why_not(layer: Any) -> str | None:
    """Why neither one-step kernel can run now (the loop then runs the step)."""
    if torch.is_grad_enabled():
        return "gradients are on: the step runs through autograd (use torch.no_grad() to stream)"
    if layer.lstm is not None:
        return "mixed_memory=True: its LSTM runs step by step"
    return _fused.off_reason()


def _step_choice(layer: Any, input: Any, hx: Any, dt: Any, every: bool) -> tuple[Choice, Any]:
    """The path for ``layer.step``, and the checked inputs of the one-step kernel (or None)."""
    fast: list[Any] = []

    def fused() -> str | None:
        fast.append(layer._fast_inputs(input, hx, dt))
        return fast[0] if isinstance(fast[0], str) else layer.cell.fused_why_not()  # type: ignore[no-any-return]

    def native() -> str | None:
        return _native_step.why_not(layer, input, hx, dt)

    choice = _decide("step", _step_why_not(layer), native, fused, every)
    return choice, (fast[0] if fast else None)


def run_step(layer: Any, input: Any, hx: Any, dt: Any) -> Any:
    """``(output, state)`` from a one-step kernel, or None when the loop is the path."""
    if _FORCE.path is None and _step_why_not(layer) is None:
        # streaming hot path (a few µs a step): try the C step first; it returns None exactly where
        # _native_step.why_not gives a reason, and the choice below then says which path runs
        out = _native_step.step(layer, input, hx, dt)
        if out is not None:
            return out
    choice, fast = _step_choice(layer, input, hx, dt, every=False)
    if choice.path == "native":
        # it applies but refused: a non-finite value found while stepping; the loop raises the error
        return _native_step.step(layer, input, hx, dt)
    if choice.path == "fused":
        return layer._run_fast_step(*fast)
    return None


def _one_step(layer: Any, input: Any, hx: Any, timespans: Any, mask: Any) -> tuple[Any, Any] | None:
    """(x_t, dt) when ``layer(input, hx, timespans)`` is one step of a stream (ncps users call the
    layer one step at a time): T = 1, a state given, no mask, gradients off. Else None."""
    if hx is None or mask is not None or torch.is_grad_enabled() or not isinstance(input, torch.Tensor):
        return None
    if input.dim() != 3 or input.shape[1 if layer.batch_first else 0] != 1:
        return None
    x = input[:, 0] if layer.batch_first else input[0]  # (B, F)
    if timespans is None:
        return x, 1.0
    if isinstance(timespans, (int, float)) and not isinstance(timespans, bool):
        return x, timespans
    if isinstance(timespans, torch.Tensor):  # the shapes the general path takes: (B, 1[, 1]) / (1, B[, 1])
        B = x.shape[0]
        lead = (B, 1) if layer.batch_first else (1, B)
        if timespans.dim() in (2, 3) and tuple(timespans.shape[:2]) == lead and timespans.shape[2:] in ((), (1,)):
            return x, timespans.reshape(B)
    return None


def run_one_step_sequence(layer: Any, input: Any, hx: Any, timespans: Any, mask: Any) -> Any:
    """``layer(input, hx, timespans)`` for a one-step sequence through the step paths, or None."""
    one = _one_step(layer, input, hx, timespans, mask)
    if one is None:
        return None
    out = run_step(layer, one[0], hx, one[1])
    if out is None:
        return None
    y, h = out
    if layer.return_sequences:
        y = y.unsqueeze(1) if layer.batch_first else y.unsqueeze(0)
    return y, h


# ---------------------------------------------------------------------------------------- explain
def explain(layer: Any, input: Tensor, hx: Any = None, timespans: Any = None, mask: Tensor | None = None, *,
            step: bool = False, dt: Any = 1.0) -> Choice:  # fmt: skip
    """Which path ``layer(input, hx, timespans, mask)`` (or, with ``step=True``, ``layer.step(input,
    hx, dt)``) takes under the current grad mode and switches, and why the others do not.

    >>> print(explain(CfC(20, 64), torch.randn(8, 100, 20)))   # doctest: +SKIP
    sequence path: native
      native runs
      fused  not used: the C kernel runs this case on CPU
      loop   not used: a path before it runs
    """
    if step:
        return _step_choice(layer, input, hx, dt, every=True)[0]
    one = _one_step(layer, input, hx, timespans, mask)
    if one is not None:  # a one-step sequence with a state takes the step paths
        choice = _step_choice(layer, one[0], hx, one[1], every=True)[0]
        return Choice("one-step sequence (streaming)", choice.path, choice.reasons)
    x, h, ts, m = layer._prepare(input, hx, timespans, mask)
    return _sequence_choice(layer, x, h, ts, m, every=True)[0]


__all__ = ["PATHS", "Choice", "PathError", "SlowPathWarning", "explain", "run_sequence", "run_step", "use_path"]
