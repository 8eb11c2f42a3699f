"""Parameter counts that tell dense and wired models apart."""

from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module, effective: bool = True) -> int:
    """Trainable parameters of ``module``; with ``effective`` (the default), less the entries a
    wiring fixes at zero.

    A wired layer (NCP / AutoNCP, any sparse :class:`~liquidflow.wirings.Wiring`) keeps dense
    weight tensors and multiplies them by its ``sparsity_mask`` buffers, so the entries where the
    mask is zero never act and never learn: they are storage, not parameters. Inside a module that
    holds a ``sparsity_mask`` (and, for LTC, a ``sensory_sparsity_mask``), every parameter of the
    mask's shape loses the mask's zeros: names starting with ``sensory_`` against the sensory mask,
    the others against the recurrent one. ``effective=False`` counts every trainable entry (what
    ``sum(p.numel())`` gives).
    """
    params = [p for p in module.parameters() if p.requires_grad]
    total = sum(int(p.numel()) for p in params)
    if not effective:
        return total
    zeros = 0
    for sub in module.modules():
        masks = {n: b for n, b in sub.named_buffers(recurse=False) if n.endswith("sparsity_mask")}
        if not masks:
            continue
        for name, p in sub.named_parameters():
            if not p.requires_grad:
                continue
            key = "sensory_sparsity_mask" if name.rsplit(".", 1)[-1].startswith("sensory_") else "sparsity_mask"
            mask = masks.get(key)
            if mask is not None and tuple(mask.shape) == tuple(p.shape):
                zeros += int((mask == 0).sum().item())
    return total - zeros
