"""LTC sequence kernels in C (liquidflow._native, ``ltc.c``): dense and edge-list, forward and backward.

Placeholder: returns None (the torch kernels of ``_fused`` run) until the C kernels land."""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def dense(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
          sigma: Tensor, sm: Tensor) -> Tensor | None:  # fmt: skip
    """States (T, B, N) as ``_fused.ltc_semi_implicit``, or None where the C kernel does not apply."""
    return None


def sparse(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
           sigma: Tensor, sm: Tensor, src: Tensor, dst: Tensor) -> Tensor | None:  # fmt: skip
    """States (T, B, N) as ``_fused.ltc_sparse``, or None where the C kernel does not apply."""
    return None
