"""LTC sequence kernels in C (liquidflow._native, ``ltc.c``): dense and edge-list, forward and backward.

Same inputs, outputs and gradients as ``_fused._LTCSemiImplicit`` / ``_fused._LTCSparse`` (see there
and ``ltc_impl.h`` for the equations). With a Butcher ``tableau`` (an explicit solver: euler,
midpoint, heun, rk4 or any other explicit method) the same kernels run
``v' = v + sum_s b_s K_s``, ``K_s = (num(u_s) - den(u_s) u_s) / c`` instead of the semi-implicit
step; ``base`` then holds no epsilon. The whole sequence — time steps, unfolds and batch rows —
runs in one C call per direction, with no torch call inside the loops; batch rows are split over
OpenMP threads. Outputs and the saved potentials / denominators are allocated here with torch.

Each call hands C one struct (:class:`~.native_abi.LfLtcSeq`, :class:`~.native_abi.LfLtcSensory`;
``lf_abi.h``). :func:`why_not_dense`, :func:`why_not_sparse` and :func:`why_not_sensory` say why the
C kernel does not apply to a call (library switched off or not built, not CPU, not float32/float64,
unexpected shapes), or None when it does; :func:`dense`, :func:`sparse` and :func:`sensory` then
return None and the torch kernels run.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

import torch

from .. import _native
from .._spec import ButcherTableau
from . import native_abi as abi
from .switch import refuse_double_backward

Tensor = torch.Tensor
_INT = ctypes.c_int
_SFX = {torch.float32: "f32", torch.float64: "f64"}

# Batch rows are split over threads when one call does at least this many synapse evaluations
# (T·B·unfolds·synapses): an OpenMP fork/join costs a few µs, a synapse evaluation about 1 ns.
_THREADS_FROM = 200_000


def _setup(lib: ctypes.CDLL) -> None:
    seq, sens = ctypes.POINTER(abi.LfLtcSeq), ctypes.POINTER(abi.LfLtcSensory)
    for sfx in _SFX.values():
        for kind, arg in (("dense", seq), ("sparse", seq), ("sensory", sens)):
            for direction in ("fwd", "bwd"):
                fn = getattr(lib, f"lf_ltc_{kind}_{direction}_{sfx}")
                fn.argtypes, fn.restype = [arg], _INT
        getattr(lib, f"lf_ltc_lanes_{sfx}").argtypes = []
        getattr(lib, f"lf_ltc_lanes_{sfx}").restype = _INT


_LIB = abi.KernelLibrary("ltc", abi.LTC_ABI_VERSION, abi.LTC_STRUCTS, _setup)


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _threads(batch: int, work: int) -> int:
    return max(1, min(torch.get_num_threads(), batch)) if work >= _THREADS_FROM else 1


@functools.lru_cache(maxsize=32)
def _rk_tables(tableau: ButcherTableau) -> tuple[Tensor, Tensor]:
    """The tableau as the C kernels read it: a (S, S) row-major and b (S), float64."""
    S = tableau.stages
    a = torch.zeros(S, S, dtype=torch.float64)
    for i, row in enumerate(tableau.a):
        for j, coef in enumerate(row):
            a[i, j] = coef
    return a, torch.tensor(tableau.b, dtype=torch.float64)


def _set_solver(a: abi.LfLtcSeq, tableau: ButcherTableau | None) -> int:
    """Put the solver into a call's struct; returns the stages per unfold (1 for the semi-implicit step)."""
    if tableau is None:
        return 1
    A, b = _rk_tables(tableau)
    a.stages, a.rk_a, a.rk_b = tableau.stages, A.data_ptr(), b.data_ptr()
    return tableau.stages


def _stages(tableau: ButcherTableau | None) -> int:
    return 1 if tableau is None else tableau.stages


def _check(rc: int) -> None:
    if rc != 0:
        raise MemoryError("liquidflow's native LTC kernel could not allocate its scratch memory")


_TABLES = ("w", "we", "sigma", "sm")
_SENSORY_TABLES = ("sw", "swe", "ssig", "ssm")


