"""Baseline sequence layers behind the LTC/CfC interface, each given dt as an extra input channel.

``forward(input (B, T, F), hx=None, timespans=None | float | (B, T) | (B, T, 1), mask=None | (B, T))
-> (output, state)``, exactly like :class:`liquidflow.torch.CfC`: output (B, T, H) with
``return_sequences=True`` (zero at masked steps) or (B, H), the output at the last observed step.
The elapsed time of each step is appended to the input features, so an LSTM, GRU or Transformer
sees the same timing information an LTC/CfC integrates over: the comparison is fair.

At masked (unobserved) steps the recurrent baselines carry their state unchanged, like LTC/CfC.
When the mask only pads the end of each sequence (the usual case) the fused cuDNN-style kernels run
over the whole sequence; otherwise the recurrence runs step by step so the state can be held.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..torch._validate import check_finite_observed, check_tensor, normalize_mask, normalize_timespans

Tensor = torch.Tensor


def _prepare(layer: nn.Module, input: Tensor, timespans: float | Tensor | None, mask: Tensor | None):  # type: ignore[no-untyped-def]
    """Validate the input; return x (B, T, F+1) with dt appended, mask (B, T) or None, batched flag."""
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
    return torch.cat([x, ts], dim=-1), m, batched


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


class _RecurrentBaseline(nn.Module):
    """Shared body of the LSTM and GRU baselines."""

    kind = ""

    def __init__(
        self, input_size: int, units: int, num_layers: int = 1, dropout: float = 0.0, return_sequences: bool = True
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("units", units), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
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
        x, m, batched = _prepare(self, input, timespans, mask)
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
        if m is not None:
            out = out * m.unsqueeze(-1).to(out.dtype)
        result = out if self.return_sequences else _last_observed(out, m)
        if not batched:
            result = result[0]
        return result, state

    def get_config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "return_sequences": self.return_sequences,
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


class DtTransformer(nn.Module):
    """A small causal Transformer encoder; input = features + dt, plus a sinusoidal code of the time.

    Attention is causal (step t sees steps <= t), so its per-step outputs are predictions from the
    past like an RNN's; masked steps are hidden from every query. The absolute time t = cumsum(dt)
    is encoded with sinusoids of geometric wavelengths and added to the token embedding.
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
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("units", units), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        if units % num_heads != 0 or units % 2 != 0:
            raise ValueError(f"units must be even and divisible by num_heads={num_heads}; got units={units}")
        self.input_size = input_size
        self.units = units
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.dim_feedforward = dim_feedforward or 2 * units
        self.dropout = float(dropout)
        self.return_sequences = bool(return_sequences)
        self.max_time = float(max_time)
        self.embed = nn.Linear(input_size + 1, units)
        layer = nn.TransformerEncoderLayer(
            units, num_heads, self.dim_feedforward, self.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(units)
        freqs = torch.exp(-math.log(self.max_time) * torch.arange(0, units, 2, dtype=torch.float32) / units)
        self.register_buffer("time_freqs", freqs, persistent=False)

    @property
    def state_size(self) -> int:
        return 0

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
        x, m, batched = _prepare(self, input, timespans, mask)
        B, T, _ = x.shape
        dt = x[..., -1]
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
        out = self.norm(self.encoder(z, mask=attn))
        if m is not None:
            out = out * m.unsqueeze(-1).to(out.dtype)
        result = out if self.return_sequences else _last_observed(out, m)
        if not batched:
            result = result[0]
        return result, None

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
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DtTransformer:
        return cls(**config)
