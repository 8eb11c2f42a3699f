"""Sequence layers LTC and CfC: a loop over a cell's steps, with irregular time and masks.

Conventions (docs/math.md, "Sequences"): input (B, T, F) with ``batch_first=True`` (or (T, B, F));
unbatched (T, F) works. ``timespans`` is the elapsed time before each step, per sample: a float,
(B, T) or (B, T, 1). ``mask`` (B, T) is True where a step is observed; at a False step the state is
carried unchanged and the output is zero. Returns ``(output, hx)``: ``hx`` is the final state (a pair
``(h, c)`` with ``mixed_memory=True``) and feeds the next chunk of the same sequence.

Why one file (~790 lines): ``LTC`` and ``CfC`` are thin subclasses of ``_SequenceLayer``, which owns
everything they share (input checks, the dispatch to an executor, masks and states, streaming
``step``, the nn.LSTM-style stacking and bidirectional layout, ncps checkpoint loading); reading a
subclass means reading the base, and splitting the base would only move its private helpers apart.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Union, cast

import torch
from torch import nn

from .._frontend import cfc_backbone, cfc_options, check_wired_cfc_options, ltc_options
from .._validate import (
    check_device,
    check_finite,
    check_finite_observed,
    check_float_dtype,
    check_tensor,
    normalize_mask,
    normalize_timespans,
)
from ..wirings import FullyConnected, Wiring
from . import _dispatch
from ._cells import CfCCell, LTCCell, MixedMemoryLSTMCell, WiredCfCCell
from ._ncps_state import load_ncps_state_pre_hook, ncps_key_problems
from ._solvers import Solver

Tensor = torch.Tensor
State = Union[Tensor, tuple[Tensor, Tensor]]


class _SequenceLayer(nn.Module):
    """Shared loop; subclasses set ``self.cell`` (with precompute/step_pre) and sizes."""

    cell: Any  # LTCCell | CfCCell | WiredCfCCell
    lstm: MixedMemoryLSTMCell | None
    fc: nn.Linear | None
    input_size: int
    state_size: int
    # nn.LSTM-style stacking: None for one unidirectional layer (the plain path); else the
    # single-layer sub-layers in nn.LSTM's order (layer 0 forward, layer 0 backward, layer 1 ...).
    # Set in _setup_stack: a class attribute None would hide the registered module.
    layers: nn.ModuleList | None
    drop: nn.Dropout | None
    _int_units: int | None  # a stack's int ``units`` (its config's)
    _stacked = False  # True when ``layers`` holds the sub-layers (a class default: old pickles load)
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0

    def _setup_common(
        self,
        input_size: int,
        proj_size: int | None,
        return_sequences: bool,
        batch_first: bool,
        mixed_memory: bool,
        forget_bias: float = 1.0,
    ) -> None:
        self.return_sequences = bool(return_sequences)
        self.batch_first = bool(batch_first)
        self.mixed_memory = bool(mixed_memory)
        if not isinstance(forget_bias, (int, float)) or isinstance(forget_bias, bool) or not math.isfinite(forget_bias):
            raise ValueError(f"forget_bias must be a finite number; got {forget_bias!r}")
        if forget_bias != 1.0 and not mixed_memory:
            raise ValueError(f"forget_bias applies to the mixed-memory LSTM only; got forget_bias={forget_bias} "
                             "with mixed_memory=False")  # fmt: skip
        self.forget_bias = float(forget_bias)
        self.lstm = MixedMemoryLSTMCell(input_size, self.state_size, self.forget_bias) if mixed_memory else None
        if proj_size is not None and (isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 1):
            raise ValueError(f"proj_size must be None or an integer >= 1; got {proj_size!r}")
        self.proj_size = proj_size
        self.fc = nn.Linear(self.cell.output_size, proj_size) if proj_size else None
        # a state_dict saved from ncps.torch loads as is (names and values converted: torch/_ncps_state.py)
        self._register_load_state_dict_pre_hook(load_ncps_state_pre_hook, with_module=True)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """As ``nn.Module.load_state_dict``; also takes a state_dict saved from the same ncps.torch layer
        (converted by torch/_ncps_state.py), and then names the ncps keys that do not fit."""
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as error:
            why = ncps_key_problems(state_dict, self) if strict else None
            if why is None:
                raise
            raise RuntimeError(f"{error}\n\t{why}") from None

    @property
    def motor_size(self) -> int:
        if self._stacked:
            return self._sub(-1).motor_size
        return int(self.cell.output_size)

    @property
    def output_size(self) -> int:  # ncps's name for the motor neurons' count
        return self.motor_size

    @property
    def out_features(self) -> int:
        if self._stacked:
            return self._sub(-1).out_features * (2 if self.bidirectional else 1)
        return self.proj_size if self.proj_size else self.motor_size

    # ------------------------------------------------------------------ nn.LSTM-style options
    def _setup_stack(
        self,
        make: Callable[[int], _SequenceLayer],
        input_size: int,
        units: Wiring | int,
        num_layers: int,
        dropout: float,
        bidirectional: bool,
        return_sequences: bool,
        batch_first: bool,
    ) -> bool:
        """Check num_layers/dropout/bidirectional; build the sub-layers if they ask for more than one
        unidirectional layer (True), else leave the plain single layer to the caller (False)."""
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an integer >= 1; got {num_layers!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a number in [0, 1]; got {dropout!r}")
        if not isinstance(bidirectional, bool):
            raise ValueError(f"bidirectional must be True or False; got {bidirectional!r}")
        if dropout > 0 and num_layers == 1:  # as nn.LSTM
            warnings.warn(
                "dropout acts between stacked layers (on the outputs of all but the last), so it needs "
                f"num_layers > 1; got dropout={dropout} and num_layers=1 (for dropout inside the cell use "
                "CfC's backbone_dropout)",
                UserWarning,
                stacklevel=3,
            )
        self.num_layers, self.dropout, self.bidirectional = num_layers, float(dropout), bidirectional
        self.layers = None
        if num_layers == 1 and not bidirectional:
            return False
        self.input_size = input_size
        self._int_units = units if isinstance(units, int) and not isinstance(units, bool) else None
        self.return_sequences = bool(return_sequences)
        self.batch_first = bool(batch_first)
        directions = 2 if bidirectional else 1
        subs: list[_SequenceLayer] = []
        width = input_size
        for _ in range(num_layers):
            subs += [make(width) for _ in range(directions)]
            width = subs[-1].out_features * directions
        self.layers = nn.ModuleList(subs)
        self._stacked = True
        first = subs[0]
        self.state_size, self.mixed_memory = first.state_size, first.mixed_memory
        self.proj_size, self.forget_bias = first.proj_size, first.forget_bias
        self.drop = nn.Dropout(self.dropout) if self.dropout > 0 else None
        self._register_load_state_dict_pre_hook(load_ncps_state_pre_hook, with_module=True)  # refuses ncps ones
        return True

    def _factory(self, device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        """``device=`` / ``dtype=`` as torch's factory arguments: the parameters end up there."""
        if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
            raise ValueError(f"dtype must be a floating torch.dtype; got {dtype!r}")
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    def _sub(self, k: int) -> _SequenceLayer:
        assert self.layers is not None
        sub: _SequenceLayer = self.layers[k]  # type: ignore[assignment]
        return sub

    def _split_state(self, hx: State | None, batch: int, batched: bool) -> list[State | None]:
        """nn.LSTM's state layout (num_layers * num_directions, B, N) -> one state per sub-layer."""
        assert self.layers is not None
        K, n = len(self.layers), self.state_size
        if hx is None:
            return [None] * K
        parts = list(hx) if isinstance(hx, (tuple, list)) else [hx]
        if len(parts) != (2 if self.mixed_memory else 1):
            want = "a pair (h, c)" if self.mixed_memory else "a tensor"
            raise ValueError(f"hx must be {want} when mixed_memory={self.mixed_memory}; got {type(hx).__name__}")
        expected = (K, batch, n) if batched else (K, n)
        for p in parts:
            p = check_tensor(p, "hx")
            if tuple(p.shape) != expected:
                raise ValueError(
                    f"hx must have shape {expected} (num_layers * num_directions, batch, state_size) as "
                    f"nn.LSTM's; got {tuple(p.shape)}"
                )
        parts = [p if batched else p.unsqueeze(1) for p in parts]
        return [(parts[0][k], parts[1][k]) if self.mixed_memory else parts[0][k] for k in range(K)]

    def _join_states(self, states: list[State], batched: bool) -> State:
        if self.mixed_memory:
            h = torch.stack([s[0] for s in states])  # (K, B, N)
            c = torch.stack([s[1] for s in states])
            return (h, c) if batched else (h[:, 0], c[:, 0])
        stacked = torch.stack(states)  # type: ignore[arg-type]
        return stacked if batched else stacked[:, 0]

    def _forward_stack(
        self, input: Tensor, hx: State | None, timespans: float | Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, State]:
        """Stacked and/or bidirectional layers, as nn.LSTM: layer l > 0 reads layer l - 1's outputs
        (both directions concatenated, dropout between layers in training). The backward direction
        runs on each sequence reversed within its valid length (up to its last observed step), its
        mask and timespans reversed with it; its outputs are put back in the forward order."""
        first = self._sub(0)
        x, batched = first._check_input(input, self.batch_first)  # (B, T, F)
        B, T, _ = x.shape
        batch_first = self.batch_first or not batched
        if not batched and isinstance(timespans, torch.Tensor) and timespans.dim() >= 1:
            timespans = timespans.unsqueeze(0)
        if not batched and mask is not None:
            mask = check_tensor(mask, "mask").unsqueeze(0)
        m = normalize_mask(mask, B, T, batch_first, x.device)  # (B, T)
        ts = normalize_timespans(timespans, B, T, batch_first, x.dtype, x.device, m)  # (B, T, 1)
        states = self._split_state(hx, B, batched)
        directions = 2 if self.bidirectional else 1
        rev = _reverse_index(m, B, T, x.device) if self.bidirectional else None  # (B, T)
        rev_m = None if m is None or rev is None else torch.gather(m, 1, rev)
        finals: list[State] = []
        out = x
        for layer in range(self.num_layers):
            last = layer == self.num_layers - 1
            return_sequences = self.return_sequences if last else True
            outs = []
            for d in range(directions):
                k = layer * directions + d
                sub = self._sub(k)
                if d == 0:
                    y, h = sub._forward(out, states[k], ts, m, return_sequences, True)
                else:
                    assert rev is not None
                    y, h = sub._forward(_gather_time(out, rev), states[k], _gather_time(ts, rev), rev_m,
                                        return_sequences, True)  # fmt: skip
                    if return_sequences:
                        y = _gather_time(y, rev)  # the reversal is its own inverse
                outs.append(y)
                finals.append(h)
            out = torch.cat(outs, -1) if directions == 2 else outs[0]
            if not last and self.drop is not None:
                out = self.drop(out)
        if self.return_sequences and not batch_first:
            out = out.transpose(0, 1)
        if not batched:
            out = out[0]
        return out, self._join_states(finals, batched)

    def _step_stack(self, input: Tensor, hx: State | None, dt: float | Tensor) -> tuple[Tensor, State]:
        if self.bidirectional:
            raise ValueError(
                "step() streams one step at a time, but a bidirectional layer needs the whole sequence "
                "(its backward direction starts at the end): call the layer on the sequence, or stream "
                "with bidirectional=False"
            )
        x = check_tensor(input, "input")
        batched = x.dim() == 2
        states = self._split_state(hx, x.shape[0] if batched else 1, batched)
        finals: list[State] = []
        for k in range(self.num_layers):
            x, h = self._sub(k).step(x, states[k] if batched else _unbatch(states[k]), dt)
            finals.append(h if batched else _batch(h))
            if k < self.num_layers - 1 and self.drop is not None:
                x = self.drop(x)
        return x, self._join_states(finals, batched)

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError  # LTC and CfC

    def _stack_layer_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {**self._sub(0).get_config(), **self._common_config(), **self._stack_config()}
        if self._int_units is not None:  # not the first layer's wiring: later layers read other sizes
            cfg["units"] = self._int_units
        return cfg

    def _stack_config(self) -> dict[str, Any]:
        """The nn.LSTM-style options that differ from the defaults (a plain layer's config is unchanged)."""
        cfg: dict[str, Any] = {}
        if self.num_layers != 1:
            cfg["num_layers"] = self.num_layers
        if self.dropout:
            cfg["dropout"] = self.dropout
        if self.bidirectional:
            cfg["bidirectional"] = True
        return cfg

    # ------------------------------------------------------------------ checks
    def _param_dtype_device(self) -> tuple[torch.dtype, torch.device]:
        p = next(self.parameters())
        return p.dtype, p.device

    def _check_input(self, input: Tensor, batch_first: bool) -> tuple[Tensor, bool]:
        x = check_tensor(input, "input")
        if x.dim() not in (2, 3):
            layout = "(B, T, F)" if batch_first else "(T, B, F)"
            raise ValueError(f"input must be 3-D {layout} or 2-D (T, F) unbatched; got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"input has {x.shape[-1]} features (last axis) but the layer expects input_size={self.input_size}"
            )
        dtype, device = self._param_dtype_device()
        check_float_dtype(x, "input", dtype)
        check_device(x, "input", device)
        batched = x.dim() == 3
        if not batched:
            x = x.unsqueeze(0)
        elif not batch_first:
            x = x.transpose(0, 1)
        if x.shape[1] == 0:
            raise ValueError("input has 0 time steps; a sequence needs at least one step")
        return x, batched

    def _check_state(self, hx: State | None, batch: int, batched: bool, like: Tensor) -> tuple[Tensor, Tensor | None]:
        n = self.state_size
        if hx is None:
            h = torch.zeros(batch, n, dtype=like.dtype, device=like.device)
            return h, (torch.zeros_like(h) if self.mixed_memory else None)
        if self.mixed_memory:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError("hx must be a pair (h, c) when mixed_memory=True; got " + type(hx).__name__)
            parts = [check_tensor(hx[0], "hx[0]"), check_tensor(hx[1], "hx[1]")]
        else:
            if isinstance(hx, (tuple, list)):
                raise ValueError("hx must be a tensor (not a tuple) when mixed_memory=False")
            parts = [check_tensor(hx, "hx")]
        expected = (batch, n) if batched else (n,)
        out = []
        for k, p in enumerate(parts):
            name = "hx" if len(parts) == 1 else f"hx[{k}]"
            if tuple(p.shape) != expected:
                raise ValueError(f"{name} must have shape {expected} (batch, state_size); got {tuple(p.shape)}")
            check_float_dtype(p, name, like.dtype)
            check_finite(p, name)
            out.append(p if batched else p.unsqueeze(0))
        return out[0], (out[1] if len(out) == 2 else None)

    # ------------------------------------------------------------------ run
    def forward(
        self,
        input: Tensor,
        hx: State | None = None,
        timespans: float | Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, State]:
        """Run a sequence. See the module docstring for shapes; returns ``(output, final_state)``."""
        if self._stacked:
            return self._forward_stack(input, hx, timespans, mask)
        if hx is not None and not torch.is_grad_enabled():  # one step of a stream: the step paths
            out = _dispatch.run_one_step_sequence(self, input, hx, timespans, mask)
            if out is not None:
                return out  # type: ignore[no-any-return]
        return self._forward(input, hx, timespans, mask, self.return_sequences, self.batch_first)

    def _forward(
        self,
        input: Tensor,
        hx: State | None,
        timespans: float | Tensor | None,
        mask: Tensor | None,
        return_sequences: bool,
        batch_first: bool,
    ) -> tuple[Tensor, State]:
        x, h, c, ts, m, batched, batch_first = self._normalize(input, hx, timespans, mask, batch_first)
        out, h, c = self._run(x, h, c, ts, m, return_sequences)
        if return_sequences and not batch_first:
            out = out.transpose(0, 1)
        if not batched:
            out = out[0]
            h = h[0]
            c = c[0] if c is not None else None
        state: State = (h, c) if c is not None else h
        return out, state

    def _normalize(
        self, input: Tensor, hx: State | None, timespans: float | Tensor | None, mask: Tensor | None, batch_first: bool
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor | None, bool, bool]:
        """Checked, batch-first (B, T, F) inputs, states, (B, T, 1) timespans and (B, T) mask."""
        x, batched = self._check_input(input, batch_first)  # (B, T, F)
        B, T, _ = x.shape
        if not batched:
            # unbatched: (T,) timespans / mask gain a batch axis, in either layout
            if isinstance(timespans, torch.Tensor) and timespans.dim() >= 1:
                timespans = timespans.unsqueeze(0)
            if mask is not None:
                mask = check_tensor(mask, "mask").unsqueeze(0)
            batch_first = True
        m = normalize_mask(mask, B, T, batch_first, x.device)
        x = check_finite_observed(x, "input", m)  # NaN/Inf policy: docs/robustness.md
        ts = normalize_timespans(timespans, B, T, batch_first, x.dtype, x.device, m)  # (B, T, 1)
        h, c = self._check_state(hx, B, batched, x)
        return x, h, c, ts, m, batched, batch_first

    def _prepare(
        self, input: Tensor, hx: State | None, timespans: float | Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """(x, h, ts, m) as the dispatcher sees a call ``self(input, hx, timespans, mask)``."""
        if self._stacked:
            raise ValueError(
                f"a layer with num_layers={self.num_layers}, bidirectional={self.bidirectional} runs its single "
                "layers one after the other, each by its own path: ask about one of them (layer.layers[k]; "
                "layer 0's input is the layer's, later ones read the previous layer's outputs)"
            )
        x, h, _, ts, m, _, _ = self._normalize(input, hx, timespans, mask, self.batch_first)
        return x, h, ts, m

    def _run(
        self, x: Tensor, h: Tensor, c: Tensor | None, ts: Tensor, m: Tensor | None, return_sequences: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        B, T = x.shape[0], x.shape[1]
        # dropout multipliers for the whole sequence, drawn once whichever path runs (same seed, same masks)
        drops = self.cell.draw_dropout(T, B, x) if hasattr(self.cell, "draw_dropout") else None
        # the LSTM's input map, time-major (T, B, 4N): the layout the C kernel reads, no copy
        pre_lstm = self.lstm.precompute(x.transpose(0, 1)) if self.lstm is not None else None
        lstm = None
        if pre_lstm is not None and hasattr(self.cell, "sequence_why_not"):  # CfC: the LSTM runs in the C kernel
            assert c is not None
            lstm = _dispatch.lstm_part(self, x, c, pre_lstm)
        S = _dispatch.run_sequence(self, x, h, ts, m, drops, lstm)  # (T, B, N) from a kernel; None: the loop below
        if S is not None:
            out, h, _ = self._finish_fused(S, m, return_sequences)
            if lstm is not None:
                assert lstm.c is not None
                return out, h, lstm.c[-1].clone()
            return out, h, None
        pre = self.cell.precompute(x)  # state-independent work for all steps at once
        outs: list[Tensor] = []
        last = None
        for t in range(T):
            h_prev, c_prev = h, c
            if self.lstm is not None:
                assert pre_lstm is not None and c is not None
                h, c = self.lstm.step_pre(pre_lstm[t], h, c)
            if drops is not None:
                y, h = self.cell.step_pre(pre[:, t], h, ts[:, t], [d[t] for d in drops])
            else:
                y, h = self.cell.step_pre(pre[:, t], h, ts[:, t])
            if m is not None:
                keep = m[:, t : t + 1]  # (B, 1)
                h = torch.where(keep, h, h_prev)
                if c is not None:
                    assert c_prev is not None
                    c = torch.where(keep, c, c_prev)
                y_masked = torch.where(keep, y, torch.zeros_like(y))
                last = y if last is None else torch.where(keep, y, last)
                y = y_masked
            else:
                last = y
            if return_sequences:
                outs.append(y)
        if return_sequences:
            out = torch.stack(outs, dim=1)
        else:
            assert last is not None
            out = last
        if self.fc is not None:
            out = self.fc(out)
            if return_sequences and m is not None:
                out = out * m.unsqueeze(-1).to(out.dtype)
        return out, h, c

    def _finish_fused(self, S: Tensor, m: Tensor | None, return_sequences: bool) -> tuple[Tensor, Tensor, None]:
        """Outputs from the fused kernel's states (T, B, N), as the step loop makes them."""
        y = self.cell.fused_output(S)  # (T, B, out)
        if m is None:
            out = y.transpose(0, 1).contiguous() if return_sequences else y[-1]
        elif return_sequences:
            zero = torch.zeros((), dtype=y.dtype, device=y.device)
            out = torch.where(m.t().unsqueeze(-1), y, zero).transpose(0, 1).contiguous()
        else:  # the output of each sample's last observed step
            last = m.shape[1] - 1 - m.flip(1).to(torch.int64).argmax(1)  # (B,)
            out = y[last, torch.arange(m.shape[0], device=m.device)]
        if self.fc is not None:
            out = self.fc(out)
            if return_sequences and m is not None:
                out = out * m.unsqueeze(-1).to(out.dtype)
        return out, S[-1].clone(), None

    def step(self, input: Tensor, hx: State | None = None, dt: float | Tensor = 1.0) -> tuple[Tensor, State]:
        """One streaming step: input (B, F) or (F,), dt a float or (B,) -> (output, new state)."""
        if self._stacked:
            return self._step_stack(input, hx, dt)
        fast = _dispatch.run_step(self, input, hx, dt)  # None: the general path below
        if fast is not None:
            return fast  # type: ignore[no-any-return]
        x = check_tensor(input, "input")
        if x.dim() not in (1, 2):
            raise ValueError(f"input to step must be (B, F) or (F,); got shape {tuple(x.shape)}")
        batched = x.dim() == 2
        seq = x.unsqueeze(1) if batched else x.unsqueeze(0)  # one time step
        if isinstance(dt, torch.Tensor) and dt.dim() > 0:
            dt = dt.reshape(-1, 1) if batched else dt.reshape(1)
        return self._forward(seq, hx, dt, None, False, True)

    def _fast_inputs(self, input: Any, hx: Any, dt: Any) -> tuple[Tensor, Tensor, float | Tensor, bool] | str:
        """(x, h, dt, batched) for the one-step kernel, or why the call is not the kernel's: only
        well-formed, finite inputs take it; the general path checks the rest and raises its errors."""
        if not isinstance(input, torch.Tensor) or input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            return "input is not a (B, F) or (F,) tensor of the layer's features"
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        B = x.shape[0]
        p = self.cell.sparsity_mask if isinstance(self.cell, LTCCell) else next(self.cell.parameters())
        if x.dtype != p.dtype or x.device != p.device or B == 0:
            return "input dtype/device differs from the parameters', or an empty batch"
        if hx is None:
            h = x.new_zeros(B, self.state_size)
        elif isinstance(hx, torch.Tensor) and hx.dtype == x.dtype and hx.device == x.device:
            if tuple(hx.shape) != ((B, self.state_size) if batched else (self.state_size,)):
                return "state shape does not match the input"
            h = hx if batched else hx.unsqueeze(0)
        else:
            return "state is not a tensor of the input's dtype and device"
        if isinstance(dt, (int, float)) and not isinstance(dt, bool):
            if not (0.0 < float(dt) < float("inf")):
                return "dt is not positive and finite"
            d: float | Tensor = float(dt)
        elif isinstance(dt, torch.Tensor) and dt.dtype == x.dtype and dt.device == x.device and dt.numel() == B:
            d = dt.reshape(B, 1)
            if not bool(((d > 0) & torch.isfinite(d)).all()):
                return "dt is not positive and finite"
        else:
            return "dt is neither a number nor one value per sample of the input's dtype"
        finite = torch.isfinite(x).all()
        if hx is not None:
            finite = finite & torch.isfinite(h).all()
        if not bool(finite):  # the general path raises the NaN/Inf error
            return "input or state is not finite"
        return x, h, d, batched

    def _run_fast_step(self, x: Tensor, h: Tensor, d: float | Tensor, batched: bool) -> tuple[Tensor, State]:
        """``step`` by the cell's one-step kernel, on inputs checked by ``_fast_inputs``."""
        new = self.cell.fused_step(x, h, d)
        y = self.cell.fused_output(new)
        if self.fc is not None:
            y = self.fc(y)
        return (y, new) if batched else (y[0], new[0])

    def _common_config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "proj_size": self.proj_size,
            "return_sequences": self.return_sequences,
            "batch_first": self.batch_first,
            "mixed_memory": self.mixed_memory,
            "forget_bias": self.forget_bias,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _SequenceLayer:
        config = dict(config)
        units = config.pop("units")
        if isinstance(units, dict):
            units = Wiring.from_config(units)
        return cls(units=units, **config)


def _reverse_index(m: Tensor | None, B: int, T: int, device: torch.device) -> Tensor:
    """(B, T) time indices that reverse each sequence within its valid length (up to its last
    observed step; padding after it stays in place). Applying it twice gives the identity."""
    t = torch.arange(T, device=device).expand(B, T)
    if m is None:
        return t.flip(1)
    length = T - m.flip(1).to(torch.int64).argmax(1)  # (B,) last observed step + 1
    length = torch.where(m.any(1), length, torch.zeros_like(length))
    L = length.unsqueeze(1)
    return torch.where(t < L, L - 1 - t, t)


def _gather_time(v: Tensor, index: Tensor) -> Tensor:
    """v (B, T, ...) reordered along time by index (B, T)."""
    idx = index.reshape(*index.shape, *([1] * (v.dim() - 2))).expand_as(v)
    return torch.gather(v, 1, idx)


def _unbatch(state: State | None) -> State | None:
    if state is None or isinstance(state, torch.Tensor):
        return None if state is None else state[0]
    return (state[0][0], state[1][0])


def _batch(state: State) -> State:
    if isinstance(state, torch.Tensor):
        return state.unsqueeze(0)
    return (state[0].unsqueeze(0), state[1].unsqueeze(0))


def _check_stack_units(units: Any, num_layers: Any) -> None:
    if isinstance(units, Wiring) and num_layers != 1:
        raise ValueError(
            f"num_layers={num_layers} with a Wiring is not defined: the wiring fixes one layer's graph for its "
            "input size. Put the layers in the wiring instead (NCP(inter_neurons=[16, 8], ...) or a Wiring "
            "subclass), or stack layers yourself (nn.Sequential-style, each with its own wiring)"
        )


class LTC(_SequenceLayer):
    """Liquid time-constant network layer (ncps-compatible arguments).

    ``LTC(input_size, units)`` with ``units`` an int (fully connected) or a Wiring (built in place,
    or copied when built for another input size: ``Wiring.built_for``).
    Output: the motor neurons (``wiring.output_dim``), mapped by ``output_mapping``; projected to
    ``proj_size`` if given.
    """

    def __init__(
        self,
        input_size: int,
        units: Wiring | int,
        return_sequences: bool = True,
        batch_first: bool = True,
        mixed_memory: bool = False,
        input_mapping: str | None = "affine",
        output_mapping: str | None = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        implicit_param_constraints: bool = True,
        solver: str | Solver = "semi_implicit",
        proj_size: int | None = None,
        forget_bias: float = 1.0,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"input_size must be an integer >= 1; got {input_size!r}")
        _check_stack_units(units, num_layers)

        def make(width: int) -> LTC:
            return LTC(width, units, True, True, mixed_memory, input_mapping, output_mapping, ode_unfolds, epsilon,
                       implicit_param_constraints, solver, proj_size, forget_bias)  # fmt: skip

        if self._setup_stack(
            make, input_size, units, num_layers, dropout, bidirectional, return_sequences, batch_first
        ):
            self._factory(device, dtype)
            return
        if not implicit_param_constraints:
            raise ValueError(
                "implicit_param_constraints=False is not supported: liquidflow always keeps w, sensory_w, "
                "cm and gleak positive through a softplus parametrisation (docs/math.md)"
            )
        wiring = FullyConnected(units) if isinstance(units, int) and not isinstance(units, bool) else units
        if not isinstance(wiring, Wiring):
            raise TypeError(f"units must be an int or a Wiring; got {type(units).__name__}")
        self.input_size = input_size
        self.cell = LTCCell(wiring, input_size, input_mapping, output_mapping, ode_unfolds, epsilon, solver)
        self.state_size = self.cell.state_size
        self._setup_common(input_size, proj_size, return_sequences, batch_first, mixed_memory, forget_bias)
        self._factory(device, dtype)

    @property
    def wiring(self) -> Wiring:
        wiring: Wiring = self.rnn_cell.wiring
        return wiring

    # ncps's LTC size properties (read from the first cell's wiring)
    @property
    def sensory_size(self) -> int:
        return int(self.rnn_cell.sensory_size)

    @property
    def synapse_count(self) -> int:
        return int(self.rnn_cell.synapse_count)

    @property
    def sensory_synapse_count(self) -> int:
        return int(self.rnn_cell.sensory_synapse_count)

    @property
    def rnn_cell(self) -> LTCCell:  # ncps name; a stacked layer's first cell
        cell: LTCCell = self.cell if not self._stacked else self._sub(0).cell
        return cell

    def apply_weight_constraints(self) -> None:
        """No-op (ncps compatibility): positivity is part of the parametrisation."""

    def get_config(self) -> dict[str, Any]:
        if self._stacked:
            return self._stack_layer_config()
        cfg = self._common_config()
        cell = self.cell.get_config()
        cfg.update(units=cell["wiring"], **ltc_options(cell))
        return cfg


class CfC(_SequenceLayer):
    """Closed-form continuous-time layer (ncps-compatible arguments).

    ``CfC(input_size, units)`` with ``units`` an int (a CfCCell with a backbone MLP) or a Wiring (a
    WiredCfCCell; backbone options are then not allowed). ``mode``: default, no_gate or pure.
    """

    backbone_units: int | None
    backbone_layers: int | None
    backbone_dropout: float | None

    def __init__(
        self,
        input_size: int,
        units: Wiring | int,
        proj_size: int | None = None,
        return_sequences: bool = True,
        batch_first: bool = True,
        mixed_memory: bool = False,
        mode: str = "default",
        activation: str = "lecun_tanh",
        backbone_units: int | None = None,
        backbone_layers: int | None = None,
        backbone_dropout: float | None = None,
        head_activation: str = "tanh",
        forget_bias: float = 1.0,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"input_size must be an integer >= 1; got {input_size!r}")
        _check_stack_units(units, num_layers)
        self.mode, self.activation, self.head_activation = mode, activation, head_activation

        def make(width: int) -> CfC:
            return CfC(width, units, proj_size, True, True, mixed_memory, mode, activation, backbone_units,
                       backbone_layers, backbone_dropout, head_activation, forget_bias)  # fmt: skip

        if self._setup_stack(
            make, input_size, units, num_layers, dropout, bidirectional, return_sequences, batch_first
        ):
            first = cast(CfC, self._sub(0))
            self.backbone_units, self.backbone_layers = first.backbone_units, first.backbone_layers
            self.backbone_dropout = first.backbone_dropout
            self._factory(device, dtype)
            return
        self.input_size = input_size
        if isinstance(units, Wiring):
            check_wired_cfc_options(backbone_units, backbone_layers, backbone_dropout, head_activation)
            self.cell = WiredCfCCell(input_size, units, mode)
            self.backbone_units = self.backbone_layers = None
            self.backbone_dropout = None
        elif isinstance(units, int) and not isinstance(units, bool):
            self.backbone_units, self.backbone_layers, self.backbone_dropout = cfc_backbone(
                backbone_units, backbone_layers, backbone_dropout
            )
            self.cell = CfCCell(
                input_size,
                units,
                mode,
                activation,
                self.backbone_units,
                self.backbone_layers,
                self.backbone_dropout,
                head_activation=head_activation,
            )
        else:
            raise TypeError(f"units must be an int or a Wiring; got {type(units).__name__}")
        self.head_activation = head_activation
        self.state_size = self.cell.state_size
        self._setup_common(input_size, proj_size, return_sequences, batch_first, mixed_memory, forget_bias)
        self._factory(device, dtype)

    @property
    def wiring(self) -> Wiring | None:
        cell = self.rnn_cell
        return cell.wiring if isinstance(cell, WiredCfCCell) else None

    @property
    def rnn_cell(self) -> nn.Module:  # ncps name; a stacked layer's first cell
        cell: nn.Module = self.cell if not self._stacked else self._sub(0).cell
        return cell

    def get_config(self) -> dict[str, Any]:
        if self._stacked:
            return self._stack_layer_config()
        cfg = self._common_config()
        wiring = self.wiring
        cfg.update(units=wiring.get_config() if wiring is not None else self.state_size, **cfc_options(self))
        return cfg