def _why_not_tensors(named: dict[str, Tensor | None], dtype: torch.dtype) -> str | None:
    """Device and dtype of every tensor given (None: absent): CPU, all of ``dtype``, float32/float64."""
    for t in named.values():
        if t is not None and t.device.type != "cpu":
            return abi.not_cpu(t.device)
    if dtype not in _SFX:
        return abi.not_float(dtype)
    first = next(iter(named))
    for name, t in named.items():
        if t is not None and t.dtype != dtype:
            return abi.mixed_dtypes(f"{first} {dtype}, {name} {t.dtype}")
    return None


def _why_not_sequence(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor,
                      tables: list[Tensor], table_shape: tuple[int, ...]) -> str | None:  # fmt: skip
    """What the dense and edge-list kernels share: devices, dtypes, shapes, unfolds and the mask."""
    named: dict[str, Tensor | None] = {"base": base, "C": C, "h0": h0, **dict(zip(_TABLES, tables))}
    reason = _why_not_tensors(named, base.dtype)
    if reason is not None:
        return reason
    if base.dim() != 4 or base.shape[2] != 2:
        return f"shape: base {tuple(base.shape)}; the C kernel takes (T, B, 2, N)"
    T, B, _, N = base.shape
    if isinstance(unfolds, bool) or not isinstance(unfolds, int) or unfolds < 1:
        return f"ode_unfolds={unfolds!r}; the C kernel takes an int >= 1"
    if T == 0 or B == 0:
        return f"shape: base {tuple(base.shape)}, an empty sequence or batch"
    if tuple(C.shape) != (T, B, N):
        return f"shape: C {tuple(C.shape)}, expected {(T, B, N)}"
    if tuple(h0.shape) != (B, N):
        return f"shape: h0 {tuple(h0.shape)}, expected {(B, N)}"
    for name, t in zip(_TABLES, tables):
        if tuple(t.shape) != table_shape:
            return f"shape: {name} {tuple(t.shape)}, expected {table_shape}"
    if keep is not None:
        if keep.device.type != "cpu":
            return abi.not_cpu(keep.device)
        if keep.dtype != torch.bool:
            return f"mask of dtype {keep.dtype}; the C kernel takes torch.bool"
        if keep.numel() != T * B:
            return f"shape: mask {tuple(keep.shape)}, expected T * B = {T * B} values"
    return None


_Inputs = tuple[Tensor, Tensor, "Tensor | None", Tensor, Tensor, Tensor, Tensor, Tensor]


def _contiguous(base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, tables: list[Tensor]) -> _Inputs:
    """The inputs as the C kernels read them: contiguous, keep (T, B)."""
    T, B = base.shape[:2]
    keep = keep.reshape(T, B).contiguous() if keep is not None else None
    w, we, sigma, sm = (t.contiguous() for t in tables)
    return base.contiguous(), C.contiguous(), keep, h0.contiguous(), w, we, sigma, sm


