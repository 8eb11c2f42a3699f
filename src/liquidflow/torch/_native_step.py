"""Streaming ``layer.step`` in C (liquidflow._native, ``step.c``): one whole step, no torch calls.

Placeholder: returns None (the torch fast step runs) until the C kernels land."""

from __future__ import annotations

from typing import Any

import torch

Tensor = torch.Tensor


def step(layer: Any, input: Any, hx: Any, dt: Any) -> tuple[Tensor, Any] | None:
    """``layer.step(input, hx, dt)`` in C with gradients off, or None where it does not apply."""
    return None
