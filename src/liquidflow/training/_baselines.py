"""Baseline sequence layers behind the LTC/CfC interface, each given dt as an extra input channel.

``forward(input (B, T, F), hx=None, timespans=None | float | (B, T) | (B, T, 1), mask=None | (B, T))
-> (output, state)``, exactly like :class:`liquidflow.torch.CfC`: output (B, T, H) with
``return_sequences=True`` (zero at masked steps) or (B, H), the output at the last observed step.
The elapsed time of each step is appended to the input features (``dt_input="linear"``: dt itself;
``"log"``: log dt, for gaps spread over decades), so an LSTM, GRU or Transformer sees the same
timing information an LTC/CfC integrates over: the comparison is fair.

These are the only LSTM / GRU / Transformer baselines of the library: the generic trainer's models
(:func:`build_model`) and the maintenance risk models (:class:`RiskModel`) both build on them.

At masked (unobserved) steps the recurrent baselines carry their state unchanged, like LTC/CfC.
When the mask only pads the end of each sequence (the usual case) the fused cuDNN-style kernels run
over the whole sequence; otherwise the recurrence runs step by step so the state can be held.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .._validate import check_finite_observed, check_tensor, normalize_mask, normalize_timespans

Tensor = torch.Tensor


DT_INPUTS = ("linear", "log")


def _check_dt_input(dt_input: str) -> str:
    if dt_input not in DT_INPUTS:
        raise ValueError(f"dt_input must be one of {list(DT_INPUTS)}; got {dt_input!r}")
    return dt_input


def _prepare(layer: nn.Module, input: Tensor, timespans: float | Tensor | None, mask: Tensor | None):  # type: ignore[no-untyped-def]
    """Validate the input; return x (B, T, F+1) with dt (or log dt) appended, mask (B, T) or None,
    batched flag, and the elapsed times (B, T)."""
    x = check_tensor(input, "input")
    if x.dim() not in (2, 3):
        raise ValueError(f"input must be 3-D (B, T, F) or 2-D (T, F) unbatched; got shape {tuple(x.shape)}")
    if x.shape[-1] != layer.input_size:
        raise ValueError(
            f"input has {x.shape[-1]} features (last axis) but the layer expects input_size={layer.input_size}"
        )
    batched = x.dim() == 3
    if not batched:
        x = x.unsqueeze(0)
        if isinstance(timespans, torch.Tensor) and timespans.dim() >= 1:
            timespans = timespans.unsqueeze(0)
        if mask is not None:
            mask = check_tensor(mask, "mask").unsqueeze(0)
    B, T, _ = x.shape
    if T == 0:
        raise ValueError("input has 0 time steps; a sequence needs at least one step")
    m = normalize_mask(mask, B, T, True, x.device)
    x = check_finite_observed(x, "input", m)  # same NaN/Inf policy as LTC/CfC
    ts = normalize_timespans(timespans, B, T, True, x.dtype, x.device, m)  # (B, T, 1)
    feature = torch.log(ts) if layer.dt_input == "log" else ts
    return torch.cat([x, feature], dim=-1), m, batched, ts[..., 0]


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")


def _result(out: Tensor, m: Tensor | None, batched: bool, return_sequences: bool) -> Tensor:
    """The layer's output from the per-step outputs (B, T, H): zero at masked steps, all steps or the
    last observed one, without the batch axis for an unbatched input."""
    if m is not None:
        out = out * m.unsqueeze(-1).to(out.dtype)
    result = out if return_sequences else _last_observed(out, m)
    return result if batched else result[0]


def _is_prefix(m: Tensor) -> bool:
    """True when every row of the (B, T) mask is observed steps followed only by padding."""
    return bool((m.long().cummin(dim=1).values == m.long()).all())


def _last_observed(out: Tensor, m: Tensor | None) -> Tensor:
    """(B, T, H) -> (B, H): the output at each sample's last observed step (the last step if none)."""
    if m is None:
        return out[:, -1]
    T = out.shape[1]
    idx = torch.arange(T, device=out.device).expand_as(m)
    last = torch.where(m, idx, torch.zeros_like(idx)).max(dim=1).values  # (B,)
    return out[torch.arange(out.shape[0], device=out.device), last]