# ================================================================================================ dense
class Memory:
    """Mixed memory for the dense kernel: the LSTM step (``lstm_impl.h``) before each LTC step. ``pre``
    (T, B, 4N) the input part of the gates (bias included), ``R`` (4N, N) the recurrent weight, ``c0``
    (B, N); the forward pass fills ``c`` (T, B, N), and ``gates`` (T, B, 4N) where gradients are wanted."""

    def __init__(self, pre: Tensor, R: Tensor, c0: Tensor) -> None:
        self.pre, self.R, self.c0 = pre.contiguous(), R.contiguous(), c0.contiguous()
        self.R_t = R.t().contiguous()
        self.c: Tensor | None = None
        self.gates: Tensor | None = None

    def set(self, a: abi.LfLtcSeq, save: bool) -> None:
        T, B, G = self.pre.shape
        self.c = self.pre.new_empty(T, B, G // 4)
        self.gates = self.pre.new_empty(T, B, G) if save else None
        a.lstm_pre, a.lstm_r, a.lstm_r_t = _ptr(self.pre), _ptr(self.R), _ptr(self.R_t)
        a.lstm_c0, a.lstm_c, a.lstm_gates = _ptr(self.c0), _ptr(self.c), _ptr(self.gates)


def _set_memory_grads(a: abi.LfLtcSeq, ctx: Any, mm: list[Tensor], gc: Tensor | None, C: Tensor,
                      r_index: int) -> tuple[Tensor | None, Tensor | None, Tensor | None]:  # fmt: skip
    """Mixed memory in a backward call: the saved tensors ``mm`` and the gradient ``gc`` at the cell
    states into the struct; returns the gradients (pre, R^T, c0), allocated here (None: no memory)."""
    if not ctx.memory:
        return None, None, None
    T, B, N = C.shape
    h0, S, R, R_t, c0, cs, gates = mm
    gpre, gc0 = C.new_empty(T, B, 4 * N), C.new_empty(B, N)
    gRt = C.new_empty(N, 4 * N) if ctx.needs_input_grad[r_index] else None
    gc = gc.contiguous() if gc is not None else None
    # lstm_pre only flags mixed memory here (the backward pass does not read it)
    a.h0, a.states, a.lstm_pre, a.lstm_r, a.lstm_r_t = _ptr(h0), _ptr(S), _ptr(R), _ptr(R), _ptr(R_t)
    a.lstm_c0, a.lstm_c, a.lstm_gates, a.lstm_grad_c = _ptr(c0), _ptr(cs), _ptr(gates), _ptr(gc)
    a.lstm_grad_pre, a.lstm_grad_r_t, a.lstm_grad_c0 = _ptr(gpre), _ptr(gRt), _ptr(gc0)
    return gpre, gRt, gc0


_Edges = tuple[Tensor, Tensor]


_Saved = tuple[Tensor, "Tensor | None", "Tensor | None"]


def _dense_forward(lib: ctypes.CDLL, unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor,
                   w: Tensor, we: Tensor, sigma: Tensor, sm: Tensor, save: bool, tableau: ButcherTableau | None = None,
                   memory: Memory | None = None) -> _Saved:  # fmt: skip
    """The dense C forward call (:func:`_forward`; a name of its own, so that tests can count the calls)."""
    return _forward(lib, unfolds, base, C, keep, h0, w, we, sigma, sm, None, None, save, tableau, memory)


def _sparse_forward(lib: ctypes.CDLL, unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor,
                    w: Tensor, we: Tensor, sigma: Tensor, sm: Tensor, src: Tensor, dst: Tensor, save: bool,
                    tableau: ButcherTableau | None = None, memory: Memory | None = None) -> _Saved:  # fmt: skip
    """The edge-list C forward call (:func:`_forward`)."""
    return _forward(lib, unfolds, base, C, keep, h0, w, we, sigma, sm, src, dst, save, tableau, memory)


def _forward(lib: ctypes.CDLL, unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor,
             we: Tensor, sigma: Tensor, sm: Tensor, src: Tensor | None, dst: Tensor | None, save: bool,
             tableau: ButcherTableau | None = None, memory: Memory | None = None) -> _Saved:  # fmt: skip
    """One forward call, dense (``src`` None) or on the edge list src -> dst: the states, and with
    ``save`` the potentials V and denominators D the backward call reads."""
    T, B, _, N = base.shape
    L, R = unfolds, _stages(tableau)
    S = base.new_empty(T, B, N)
    tail: tuple[int, ...] = ()
    if src is None:  # saved batch-major, one row per thread at a time
        lead, kind = B, "dense"
    else:  # blocks of W rows, held transposed
        W = getattr(lib, f"lf_ltc_lanes_{_SFX[base.dtype]}")()  # batch rows per vector
        lead, tail, kind = -(-B // W), (W,), "sparse"
    if tableau is None:
        V = base.new_empty(lead, T, L + 1, N, *tail) if save else None  # v before each unfold and after the last
        D = base.new_empty(lead, T, L, N, *tail) if save else None  # the denominator of each unfold
    else:
        V = base.new_empty(lead, T, L, R, 2, N, *tail) if save else None  # [u_s, K_s] of each unfold and stage
        D = base.new_empty(lead, T, L, R, N, *tail) if save else None  # den(u_s)
    work = T * B * L * R * w.numel()  # synapse evaluations
    a = abi.LfLtcSeq(steps=T, batch=B, neurons=N, unfolds=L, edges=0 if src is None else src.numel(),
                     threads=_threads(lead, work))  # fmt: skip
    _set_solver(a, tableau)
    a.base, a.c, a.keep, a.h0 = _ptr(base), _ptr(C), _ptr(keep), _ptr(h0)
    a.w, a.we, a.sigma, a.sm, a.src, a.dst = _ptr(w), _ptr(we), _ptr(sigma), _ptr(sm), _ptr(src), _ptr(dst)
    a.states, a.v, a.d = _ptr(S), _ptr(V), _ptr(D)
    if memory is not None:
        memory.set(a, save)
    _check(getattr(lib, f"lf_ltc_{kind}_fwd_{_SFX[base.dtype]}")(ctypes.byref(a)))
    return S, V, D


class _NativeLTC(torch.autograd.Function):
    """``_fused._LTCSemiImplicit`` (``src`` None) or ``_fused._LTCSparse`` with the forward and backward
    loops in C. With mixed memory (``pre``, ``R``, ``c0`` given: :class:`Memory`) it returns the states
    and the LSTM's cell states."""

    @staticmethod
    def forward(ctx: Any, lib: ctypes.CDLL, unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None,
                h0: Tensor, w: Tensor, we: Tensor, sigma: Tensor, sm: Tensor, src: Tensor | None, dst: Tensor | None,
                tableau: ButcherTableau | None, pre: Tensor | None = None, R: Tensor | None = None,
                c0: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
        save = any(ctx.needs_input_grad)
        memory = Memory(pre, R, c0) if pre is not None and R is not None and c0 is not None else None
        args = (base, C, keep, h0, w, we, sigma, sm)
        if src is None or dst is None:
            S, V, D = _dense_forward(lib, unfolds, *args, save, tableau, memory)
        else:
            S, V, D = _sparse_forward(lib, unfolds, *args, src, dst, save, tableau, memory)
        if save:
            ctx.unfolds, ctx.lib = unfolds, lib  # the library of the forward pass, even if switched off since
            ctx.tableau, ctx.memory = tableau, memory is not None
            mm = (h0, S, memory.R, memory.R_t, memory.c0, memory.c, memory.gates) if memory is not None else ()
            ctx.save_for_backward(C, keep, w, we, sigma, sm, src, dst, V, D, *mm)
        return _outputs(S, memory)

    @staticmethod
    def backward(ctx: Any, gS: Tensor, gc: Tensor | None = None) -> tuple[Tensor | None, ...]:
        refuse_double_backward()
        C, keep, w, we, sigma, sm, src, dst, V, D, *mm = ctx.saved_tensors
        L = ctx.unfolds
        T, B, N = C.shape
        gS = gS.contiguous()
        gbase, gC, gh0 = C.new_empty(T, B, 2, N), C.new_empty(T, B, N), C.new_empty(B, N)
        gw, gwe, gsig, gsm = (C.new_empty(w.shape) for _ in range(4))
        need_w = any(ctx.needs_input_grad[6:10])
        nt = _threads(V.shape[0], T * B * L * _stages(ctx.tableau) * w.numel())
        E = 0 if src is None else src.numel()
        a = abi.LfLtcSeq(steps=T, batch=B, neurons=N, unfolds=L, edges=E, need_w=need_w, threads=nt)
        _set_solver(a, ctx.tableau)
        a.c, a.keep, a.w, a.we, a.sigma, a.sm = _ptr(C), _ptr(keep), _ptr(w), _ptr(we), _ptr(sigma), _ptr(sm)
        a.src, a.dst, a.v, a.d, a.grad_states = _ptr(src), _ptr(dst), _ptr(V), _ptr(D), _ptr(gS)
        a.grad_base, a.grad_c, a.grad_h0 = _ptr(gbase), _ptr(gC), _ptr(gh0)
        a.grad_w, a.grad_we, a.grad_sigma, a.grad_sm = _ptr(gw), _ptr(gwe), _ptr(gsig), _ptr(gsm)
        gpre, gRt, gc0 = _set_memory_grads(a, ctx, mm, gc, C, 14)
        kind = "dense" if src is None else "sparse"
        _check(getattr(ctx.lib, f"lf_ltc_{kind}_bwd_{_SFX[C.dtype]}")(ctypes.byref(a)))
        if not need_w:
            gw = gwe = gsig = gsm = None  # type: ignore[assignment]
        gR = gRt.t() if gRt is not None else None
        return (None, None, gbase, gC, None, gh0, gw, gwe, gsig, gsm, None, None, None, gpre, gR, gc0)


def _outputs(S: Tensor, memory: Memory | None) -> Tensor | tuple[Tensor, Tensor]:
    """The states, and with mixed memory the LSTM's cell states."""
    if memory is None:
        return S
    assert memory.c is not None
    return S, memory.c


def _run(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, tables: list[Tensor],
         edges: _Edges | None, tableau: ButcherTableau | None,
         lstm: tuple[Tensor, Tensor, Tensor] | None) -> Tensor | tuple[Tensor, Tensor] | None:  # fmt: skip
    """:func:`dense` (``edges`` None) or :func:`sparse` once the C kernel applies."""
    lib = _LIB.get()
    if lib is None:  # switched off since (another thread)
        return None
    args = _contiguous(base, C, keep, h0, tables)
    src, dst = (None, None) if edges is None else (edges[0].contiguous(), edges[1].contiguous())
    if not torch.is_grad_enabled():
        memory = Memory(*lstm) if lstm is not None else None
        if src is None or dst is None:
            S = _dense_forward(lib, unfolds, *args, False, tableau, memory)[0]
        else:
            S = _sparse_forward(lib, unfolds, *args, src, dst, False, tableau, memory)[0]
        return _outputs(S, memory)
    return _NativeLTC.apply(lib, unfolds, *args, src, dst, tableau, *(lstm or ()))  # type: ignore[no-any-return]


def _why_not_tableau(tableau: ButcherTableau | None) -> str | None:
    if tableau is not None and not isinstance(tableau, ButcherTableau):
        return f"solver tableau {tableau!r}; the C kernel takes a ButcherTableau or None (semi-implicit)"
    return None


def _why_not_lstm(lstm: tuple[Tensor, Tensor, Tensor] | None, base: Tensor) -> str | None:
    if lstm is None:
        return None
    T, B, _, N = base.shape
    pre, R, c0 = lstm
    reason = _why_not_tensors({"base": base, "lstm pre": pre, "lstm R": R, "lstm c0": c0}, base.dtype)
    if reason is not None:
        return reason
    for name, t, shape in (("lstm pre", pre, (T, B, 4 * N)), ("lstm R", R, (4 * N, N)), ("lstm c0", c0, (B, N))):
        if tuple(t.shape) != shape:
            return f"shape: {name} {tuple(t.shape)}, expected {shape}"
    return None


def why_not_dense(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
                  sigma: Tensor, sm: Tensor, tableau: ButcherTableau | None = None,
                  lstm: tuple[Tensor, Tensor, Tensor] | None = None) -> str | None:  # fmt: skip
    """None when :func:`dense` runs the C kernel for these arguments, else the reason it does not."""
    if not _native.enabled():
        return abi.SWITCHED_OFF
    N = base.shape[-1] if base.dim() == 4 else -1
    reason = _why_not_tableau(tableau) or _why_not_sequence(unfolds, base, C, keep, h0, [w, we, sigma, sm], (N, N))
    return reason or _why_not_lstm(lstm, base) or _LIB.why_not()


def dense(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
          sigma: Tensor, sm: Tensor, tableau: ButcherTableau | None = None,
          lstm: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor | tuple[Tensor, Tensor] | None:  # fmt: skip
    """States (T, B, N) as ``_fused.ltc_semi_implicit`` (``tableau`` None) or of the explicit method
    ``tableau``, or None where the C kernel does not apply (see :func:`why_not_dense`). With mixed
    memory, ``lstm`` = (pre (T, B, 4N), R (4N, N), c0 (B, N)) (see :class:`Memory`): returns (states,
    the LSTM's cell states (T, B, N))."""
    if why_not_dense(unfolds, base, C, keep, h0, w, we, sigma, sm, tableau, lstm) is not None:
        return None
    return _run(unfolds, base, C, keep, h0, [w, we, sigma, sm], None, tableau, lstm)


# ================================================================================================ sparse
def why_not_sparse(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor,
                   we: Tensor, sigma: Tensor, sm: Tensor, src: Tensor, dst: Tensor,
                   tableau: ButcherTableau | None = None,
                   lstm: tuple[Tensor, Tensor, Tensor] | None = None) -> str | None:  # fmt: skip
    """None when :func:`sparse` runs the C kernel for these arguments, else the reason it does not."""
    if not _native.enabled():
        return abi.SWITCHED_OFF
    E = src.numel()
    reason = _why_not_tableau(tableau) or _why_not_sequence(unfolds, base, C, keep, h0, [w, we, sigma, sm], (E,))
    reason = reason or _why_not_lstm(lstm, base)
    if reason is not None:
        return reason
    for name, t in (("src", src), ("dst", dst)):
        if t.device.type != "cpu":
            return abi.not_cpu(t.device)
        if t.dtype != torch.int64 or t.shape != (E,):
            return f"{name}: dtype {t.dtype}, shape {tuple(t.shape)}; the C kernel takes int64 of shape {(E,)}"
    N = base.shape[-1]
    if E and (int(src.min()) < 0 or int(src.max()) >= N or int(dst.min()) < 0 or int(dst.max()) >= N):
        return f"edge indices out of range [0, {N})"  # torch raises its error for them
    return _LIB.why_not()


def sparse(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
           sigma: Tensor, sm: Tensor, src: Tensor, dst: Tensor, tableau: ButcherTableau | None = None,
           lstm: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor | tuple[Tensor, Tensor] | None:  # fmt: skip
    """States (T, B, N) as ``_fused.ltc_sparse`` (``tableau`` None) or of the explicit method
    ``tableau``, or None where the C kernel does not apply (see :func:`why_not_sparse`); mixed memory
    (``lstm``) as :func:`dense`."""
    if why_not_sparse(unfolds, base, C, keep, h0, w, we, sigma, sm, src, dst, tableau, lstm) is not None:
        return None
    return _run(unfolds, base, C, keep, h0, [w, we, sigma, sm], (src, dst), tableau, lstm)


# ================================================================================================ sensory
class _NativeSensory(torch.autograd.Function):
    """The sensory synapses and the leak of all steps at once: ``base`` (T, B, 2, N) of :func:`dense`."""

    @staticmethod
    def forward(ctx: Any, lib: ctypes.CDLL, x: Tensor, leak: Tensor, sw: Tensor, swe: Tensor, ssig: Tensor,
                ssm: Tensor) -> Tensor:  # fmt: skip
        T, B, I = x.shape
        N = leak.shape[1]
        base = x.new_empty(T, B, 2, N)
        a = abi.LfLtcSensory(rows=T * B, inputs=I, neurons=N, threads=_threads(T * B, T * B * I * N))
        a.x, a.leak, a.sw, a.swe, a.ssig, a.ssm = _ptr(x), _ptr(leak), _ptr(sw), _ptr(swe), _ptr(ssig), _ptr(ssm)
        a.base = _ptr(base)
        _check(getattr(lib, f"lf_ltc_sensory_fwd_{_SFX[x.dtype]}")(ctypes.byref(a)))
        if any(ctx.needs_input_grad):
            ctx.lib = lib
            ctx.save_for_backward(x, sw, swe, ssig, ssm)
        return base

    @staticmethod
    def backward(ctx: Any, gbase: Tensor) -> tuple[Tensor | None, ...]:
        refuse_double_backward()
        x, sw, swe, ssig, ssm = ctx.saved_tensors
        T, B, I = x.shape
        N = sw.shape[1]
        gbase = gbase.contiguous()
        gx = x.new_empty(T, B, I) if ctx.needs_input_grad[1] else None
        gleak = x.new_empty(2, N)
        gsw, gswe, gssig, gssm = (x.new_empty(I, N) for _ in range(4))
        need_w = any(ctx.needs_input_grad[3:7])
        a = abi.LfLtcSensory(rows=T * B, inputs=I, neurons=N, need_w=need_w, threads=_threads(T * B, T * B * I * N))
        a.x, a.sw, a.swe, a.ssig, a.ssm = _ptr(x), _ptr(sw), _ptr(swe), _ptr(ssig), _ptr(ssm)
        a.grad_base, a.grad_x, a.grad_leak = _ptr(gbase), _ptr(gx), _ptr(gleak)
        a.grad_sw, a.grad_swe, a.grad_ssig, a.grad_ssm = _ptr(gsw), _ptr(gswe), _ptr(gssig), _ptr(gssm)
        _check(getattr(ctx.lib, f"lf_ltc_sensory_bwd_{_SFX[x.dtype]}")(ctypes.byref(a)))
        if not need_w:
            gsw = gswe = gssig = gssm = None  # type: ignore[assignment]
        return (None, gx, gleak, gsw, gswe, gssig, gssm)


def why_not_sensory(x: Tensor, leak: Tensor, sw: Tensor, swe: Tensor, ssig: Tensor, ssm: Tensor) -> str | None:
    """None when :func:`sensory` runs the C kernel for these arguments, else the reason it does not."""
    if not _native.enabled():
        return abi.SWITCHED_OFF
    named: dict[str, Tensor | None] = {"x": x, "leak": leak, **dict(zip(_SENSORY_TABLES, (sw, swe, ssig, ssm)))}
    reason = _why_not_tensors(named, x.dtype)
    if reason is not None:
        return reason
    if x.dim() != 3:
        return f"shape: x {tuple(x.shape)}; the C kernel takes (T, B, I)"
    if leak.dim() != 2 or leak.shape[0] != 2:
        return f"shape: leak {tuple(leak.shape)}; the C kernel takes (2, N)"
    T, B, I = x.shape
    N = leak.shape[1]
    if T == 0 or B == 0:
        return f"shape: x {tuple(x.shape)}, an empty sequence or batch"
    for name, t in zip(_SENSORY_TABLES, (sw, swe, ssig, ssm)):
        if tuple(t.shape) != (I, N):
            return f"shape: {name} {tuple(t.shape)}, expected {(I, N)}"
    return _LIB.why_not()


def sensory(x: Tensor, leak: Tensor, sw: Tensor, swe: Tensor, ssig: Tensor, ssm: Tensor) -> Tensor | None:
    """``base`` (T, B, 2, N) = leak + [sum_i s_ij swe_ij, sum_i s_ij sw_ij], s = sigmoid(ssig x_i - ssm).

    x (T, B, I): the mapped inputs; leak (2, N); tables (I, N) (``sw`` masked, ``swe`` = sw E,
    ``ssm`` = ssig mu). The same as ``LTCCell.precompute(x) + leak``, or None where the C kernel
    does not apply (see :func:`why_not_sensory`)."""
    if why_not_sensory(x, leak, sw, swe, ssig, ssm) is not None:
        return None
    lib = _LIB.get()
    if lib is None:  # switched off since (another thread)
        return None
    args = [t.contiguous() for t in (x, leak, sw, swe, ssig, ssm)]
    return _NativeSensory.apply(lib, *args)  # type: ignore[no-any-return]
