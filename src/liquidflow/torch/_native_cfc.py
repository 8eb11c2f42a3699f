"""CfC chain kernels in C (liquidflow._native, ``cfc.c``): forward and backward over a whole sequence.

Placeholder: returns None (the torch kernels of ``_fused`` run) until the C kernels land."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ._fused import CfCLayerSpec

Tensor = torch.Tensor


def chain(specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
          params: list[list[Tensor | None]]) -> Tensor | None:  # fmt: skip
    """States (T, B, N) as ``_fused.cfc_chain``, or None where the C kernel does not apply."""
    return None