class _Baseline(nn.Module):
    """The calling convention of every baseline (that of the liquid layers): validate, append dt,
    run the subclass's ``_sequence`` over (B, T, F+1), then mask and pick the outputs."""

    input_size: int
    units: int
    dt_input: str
    return_sequences: bool

    @property
    def out_features(self) -> int:
        return self.units

    def forward(
        self,
        input: Tensor,
        hx: Any = None,
        timespans: float | Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, Any]:
        x, m, batched, ts = _prepare(self, input, timespans, mask)
        out, state = self._sequence(x, ts, m, hx)
        return _result(out, m, batched, self.return_sequences), state

    def _sequence(self, x: Tensor, ts: Tensor, m: Tensor | None, hx: Any) -> tuple[Tensor, Any]:
        """Per-step outputs (B, T, H) and the final state, from x (B, T, F+1), elapsed times (B, T)."""
        raise NotImplementedError


class _RecurrentBaseline(_Baseline):
    """Shared body of the LSTM and GRU baselines."""

    kind = ""

    def __init__(
        self,
        input_size: int,
        units: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        return_sequences: bool = True,
        dt_input: str = "linear",
    ) -> None:
        super().__init__()
        self.dt_input = _check_dt_input(dt_input)
        _check_sizes(input_size=input_size, units=units, num_layers=num_layers)
        self.input_size = input_size
        self.units = units
        self.num_layers = num_layers
        self.dropout = float(dropout)
        self.return_sequences = bool(return_sequences)
        rnn_cls = nn.LSTM if self.kind == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            input_size + 1,
            units,
            num_layers=num_layers,
            batch_first=True,
            dropout=self.dropout if num_layers > 1 else 0.0,
        )

    @property
    def state_size(self) -> int:
        return self.units * self.num_layers * (2 if self.kind == "lstm" else 1)

    def _sequence(self, x: Tensor, ts: Tensor, m: Tensor | None, hx: Any) -> tuple[Tensor, Any]:
        if m is None:
            out, state = self.rnn(x, hx)
        elif _is_prefix(m):
            # padding only at the end: packed sequences keep the padded tail out of the final state
            lengths = m.sum(dim=1).clamp(min=1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            packed_out, state = self.rnn(packed, hx)
            out, _ = nn.utils.rnn.pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
        else:
            outs = []
            state = hx
            for t in range(x.shape[1]):
                y, new = self.rnn(x[:, t : t + 1], state)
                keep = m[:, t]
                if state is None:
                    zero = tuple(torch.zeros_like(s) for s in new) if isinstance(new, tuple) else torch.zeros_like(new)
                    state = zero
                if isinstance(new, tuple):
                    state = tuple(torch.where(keep[None, :, None], n, s) for n, s in zip(new, state, strict=True))
                else:
                    state = torch.where(keep[None, :, None], new, state)
                outs.append(y[:, 0])
            out = torch.stack(outs, dim=1)
        return out, state

    @torch.no_grad()
    def step(self, x: Tensor, hx: Any, dt: Tensor) -> tuple[Tensor, Any]:
        """One step for streaming, like the liquid layers' ``step``: x (B, F), dt (B,) -> (output (B, H),
        state). Only shapes are checked (a stream's caller validates its readings once)."""
        if x.dim() != 2 or x.shape[-1] != self.input_size or dt.shape != x.shape[:1]:
            raise ValueError(
                f"step takes x (B, {self.input_size}) and dt (B,); got {tuple(x.shape)} and {tuple(dt.shape)}"
            )
        ts = dt.to(x.dtype)
        feature = torch.log(ts) if self.dt_input == "log" else ts
        out, state = self.rnn(torch.cat([x, feature[:, None]], dim=-1)[:, None], hx)
        return out[:, 0], state

    def get_config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "return_sequences": self.return_sequences,
            "dt_input": self.dt_input,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _RecurrentBaseline:
        return cls(**config)


class DtLSTM(_RecurrentBaseline):
    """``nn.LSTM`` baseline with the step's elapsed time appended to its input."""

    kind = "lstm"


class DtGRU(_RecurrentBaseline):
    """``nn.GRU`` baseline with the step's elapsed time appended to its input."""

    kind = "gru"


class DtTransformer(_Baseline):
    """A small causal Transformer encoder over the features plus dt, with one of two ways to see time.

    Attention is causal (step t sees steps <= t), so its per-step outputs are predictions from the
    past like an RNN's; masked steps are hidden from every query.

    - ``time_encoding="sinusoid"`` (default): the absolute time t = cumsum(dt) is encoded with
      sinusoids of geometric wavelengths and added to the token embedding; attention spans the whole
      sequence; no state is carried between calls.
    - ``time_encoding="alibi"``: an attention bias ``-slope_h * (t_query - t_key)`` per head (ALiBi,
      Press et al. 2022, over elapsed time instead of positions) inside a causal band of ``window``
      steps. The state returned is the last ``window - 1`` tokens with their times and validity, so a
      stream can be run in chunks (or one step at a time) with the state carried, as with an RNN.
      This is the maintenance risk model's Transformer.

    ``final_norm``: a LayerNorm after the encoder (the sinusoid default; the maintenance model has none).
    """

    def __init__(
        self,
        input_size: int,
        units: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
        return_sequences: bool = True,
        max_time: float = 1000.0,
        dt_input: str = "linear",
        time_encoding: str = "sinusoid",
        window: int | None = None,
        final_norm: bool = True,
    ) -> None:
        super().__init__()
        _check_sizes(input_size=input_size, units=units, num_layers=num_layers)
        if units % num_heads != 0 or units % 2 != 0:
            raise ValueError(f"units must be even and divisible by num_heads={num_heads}; got units={units}")
        if time_encoding not in ("sinusoid", "alibi"):
            raise ValueError(f"time_encoding must be 'sinusoid' or 'alibi'; got {time_encoding!r}")
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ValueError(f"window must be None or an integer >= 1; got {window!r}")
        if time_encoding == "alibi" and window is None:
            raise ValueError("time_encoding='alibi' needs a window (steps each query attends to)")
        self.input_size = input_size
        self.units = units
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.dim_feedforward = dim_feedforward or 2 * units
        self.dropout = float(dropout)
        self.return_sequences = bool(return_sequences)
        self.max_time = float(max_time)
        self.dt_input = _check_dt_input(dt_input)
        self.time_encoding = time_encoding
        self.window = window
        self.final_norm = bool(final_norm)
        self.embed = nn.Linear(input_size + 1, units)
        layer = nn.TransformerEncoderLayer(
            units, num_heads, self.dim_feedforward, self.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm: nn.Module = nn.LayerNorm(units) if self.final_norm else nn.Identity()
        freqs = torch.exp(-math.log(self.max_time) * torch.arange(0, units, 2, dtype=torch.float32) / units)
        self.time_freqs: Tensor
        self.slopes: Tensor
        self.register_buffer("time_freqs", freqs, persistent=False)
        # ALiBi slopes per head, geometric as in Press et al. 2022
        slopes = torch.tensor([2.0 ** (-(i + 1)) for i in range(num_heads)])
        self.register_buffer("slopes", slopes, persistent=False)

    @property
    def state_size(self) -> int:
        return 0

    def _sequence(self, x: Tensor, ts: Tensor, m: Tensor | None, hx: Any) -> tuple[Tensor, Any]:
        if self.time_encoding == "alibi":
            return self._alibi(x, ts, m, hx)
        return self._sinusoid(x, ts, m), None

    @torch.no_grad()
    def step(self, x: Tensor, hx: Any, dt: Tensor) -> tuple[Tensor, Any]:
        """One step for streaming (``time_encoding="alibi"`` only: the state is the attention window):
        x (B, F), dt (B,) -> (output (B, H), state). Only shapes are checked."""
        if self.time_encoding != "alibi":
            raise ValueError("step needs time_encoding='alibi' (the sinusoid encoder carries no state)")
        if x.dim() != 2 or x.shape[-1] != self.input_size or dt.shape != x.shape[:1]:
            raise ValueError(
                f"step takes x (B, {self.input_size}) and dt (B,); got {tuple(x.shape)} and {tuple(dt.shape)}"
            )
        ts = dt.to(x.dtype)[:, None]  # (B, 1)
        feature = torch.log(ts) if self.dt_input == "log" else ts
        out, state = self._alibi(torch.cat([x[:, None], feature[..., None]], dim=-1), ts, None, hx)
        return out[:, 0], state

    def _sinusoid(self, x: Tensor, dt: Tensor, m: Tensor | None) -> Tensor:
        B, T, _ = x.shape
        if m is not None:
            dt = dt * m.to(dt.dtype)
        t = dt.cumsum(dim=1).unsqueeze(-1)  # (B, T, 1)
        angles = t * self.time_freqs.to(x.dtype)  # (B, T, units/2)
        code = torch.cat([angles.sin(), angles.cos()], dim=-1)
        z = self.embed(x) + code
        idx = torch.arange(T, device=x.device)
        allowed = idx[None, :] <= idx[:, None]  # (T, T) causal: query row, key column
        allowed = allowed.unsqueeze(0).expand(B, T, T)
        if m is not None:
            allowed = allowed & (m.unsqueeze(1) | torch.eye(T, dtype=torch.bool, device=x.device).unsqueeze(0))
        attn = (~allowed).repeat_interleave(self.num_heads, dim=0)  # (B*heads, T, T), True = blocked
        return self.norm(self.encoder(z, mask=attn))  # type: ignore[no-any-return]

    def _alibi(self, zt: Tensor, ts: Tensor, m: Tensor | None, state: Any) -> tuple[Tensor, Any]:
        # state: (context tokens (B, W-1, F+1), their times (B, W-1), valid (B, W-1)) or None
        B, T, _ = zt.shape
        W = int(self.window or 1)
        new_valid = torch.ones(B, T, dtype=torch.bool, device=zt.device) if m is None else m
        t = torch.cumsum(ts, dim=1)  # (B, T) time of each step, in the caller's time unit
        if state is not None:
            cz, ct, cv = state
            t = t + ct[:, -1:]  # continue the clock of the context
            zt_all = torch.cat([cz, zt], dim=1)
            t_all = torch.cat([ct, t], dim=1)
            valid = torch.cat([cv, new_valid], dim=1)
        else:
            zt_all, t_all, valid = zt, t, new_valid
        S = zt_all.shape[1]
        q = torch.arange(S - T, S, device=zt.device)  # query positions
        k = torch.arange(S, device=zt.device)
        band = (k[None, :] <= q[:, None]) & (k[None, :] > q[:, None] - W)  # (T, S)
        allowed = band[None] & (valid[:, None, :] | (k[None, :] == q[:, None])[None])  # (B, T, S)
        gap = t_all[:, S - T :, None] - t_all[:, None, :]  # (B, T, S) elapsed time query - key
        bias = -self.slopes.to(zt.dtype)[None, :, None, None] * gap.clamp(min=0)[:, None]  # (B, H, T, S)
        bias = bias.masked_fill(~allowed[:, None], float("-inf"))
        h = self.embed(zt_all)
        # the encoder attends from all S positions; only the last T (the queries) are kept
        full_bias = torch.zeros(B, self.num_heads, S, S, dtype=h.dtype, device=h.device)
        full_bias[:, :, S - T :, :] = bias
        if S > T:  # context rows attend to themselves only (their outputs are dropped)
            eye = torch.eye(S - T, S, dtype=torch.bool, device=h.device)
            full_bias[:, :, : S - T, :] = torch.where(eye, 0.0, float("-inf"))
        src_mask = full_bias.reshape(B * self.num_heads, S, S)
        for layer in self.encoder.layers:
            h = layer(h, src_mask=src_mask)
        out = self.norm(h[:, S - T :])
        keep = min(W - 1, S)
        return out, (zt_all[:, S - keep :], t_all[:, S - keep :], valid[:, S - keep :])

    def get_config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "units": self.units,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "dim_feedforward": self.dim_feedforward,
            "dropout": self.dropout,
            "return_sequences": self.return_sequences,
            "max_time": self.max_time,
            "dt_input": self.dt_input,
            "time_encoding": self.time_encoding,
            "window": self.window,
            "final_norm": self.final_norm,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DtTransformer:
        return cls(**config)
