"""LTC sequence kernels in C (liquidflow._native, ``ltc.c``): dense and edge-list, forward and backward.

Same inputs, outputs and gradients as ``_fused._LTCSemiImplicit`` / ``_fused._LTCSparse`` (see there
and ``ltc_impl.h`` for the equations). The whole sequence — time steps, unfolds and batch rows —
runs in one C call per direction, with no torch call inside the loops; batch rows are split over
OpenMP threads. Outputs and the saved potentials / denominators are allocated here with torch.

:func:`dense` and :func:`sparse` return None wherever the C kernel does not apply (library not
built or switched off, not CPU, not float32/float64, unexpected shapes); the torch kernels then run.
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch

from .. import _native

Tensor = torch.Tensor
_P, _I64, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
_SFX = {torch.float32: "f32", torch.float64: "f64"}

# Batch rows are split over threads when one call does at least this many synapse evaluations
# (T·B·unfolds·synapses): an OpenMP fork/join costs a few µs, a synapse evaluation about 1 ns.
_THREADS_FROM = 200_000


def _signatures(lib: ctypes.CDLL) -> ctypes.CDLL:
    dims4 = [_I64] * 4
    for sfx in _SFX.values():
        # (T, B, N, L, base, C, keep, h0, w, we, sigma, sm, S, V, D, nt)
        getattr(lib, f"lf_ltc_dense_fwd_{sfx}").argtypes = [*dims4] + [_P] * 11 + [_INT]
        # (T, B, N, L, C, keep, w, we, sigma, sm, V, D, gS, gbase, gC, gh0, gw, gwe, gsig, gsm, need_w, nt)
        getattr(lib, f"lf_ltc_dense_bwd_{sfx}").argtypes = [*dims4] + [_P] * 16 + [_INT, _INT]
        # (T, B, N, L, E, base, C, keep, h0, w, we, sigma, sm, src, dst, S, V, D, nt)
        getattr(lib, f"lf_ltc_sparse_fwd_{sfx}").argtypes = [*dims4, _I64] + [_P] * 13 + [_INT]
        # (T, B, N, L, E, C, keep, w, we, sigma, sm, src, dst, V, D, gS, gbase, gC, gh0, gw, gwe, gsig, gsm, ...)
        getattr(lib, f"lf_ltc_sparse_bwd_{sfx}").argtypes = [*dims4, _I64] + [_P] * 18 + [_INT, _INT]
        getattr(lib, f"lf_ltc_lanes_{sfx}").argtypes = []
        getattr(lib, f"lf_ltc_lanes_{sfx}").restype = _INT
        # (R, I, N, x, leak, sw, swe, ssig, ssm, base, nt)
        getattr(lib, f"lf_ltc_sensory_fwd_{sfx}").argtypes = [_I64] * 3 + [_P] * 7 + [_INT]
        # (R, I, N, x, sw, swe, ssig, ssm, gbase, gx, gleak, gsw, gswe, gssig, gssm, need_w, nt)
        getattr(lib, f"lf_ltc_sensory_bwd_{sfx}").argtypes = [_I64] * 3 + [_P] * 12 + [_INT, _INT]
        for kind in ("dense_fwd", "dense_bwd", "sparse_fwd", "sparse_bwd", "sensory_fwd", "sensory_bwd"):
            getattr(lib, f"lf_ltc_{kind}_{sfx}").restype = _INT
    return lib


_typed: set[int] = set()  # the libraries whose signatures are set


def _lib() -> ctypes.CDLL | None:
    lib = _native.load("ltc")
    if lib is not None and id(lib) not in _typed:
        _signatures(lib)
        _typed.add(id(lib))
    return lib


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _threads(batch: int, work: int) -> int:
    return max(1, min(torch.get_num_threads(), batch)) if work >= _THREADS_FROM else 1


def _check(rc: int) -> None:
    if rc != 0:
        raise MemoryError("liquidflow's native LTC kernel could not allocate its scratch memory")


_Inputs = tuple[Tensor, Tensor, "Tensor | None", Tensor, Tensor, Tensor, Tensor, Tensor]


def _prepare(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor,
             tables: list[Tensor], table_shape: tuple[int, ...]) -> _Inputs | None:  # fmt: skip
    """Contiguous inputs (keep as bytes), or None where the C kernel does not apply."""
    dtype = base.dtype
    if dtype not in _SFX or base.dim() != 4 or base.shape[2] != 2:
        return None
    T, B, _, N = base.shape
    if not isinstance(unfolds, int) or unfolds < 1 or T == 0 or B == 0:
        return None
    for t in (base, C, h0, *tables):
        if t.device.type != "cpu" or t.dtype != dtype:
            return None
    if tuple(C.shape) != (T, B, N) or tuple(h0.shape) != (B, N):
        return None
    if any(tuple(t.shape) != table_shape for t in tables):
        return None
    if keep is not None:
        if keep.device.type != "cpu" or keep.dtype != torch.bool or keep.numel() != T * B:
            return None
        keep = keep.reshape(T, B).contiguous()
    w, we, sigma, sm = (t.contiguous() for t in tables)
    return base.contiguous(), C.contiguous(), keep, h0.contiguous(), w, we, sigma, sm


# ================================================================================================ dense
def _dense_forward(lib: ctypes.CDLL, unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor,
                   w: Tensor, we: Tensor, sigma: Tensor, sm: Tensor,
                   save: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    T, B, _, N = base.shape
    L = unfolds
    S = base.new_empty(T, B, N)
    V = base.new_empty(B, T, L + 1, N) if save else None  # v before each unfold and after the last
    D = base.new_empty(B, T, L, N) if save else None  # the denominator of each unfold
    nt = _threads(B, T * B * L * N * N)
    fn = getattr(lib, f"lf_ltc_dense_fwd_{_SFX[base.dtype]}")
    _check(fn(T, B, N, L, *map(_ptr, (base, C, keep, h0, w, we, sigma, sm, S, V, D)), nt))
    return S, V, D


class _NativeLTCDense(torch.autograd.Function):
    """``_fused._LTCSemiImplicit`` with the forward and backward loops in C."""

    @staticmethod
    def forward(ctx: Any, lib: ctypes.CDLL, unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None,
                h0: Tensor, w: Tensor, we: Tensor, sigma: Tensor, sm: Tensor) -> Tensor:  # fmt: skip
        save = any(ctx.needs_input_grad)
        S, V, D = _dense_forward(lib, unfolds, base, C, keep, h0, w, we, sigma, sm, save)
        if save:
            ctx.unfolds, ctx.lib = unfolds, lib  # the library of the forward pass, even if switched off since
            ctx.save_for_backward(C, keep, w, we, sigma, sm, V, D)
        return S

    @staticmethod
    def backward(ctx: Any, gS: Tensor) -> tuple[Tensor | None, ...]:
        from ._fused import _refuse_double_backward

        _refuse_double_backward()
        C, keep, w, we, sigma, sm, V, D = ctx.saved_tensors
        L = ctx.unfolds
        T, B, N = C.shape
        gS = gS.contiguous()
        gbase, gC, gh0 = C.new_empty(T, B, 2, N), C.new_empty(T, B, N), C.new_empty(B, N)
        gw, gwe, gsig, gsm = (C.new_empty(N, N) for _ in range(4))
        need_w = any(ctx.needs_input_grad[5:9])
        lib = ctx.lib
        fn = getattr(lib, f"lf_ltc_dense_bwd_{_SFX[C.dtype]}")
        nt = _threads(B, T * B * L * N * N)
        args = (C, keep, w, we, sigma, sm, V, D, gS, gbase, gC, gh0, gw, gwe, gsig, gsm)
        _check(fn(T, B, N, L, *map(_ptr, args), int(need_w), nt))
        if not need_w:
            gw = gwe = gsig = gsm = None  # type: ignore[assignment]
        return (None, None, gbase, gC, None, gh0, gw, gwe, gsig, gsm)


def dense(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
          sigma: Tensor, sm: Tensor) -> Tensor | None:  # fmt: skip
    """States (T, B, N) as ``_fused.ltc_semi_implicit``, or None where the C kernel does not apply."""
    lib = _lib()
    if lib is None:
        return None
    N = base.shape[-1] if base.dim() == 4 else -1
    args = _prepare(unfolds, base, C, keep, h0, [w, we, sigma, sm], (N, N))
    if args is None:
        return None
    if not torch.is_grad_enabled():
        return _dense_forward(lib, unfolds, *args, False)[0]
    return _NativeLTCDense.apply(lib, unfolds, *args)  # type: ignore[no-any-return]


# ================================================================================================ sparse
def _sparse_forward(lib: ctypes.CDLL, unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor,
                    w: Tensor, we: Tensor, sigma: Tensor, sm: Tensor, src: Tensor, dst: Tensor,
                    save: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    T, B, _, N = base.shape
    L, E = unfolds, src.numel()
    S = base.new_empty(T, B, N)
    W = getattr(lib, f"lf_ltc_lanes_{_SFX[base.dtype]}")()  # batch rows per vector
    nblk = -(-B // W)
    V = base.new_empty(nblk, T, L + 1, N, W) if save else None  # blocks of W rows, held transposed
    D = base.new_empty(nblk, T, L, N, W) if save else None
    nt = _threads(nblk, T * B * L * E)
    fn = getattr(lib, f"lf_ltc_sparse_fwd_{_SFX[base.dtype]}")
    _check(fn(T, B, N, L, E, *map(_ptr, (base, C, keep, h0, w, we, sigma, sm, src, dst, S, V, D)), nt))
    return S, V, D


class _NativeLTCSparse(torch.autograd.Function):
    """``_fused._LTCSparse`` with the forward and backward loops in C."""

    @staticmethod
    def forward(ctx: Any, lib: ctypes.CDLL, unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None,
                h0: Tensor, w: Tensor, we: Tensor, sigma: Tensor, sm: Tensor, src: Tensor,
                dst: Tensor) -> Tensor:  # fmt: skip
        save = any(ctx.needs_input_grad)
        S, V, D = _sparse_forward(lib, unfolds, base, C, keep, h0, w, we, sigma, sm, src, dst, save)
        if save:
            ctx.unfolds, ctx.lib = unfolds, lib  # the library of the forward pass, even if switched off since
            ctx.save_for_backward(C, keep, w, we, sigma, sm, src, dst, V, D)
        return S

    @staticmethod
    def backward(ctx: Any, gS: Tensor) -> tuple[Tensor | None, ...]:
        from ._fused import _refuse_double_backward

        _refuse_double_backward()
        C, keep, w, we, sigma, sm, src, dst, V, D = ctx.saved_tensors
        L = ctx.unfolds
        T, B, N = C.shape
        E = src.numel()
        gS = gS.contiguous()
        gbase, gC, gh0 = C.new_empty(T, B, 2, N), C.new_empty(T, B, N), C.new_empty(B, N)
        gw, gwe, gsig, gsm = (C.new_empty(E) for _ in range(4))
        need_w = any(ctx.needs_input_grad[5:9])
        lib = ctx.lib
        fn = getattr(lib, f"lf_ltc_sparse_bwd_{_SFX[C.dtype]}")
        nt = _threads(V.shape[0], T * B * L * E)
        args = (C, keep, w, we, sigma, sm, src, dst, V, D, gS, gbase, gC, gh0, gw, gwe, gsig, gsm)
        _check(fn(T, B, N, L, E, *map(_ptr, args), int(need_w), nt))
        if not need_w:
            gw = gwe = gsig = gsm = None  # type: ignore[assignment]
        return (None, None, gbase, gC, None, gh0, gw, gwe, gsig, gsm, None, None)


def sparse(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
           sigma: Tensor, sm: Tensor, src: Tensor, dst: Tensor) -> Tensor | None:  # fmt: skip
    """States (T, B, N) as ``_fused.ltc_sparse``, or None where the C kernel does not apply."""
    lib = _lib()
    if lib is None:
        return None
    N = base.shape[-1] if base.dim() == 4 else -1
    E = src.numel()
    args = _prepare(unfolds, base, C, keep, h0, [w, we, sigma, sm], (E,))
    if args is None:
        return None
    if src.dtype != torch.int64 or dst.dtype != torch.int64 or src.shape != (E,) or dst.shape != (E,):
        return None
    if src.device.type != "cpu" or dst.device.type != "cpu":
        return None
    if E and (int(src.min()) < 0 or int(src.max()) >= N or int(dst.min()) < 0 or int(dst.max()) >= N):
        return None  # out-of-range indices: let torch raise its error
    if not torch.is_grad_enabled():
        return _sparse_forward(lib, unfolds, *args, src.contiguous(), dst.contiguous(), False)[0]
    out = _NativeLTCSparse.apply(lib, unfolds, *args, src.contiguous(), dst.contiguous())
    return out  # type: ignore[no-any-return]


# ================================================================================================ sensory
class _NativeSensory(torch.autograd.Function):
    """The sensory synapses and the leak of all steps at once: ``base`` (T, B, 2, N) of :func:`dense`."""

    @staticmethod
    def forward(ctx: Any, lib: ctypes.CDLL, x: Tensor, leak: Tensor, sw: Tensor, swe: Tensor, ssig: Tensor,
                ssm: Tensor) -> Tensor:  # fmt: skip
        T, B, I = x.shape
        N = leak.shape[1]
        base = x.new_empty(T, B, 2, N)
        fn = getattr(lib, f"lf_ltc_sensory_fwd_{_SFX[x.dtype]}")
        _check(fn(T * B, I, N, *map(_ptr, (x, leak, sw, swe, ssig, ssm, base)), _threads(T * B, T * B * I * N)))
        if any(ctx.needs_input_grad):
            ctx.lib = lib
            ctx.save_for_backward(x, sw, swe, ssig, ssm)
        return base

    @staticmethod
    def backward(ctx: Any, gbase: Tensor) -> tuple[Tensor | None, ...]:
        from ._fused import _refuse_double_backward

        _refuse_double_backward()
        x, sw, swe, ssig, ssm = ctx.saved_tensors
        T, B, I = x.shape
        N = sw.shape[1]
        gbase = gbase.contiguous()
        gx = x.new_empty(T, B, I) if ctx.needs_input_grad[1] else None
        gleak = x.new_empty(2, N)
        gsw, gswe, gssig, gssm = (x.new_empty(I, N) for _ in range(4))
        need_w = any(ctx.needs_input_grad[3:7])
        fn = getattr(ctx.lib, f"lf_ltc_sensory_bwd_{_SFX[x.dtype]}")
        args = (x, sw, swe, ssig, ssm, gbase, gx, gleak, gsw, gswe, gssig, gssm)
        _check(fn(T * B, I, N, *map(_ptr, args), int(need_w), _threads(T * B, T * B * I * N)))
        if not need_w:
            gsw = gswe = gssig = gssm = None  # type: ignore[assignment]
        return (None, gx, gleak, gsw, gswe, gssig, gssm)


def sensory(x: Tensor, leak: Tensor, sw: Tensor, swe: Tensor, ssig: Tensor, ssm: Tensor) -> Tensor | None:
    """``base`` (T, B, 2, N) = leak + [sum_i s_ij swe_ij, sum_i s_ij sw_ij], s = sigmoid(ssig x_i - ssm).

    x (T, B, I): the mapped inputs; leak (2, N); tables (I, N) (``sw`` masked, ``swe`` = sw E,
    ``ssm`` = ssig mu). The same as ``LTCCell.precompute(x) + leak``, or None where the C kernel
    does not apply."""
    lib = _lib()
    if lib is None or x.dim() != 3 or leak.dim() != 2 or leak.shape[0] != 2:
        return None
    dtype = x.dtype
    T, B, I = x.shape
    N = leak.shape[1]
    if dtype not in _SFX or T == 0 or B == 0:
        return None
    for t in (x, leak, sw, swe, ssig, ssm):
        if t.device.type != "cpu" or t.dtype != dtype:
            return None
    if any(tuple(t.shape) != (I, N) for t in (sw, swe, ssig, ssm)):
        return None
    args = [t.contiguous() for t in (x, leak, sw, swe, ssig, ssm)]
    return _NativeSensory.apply(lib, *args)  # type: ignore[no-any-return]
