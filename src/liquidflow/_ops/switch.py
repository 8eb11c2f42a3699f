"""Whether the sequence kernels (C and fused torch) may run now, and the guard their backward passes share.

:func:`use_fused` switches every kernel off (tests compare the paths); tracing, scripting, ONNX export
and ``torch.compile`` need plain ops, so no kernel runs under them either (:func:`off_reason`).
:class:`ForcedPath` holds the path a front end's ``use_path`` forces (each front end has its own).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

_ENABLED = True
PATHS = ("native", "fused", "loop")


class ForcedPath:
    """The path a front end's calls are forced onto (:attr:`path`; None: its dispatcher chooses)."""

    def __init__(self) -> None:
        self.path: str | None = None

    @contextlib.contextmanager
    def forcing(self, path: str | None) -> Iterator[None]:
        """Force ``path`` (one of :data:`PATHS`, or None) inside a ``with`` block."""
        if path is not None and path not in PATHS:
            raise ValueError(f"path must be one of {PATHS} or None; got {path!r}")
        old, self.path = self.path, path
        try:
            yield
        finally:
            self.path = old


@contextlib.contextmanager
def use_fused(enabled: bool = True) -> Iterator[None]:
    """Turn the fused kernels on or off inside a ``with`` block (tests compare both paths)."""
    global _ENABLED
    old, _ENABLED = _ENABLED, bool(enabled)
    try:
        yield
    finally:
        _ENABLED = old


def fused_enabled() -> bool:
    """True unless switched off, or while tracing / exporting / compiling (those need plain ops)."""
    return off_reason() is None


def off_reason() -> str | None:
    """Why no kernel (C or fused torch) may run now: switched off, or a tracer that needs plain ops."""
    if not _ENABLED:
        return "kernels switched off (use_fused(False))"
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return "TorchScript tracing/scripting records plain ops"
    if _in_onnx_export():
        return "ONNX export records plain ops"
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and compiler.is_compiling():
        return "torch.compile traces plain ops"
    return None


_ONNX_FLAGS: tuple[Any, ...] | None = None


def _in_onnx_export() -> bool:
    """``torch.onnx.is_in_onnx_export()`` without its per-call imports (~0.9 µs of a ~10 µs step)."""
    global _ONNX_FLAGS
    if _ONNX_FLAGS is None:
        try:  # the two flags torch.onnx.is_in_onnx_export reads (torch 2.13)
            from torch.onnx._internal.exporter import _flags
            from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

            _ONNX_FLAGS = (_flags, GLOBALS)
        except (ImportError, AttributeError):
            _ONNX_FLAGS = ()
    if len(_ONNX_FLAGS) != 2:
        return bool(torch.onnx.is_in_onnx_export())
    flags, glob = _ONNX_FLAGS
    return bool(glob.in_onnx_export or flags._is_onnx_exporting)


def refuse_double_backward() -> None:
    # backward runs with grad mode on only under create_graph=True: the hand-written adjoint is not
    # itself differentiable, so say so instead of returning wrong second derivatives
    if torch.is_grad_enabled():
        raise RuntimeError(
            "double backward (create_graph=True) through liquidflow's fused sequence kernel is not supported; "
            "run the layer inside `with liquidflow.torch.use_path('loop'):` for higher-order gradients"
        )
