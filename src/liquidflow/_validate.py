"""Input checks shared by every torch layer (liquidflow.torch and the training baselines): errors name
the argument, what came, what is allowed."""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def check_tensor(value: object, name: str) -> Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(value).__name__}")
    return value


def check_float_dtype(x: Tensor, name: str, dtype: torch.dtype) -> None:
    if x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the module's parameters are {dtype}; "
            f"convert one of them (e.g. module.to({dtype}) or {name}.to({dtype}))"
        )


def check_device(x: Tensor, name: str, device: torch.device) -> None:
    if x.device.type != device.type or (
        device.index is not None and x.device.index is not None and x.device.index != device.index
    ):
        raise ValueError(f"{name} is on {x.device} but the module is on {device}; move one of them")


def check_finite(x: Tensor, name: str) -> None:
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise ValueError(f"{name} contains NaN or Inf (first at index {tuple(bad)}); clean or mask the input")


def check_finite_observed(x: Tensor, name: str, mask: Tensor | None) -> Tensor:
    """NaN/Inf policy of every layer: a non-finite value at an observed step raises a ValueError naming
    ``name`` and the (batch, step, feature) where it is; values at masked steps (``mask`` False) are
    ignored and replaced by 0, so passing ``mask=False`` where a reading is missing is how to skip it.

    ``x`` is (B, T, F) batch-major and ``mask`` (B, T) or None. Returns ``x`` (a copy only when
    masked steps held non-finite values).
    """
    finite = torch.isfinite(x)
    if bool(finite.all()):
        return x
    bad = ~finite if mask is None else ~finite & mask.unsqueeze(-1)
    if bool(bad.any()):
        b, t, f = bad.nonzero()[0].tolist()
        raise ValueError(
            f"{name} contains {x[b, t, f].item()} at batch {b}, step {t}, feature {f}; NaN/Inf inputs are not "
            "allowed at observed steps (fill them, or set mask=False at those steps to skip them)"
        )
    return torch.where(finite, x, torch.zeros_like(x))


def normalize_timespans(
    timespans: float | Tensor | None,
    batch: int,
    time: int,
    batch_first: bool,
    dtype: torch.dtype,
    device: torch.device,
    mask: Tensor | None,
) -> Tensor:
    """Return elapsed times as a (B, T, 1) tensor (batch-major) and check they are positive.

    Accepted: None (1.0), a positive float, or a tensor of shape (B, T) / (B, T, 1) — (T, B) /
    (T, B, 1) when ``batch_first=False``. Steps where ``mask`` is False are not checked (padding).
    """
    if timespans is None:
        return torch.ones(batch, time, 1, dtype=dtype, device=device)
    if isinstance(timespans, (int, float)) and not isinstance(timespans, bool):
        value = float(timespans)
        if not (value > 0.0 and value < float("inf")):
            raise ValueError(f"timespans must be a positive finite number; got {timespans}")
        return torch.full((batch, time, 1), value, dtype=dtype, device=device)
    ts = check_tensor(timespans, "timespans")
    if not ts.is_floating_point():
        ts = ts.to(dtype)
    if ts.dim() == 0:
        return normalize_timespans(float(ts), batch, time, batch_first, dtype, device, mask)
    expected = (batch, time) if batch_first else (time, batch)
    if ts.dim() == 3 and ts.shape[-1] == 1:
        ts = ts[..., 0]
    if tuple(ts.shape) != expected:
        layout = "(B, T) or (B, T, 1)" if batch_first else "(T, B) or (T, B, 1)"
        raise ValueError(
            f"timespans must have shape {layout} = {expected} (per sample and step) or be a float; "
            f"got shape {tuple(ts.shape)}"
        )
    if not batch_first:
        ts = ts.transpose(0, 1)
    ts = ts.to(device=device, dtype=dtype)
    observed = torch.ones_like(ts, dtype=torch.bool) if mask is None else mask
    bad = observed & ~(ts > 0) | observed & ~torch.isfinite(ts)
    if bad.any():
        b, t = bad.nonzero()[0].tolist()
        raise ValueError(
            f"timespans must be positive and finite; got {ts[b, t].item():.6g} at batch {b}, step {t} "
            f"(min over observed steps {ts[observed].min().item():.6g})"
        )
    # padded (masked) steps may hold any value; give them a harmless dt so nothing becomes NaN
    if mask is not None:
        ts = torch.where(mask, ts, torch.ones_like(ts))
    return ts.unsqueeze(-1)


def normalize_mask(
    mask: Tensor | None, batch: int, time: int, batch_first: bool, device: torch.device
) -> Tensor | None:
    """Return a (B, T) bool mask (batch-major) or None."""
    if mask is None:
        return None
    m = check_tensor(mask, "mask")
    expected = (batch, time) if batch_first else (time, batch)
    if m.dim() == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    if tuple(m.shape) != expected:
        layout = "(B, T)" if batch_first else "(T, B)"
        raise ValueError(f"mask must have shape {layout} = {expected}; got {tuple(m.shape)}")
    if m.dtype != torch.bool:
        if m.is_floating_point() and not ((m == 0) | (m == 1)).all():
            raise ValueError("mask must be boolean (or 0/1); got other values")
        m = m != 0
    if not batch_first:
        m = m.transpose(0, 1)
    return m.to(device)
