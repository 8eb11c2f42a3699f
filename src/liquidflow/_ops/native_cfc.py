"""CfC chain kernels in C (liquidflow._native, ``cfc.c``): forward and backward over a whole sequence.

The C kernels run the time loop of ``_fused._cfc_forward`` and the adjoint of ``_fused._CfCChain``
with no per-step torch calls: each thread takes a share of the batch rows and runs every step for
them (samples are independent), with register-tiled matrix products for the per-step maps. The
weight gradients are products over all T·B rows at the end, left to ``torch.mm`` here.

With the same elapsed time ``c`` for every step and sample (``timespans=None`` or a float), a layer
with a backbone merges its two gate heads into one: ``g = σ((Wb − c·Wa) z + (bb − c·ba))``, 3H head
columns instead of 4H. The gradient of both heads then follows from the one gate gradient ``dg``:
``∂/∂Wb = zᵀ dg`` and ``∂/∂Wa = −c·zᵀ dg``.

The layers travel to C as an array of :class:`~.native_abi.LfCfcLayer` (``lf_cfc_layer`` in
``lf_abi.h``), each with its backbone activation (any of ``_spec.ACTIVATIONS``; for gelu and silu the
forward pass also saves act'(u) for the backward pass), 0-4 backbone layers (layers 1.. as
:class:`~.native_abi.LfCfcDeep`), its mode (default, no_gate, pure: then A and w_tau and their
gradients), its head activation (tanh or lecun_tanh) and, in training, dropout multipliers per
backbone layer drawn by the caller. A mixed-memory LSTM (:class:`~.jobs.CfCLSTM`,
:class:`~.native_abi.LfCfcLstm`) runs before the chain inside the same C time loop
(``_native/lstm_impl.h``); its cell states come back in ``lstm.c``. :func:`why_not` says why the C
kernel does not apply to a call (native code switched off or unavailable, not on the CPU, not
float32/float64, ...), or None when it does; :func:`chain` then returns None and the torch kernels
of ``_fused`` run instead where they apply.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import _native
from . import native_abi as abi

if TYPE_CHECKING:
    from .fused import CfCLayerSpec
    from .jobs import CfCLSTM

Tensor = torch.Tensor
_MERGE = True  # merge the gate heads when dt is uniform (tests switch it off to check both paths)
_SFX = {torch.float32: "f32", torch.float64: "f64"}
_i64, _ptr, _layers_p = ctypes.c_int64, ctypes.c_void_p, ctypes.POINTER(abi.LfCfcLayer)
_lstm_p = ctypes.POINTER(abi.LfCfcLstm)
_MAX_LAYERS: dict[int, int] = {}  # id(library) -> the most layers a chain may have (LF_MAXL of cfc.c)


def _setup(lib: ctypes.CDLL) -> None:
    for sfx in _SFX.values():
        f = getattr(lib, f"lf_cfc_forward_{sfx}")
        # L, layers, T, B, N, P, K0, ts, keep, h0, S, merge_ok, lstm, nt
        f.argtypes = [_i64, _layers_p, _i64, _i64, _i64, _ptr, _i64, _ptr, _ptr, _ptr, _ptr, _i64, _lstm_p, _i64]
        f.restype = ctypes.c_int
        g = getattr(lib, f"lf_cfc_backward_{sfx}")
        # L, layers, T, B, N, ts, keep, h0, S, gS, gh0, merged, lstm, nt
        g.argtypes = [_i64, _layers_p, _i64, _i64, _i64, _ptr, _ptr, _ptr, _ptr, _ptr, _ptr, _i64, _lstm_p, _i64]
        g.restype = ctypes.c_int
    _MAX_LAYERS[id(lib)] = lib.lf_cfc_maxlayers()


_LIB = abi.KernelLibrary("cfc", abi.CFC_ABI_VERSION, abi.CFC_STRUCTS, _setup)


def _strided(t: Tensor | None) -> abi.LfStrided:
    if t is None:
        return abi.LfStrided()
    return abi.LfStrided(t.data_ptr(), t.stride(0), t.stride(1) if t.dim() > 1 else 0)


def _data(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


Drops = list[list[Tensor] | None] | None  # per layer, per backbone layer: (T, B, K) dropout multipliers


def _layers(specs: list[CfCLayerSpec], params: list[list[Tensor | None]], saves: list[list[Tensor | None]],
            outs: list[list[Tensor | None]], drops: Drops = None) -> ctypes.Array[abi.LfCfcLayer]:  # fmt: skip
    """The layers as cfc.c reads them: sizes, options, weights with their strides, buffers.

    params[l] as ``CfCLayer.n_params`` says; saves[l] = [Z, F, G, ZD] then [Z_k, ZD_k] per backbone
    layer k >= 1; outs[l] = [dU] then the gradient of each of params[l] (or None)."""
    layers = (abi.LfCfcLayer * len(specs))()
    keep_alive = []
    off = 0
    for l, (sp, y) in enumerate(zip(specs, layers)):
        WxT, WhT, b, HwT, hb = params[l][:5]
        Z, Fh, G, ZD = saves[l][:4]
        dU, gWxT, gWhT, gb, gHwT, ghb = outs[l][:6]
        dr = drops[l] if drops is not None else None
        y.hidden, y.width, y.backbone, y.offset = sp.hidden, sp.width, sp.layers, off
        y.mode = abi.CFC_MODES[sp.mode]
        y.activation = abi.CFC_ACTIVATIONS[sp.activation]
        y.head_activation = abi.CFC_ACTIVATIONS[sp.head]
        if l > 0:  # layer 0's input map is the caller's P
            y.in_size = 0 if WxT is None else WxT.shape[0]
            y.wx_t, y.b = _strided(WxT), _strided(b)
        y.wh_t, y.hw_t, y.hb = _strided(WhT), _strided(HwT), _strided(hb)
        y.z, y.f, y.g, y.zd = _data(Z), _data(Fh), _data(G), _data(ZD)
        y.drop = _data(dr[0]) if dr else None
        y.grad_u, y.grad_wx_t, y.grad_wh_t = _data(dU), _data(gWxT), _data(gWhT)
        y.grad_b, y.grad_hw_t, y.grad_hb = _data(gb), _data(gHwT), _data(ghb)
        nd = sp.layers - 1
        if nd > 0:
            deep = (abi.LfCfcDeep * nd)()
            for k in range(nd):
                e = deep[k]
                e.w_t, e.b = _strided(params[l][5 + 2 * k]), _strided(params[l][6 + 2 * k])
                e.drop = _data(dr[k + 1]) if dr else None
                e.z, e.zd = _data(saves[l][4 + 2 * k]), _data(saves[l][5 + 2 * k])
                e.grad_w_t, e.grad_b = _data(outs[l][6 + 2 * k]), _data(outs[l][7 + 2 * k])
            keep_alive.append(deep)
            y.deep = ctypes.cast(deep, ctypes.c_void_p)
        if sp.mode == "pure":
            A, w_tau = params[l][-2:]
            y.a, y.w_tau = _strided(A), _strided(w_tau)
            y.grad_a, y.grad_w_tau = _data(outs[l][-2]), _data(outs[l][-1])
        off += sp.hidden
    layers._keep_alive = keep_alive  # type: ignore[attr-defined]
    return layers


def _why_not_tensor(label: str, t: Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> str | None:
    """A tensor the C kernel reads: on the CPU, of the call's dtype (P's) and of ``shape``."""
    if t.device.type != "cpu":
        return abi.not_cpu(t.device)
    if t.dtype != dtype:
        return abi.mixed_dtypes(f"P {dtype}, {label} {t.dtype}")
    if tuple(t.shape) != shape:
        return f"shape: {label} {tuple(t.shape)}, expected {shape}"
    return None


def _why_not_inputs(specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
                    params: list[list[Tensor | None]], drops: Drops = None,
                    lstm: CfCLSTM | None = None) -> str | None:  # fmt: skip
    """What about the call the C kernel does not take, or None (the library aside)."""
    dtype = P.dtype
    for t in (P, ts, h0, keep):
        if t is not None and t.device.type != "cpu":
            return abi.not_cpu(t.device)
    if dtype not in _SFX:
        return abi.not_float(dtype)
    for name, t in (("timespans", ts), ("h0", h0)):
        if t.dtype != dtype:
            return abi.mixed_dtypes(f"P {dtype}, {name} {t.dtype}")
    if ts.requires_grad:
        return "timespans require grad; the C kernel gives no gradient for them"
    if P.dim() != 3:
        return f"shape: P {tuple(P.shape)}; the C kernel takes (T, B, K)"
    T, B, K0 = P.shape
    if T == 0 or B == 0:
        return f"shape: P {tuple(P.shape)}, an empty sequence or batch"
    if not specs:
        return "no layers"
    if K0 != specs[0].width:
        return f"shape: P {tuple(P.shape)}, layer 0 has width {specs[0].width}"
    if ts.numel() != T * B:
        return f"shape: timespans {tuple(ts.shape)}, expected T * B = {T * B} values"
    N = sum(s.hidden for s in specs)
    if tuple(h0.shape) != (B, N):
        return f"shape: h0 {tuple(h0.shape)}, expected {(B, N)}"
    if keep is not None:
        if keep.dtype != torch.bool:
            return f"mask of dtype {keep.dtype}; the C kernel takes torch.bool"
        if keep.numel() != T * B:
            return f"shape: mask {tuple(keep.shape)}, expected T * B = {T * B} values"
    if (lstm is not None) != specs[0].memory:
        return "layer 0's spec and the job disagree about the mixed-memory LSTM"
    if lstm is not None:
        G = 4 * N
        checks: list[tuple[str, Tensor, tuple[int, ...]]] = [
            ("LSTM pre", lstm.pre, (T, B, G)),
            ("LSTM R^T", lstm.r_t, (N, G)),
            ("c0", lstm.c0, (B, N)),
        ]
        for name, t, shape in checks:
            reason = _why_not_tensor(name, t, shape, dtype)
            if reason is not None:
                return reason
    if drops is not None and len(drops) != len(specs):
        return f"dropout multipliers for {len(drops)} layers, expected {len(specs)}"
    for l, sp in enumerate(specs):
        if sp.backbone and sp.activation not in abi.CFC_ACTIVATIONS:
            return f"layer {l}: backbone activation {sp.activation!r} is not in the C kernel"
        if sp.mode not in abi.CFC_MODES:
            return f"layer {l}: mode={sp.mode!r} is not in the C kernel ({', '.join(abi.CFC_MODES)})"
        if sp.layers > abi.CFC_MAX_BACKBONE:
            return f"layer {l}: {sp.layers} backbone layers; the C kernel takes at most {abi.CFC_MAX_BACKBONE}"
        if len(params[l]) != sp.n_params:
            return f"layer {l}: {len(params[l])} parameter tensors, expected {sp.n_params}"
        WxT, WhT, b, HwT, hb = params[l][:5]
        H, K, V = sp.hidden, sp.width, sp.heads
        need: list[tuple[str, Tensor | None, tuple[int, ...]]] = [("WhT", WhT, (H, K))]
        if l > 0:
            need.append(("WxT", WxT, (specs[l - 1].hidden, K)))
            if b is not None:
                need.append(("b", b, (K,)))
        if sp.backbone:
            need += [("HwT", HwT, (K, V)), ("hb", hb, (V,))]
            for k in range(1, sp.layers):
                need += [(f"W{k}T", params[l][3 + 2 * k], (K, K)), (f"b{k}", params[l][4 + 2 * k], (K,))]
        elif K != V:
            return f"layer {l}: width {K} without a backbone, expected the heads' {V}"
        if sp.mode == "pure":
            need += [("A", params[l][-2], (H,)), ("w_tau", params[l][-1], (H,))]
        if sp.dropout:
            dr = drops[l] if drops is not None else None
            if dr is None or len(dr) != sp.layers:
                return f"layer {l}: dropout without multipliers for its {sp.layers} backbone layers"
            for k, d in enumerate(dr):
                need.append((f"dropout {k}", d, (T, B, K)))
        for name, p, shape in need:
            if p is None:
                return f"layer {l}: {name} is missing"
            reason = _why_not_tensor(f"layer {l} {name}", p, shape, dtype)
            if reason is not None:
                return reason
    return None


def _resolve(specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
             params: list[list[Tensor | None]], drops: Drops = None,
             lstm: CfCLSTM | None = None) -> ctypes.CDLL | str:  # fmt: skip
    """The library to run the call, or why not."""
    if not _native.enabled():
        return abi.SWITCHED_OFF
    reason = _why_not_inputs(specs, P, ts, keep, h0, params, drops, lstm) or _LIB.why_not()
    if reason is not None:
        return reason
    lib = _LIB.get()
    if lib is None:  # switched off since (another thread)
        return abi.SWITCHED_OFF
    most = _MAX_LAYERS[id(lib)]
    if len(specs) > most:
        return f"a chain of {len(specs)} layers; the C kernel takes at most {most}"
    return lib


resolve = _resolve  # the dispatcher keeps the library it returns and calls run() with it


def why_not(specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
            params: list[list[Tensor | None]], drops: Drops = None,
            lstm: CfCLSTM | None = None) -> str | None:  # fmt: skip
    """None when :func:`chain` runs the C kernel for these arguments, else the reason it does not."""
    lib = _resolve(specs, P, ts, keep, h0, params, drops, lstm)
    return lib if isinstance(lib, str) else None


Saves = list[list[Tensor | None]]


def _save_widths(sp: CfCLayerSpec) -> list[int]:
    """Columns the forward pass saves per step for the backward pass: z, [f1, f2] (pure: [u1, e]), g
    (not pure), act'(u) (gelu, silu, dropout), then z_k, act'(u_k) per backbone layer k >= 1 (0: none)."""
    K = sp.width if sp.backbone else 0
    kd = K if (sp.activation in abi.CFC_SAVE_DERIVATIVE or sp.dropout) else 0
    return [K, 2 * sp.hidden, 0 if sp.mode == "pure" else sp.hidden, kd] + [K, kd] * max(0, sp.layers - 1)


class _BufferPool:
    """Memory for the activations the forward pass saves, reused once the graph holding it is gone.

    These are megabytes per call (CfC(20, 64), batch 32, 100 steps: 4 MB). glibc hands blocks that
    large back to the OS when they are freed, so a fresh allocation per call pays a page fault per
    4 KB on first touch: measured 1.6 ms per forward pass of CfC(20, 64), more than the kernel
    itself. Here each buffer is a numpy array; the tensor handed out is a view of it, and when the
    last tensor sharing that memory is freed (its graph released) the array goes back to the pool.
    At most ``max_bytes`` are kept idle."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._free: dict[tuple[str, int], list[np.ndarray]] = {}
        self._idle = 0
        self._lock = threading.Lock()

    def take(self, n: int, dtype: torch.dtype) -> Tensor:
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        key = (np.dtype(np_dtype).str, n)
        with self._lock:
            free = self._free.get(key)
            base = free.pop() if free else None
            if base is not None:
                self._idle -= base.nbytes
        if base is None:
            base = np.empty(n, dtype=np_dtype)
        view = base.view()  # the tensor keeps this view alive; when it goes, base comes back
        weakref.finalize(view, self._give_back, key, base).atexit = False
        return torch.from_numpy(view)

    def _give_back(self, key: tuple[str, int], base: np.ndarray) -> None:
        with self._lock:
            if self._idle + base.nbytes <= self.max_bytes:
                self._free.setdefault(key, []).append(base)
                self._idle += base.nbytes


_POOL = _BufferPool(64 << 20)


class _Lstm:
    """The mixed-memory LSTM's tensors for one C call (``lf_cfc_lstm``)."""

    def __init__(self, pre: Tensor, r_t: Tensor, c0: Tensor, c: Tensor, hl: Tensor | None = None,
                 gates: Tensor | None = None) -> None:  # fmt: skip
        self.pre, self.r_t, self.c0, self.c, self.hl, self.gates = pre, r_t, c0, c, hl, gates
        self.grad_c: Tensor | None = None
        self.grad_pre: Tensor | None = None
        self.grad_r_t: Tensor | None = None
        self.grad_c0: Tensor | None = None

    def struct(self, T: int, B: int) -> abi.LfCfcLstm:
        s = abi.LfCfcLstm()
        s.size, s.r_t = self.c0.shape[1], _strided(self.r_t)
        s.pre, s.c0, s.c = self.pre.data_ptr(), self.c0.data_ptr(), self.c.data_ptr()
        s.hl, s.gates, s.grad_c = _data(self.hl), _data(self.gates), _data(self.grad_c)
        s.grad_pre, s.grad_r_t, s.grad_c0 = _data(self.grad_pre), _data(self.grad_r_t), _data(self.grad_c0)
        return s


def _forward(lib: Any, specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
             params: list[list[Tensor | None]], save: bool,
             drops: Drops = None, lstm: _Lstm | None = None) -> tuple[Tensor, Saves, int]:  # fmt: skip
    """States (T, B, N), the saved activations per layer (see :func:`_save_widths`) and the merged flag;
    with ``lstm`` its cell states (and, when saving, h_l and the gates) land in its buffers."""
    T, B, K0 = P.shape
    N = h0.shape[1]
    saves: list[list[Tensor | None]] = [[None] * len(_save_widths(sp)) for sp in specs]
    if save:  # one buffer for all: per layer z (backbone), [f1, f2], g and act'(u) (gelu, silu) at every step
        widths = [_save_widths(sp) for sp in specs]
        buf = _POOL.take(T * B * sum(map(sum, widths)), P.dtype)
        o = 0
        for l, ws in enumerate(widths):
            for k, w in enumerate(ws):
                if w:
                    saves[l][k] = buf[o : o + T * B * w].view(T, B, w)
                    o += T * B * w
    S = P.new_empty(T, B, N)
    layers = _layers(specs, params, saves, [[None] * (1 + sp.n_params) for sp in specs], drops)
    fn = getattr(lib, f"lf_cfc_forward_{_SFX[P.dtype]}")
    kp = keep.data_ptr() if keep is not None else None
    ls = ctypes.byref(lstm.struct(T, B)) if lstm is not None else None
    merged = fn(len(specs), layers, T, B, N, P.data_ptr(), K0, ts.data_ptr(), kp, h0.data_ptr(), S.data_ptr(),
                int(_MERGE), ls, torch.get_num_threads())  # fmt: skip
    if merged < 0:
        raise MemoryError("liquidflow's native CfC kernel could not allocate its scratch memory")
    return S, saves, merged


class _NativeCfCChain(torch.autograd.Function):
    """``_fused._CfCChain`` with the time loops (forward and adjoint) in C."""

    @staticmethod
    def forward(ctx: Any, specs: list[CfCLayerSpec], drops: Drops, P: Tensor, ts: Tensor, keep: Tensor | None,
                h0: Tensor, lpre: Tensor | None, lRt: Tensor | None, c0: Tensor | None,
                *flat: Tensor | None) -> tuple[Tensor, Tensor]:  # fmt: skip
        """States S (T, B, N) and the LSTM's cell states C (T, B, N) (empty without mixed memory)."""
        lib = _LIB.get()
        params = _unflatten(specs, flat)
        lstm = None
        if lpre is not None:
            T, B, _ = P.shape
            N = h0.shape[1]
            buf = _POOL.take(T * B * 5 * N, P.dtype)  # h_l and the gates, saved (c is an output)
            hl, gates = buf[: T * B * N].view(T, B, N), buf[T * B * N :].view(T, B, 4 * N)
            lstm = _Lstm(lpre, lRt, c0, P.new_empty(T, B, N), hl, gates)  # type: ignore[arg-type]
        S, saves, merged = _forward(lib, specs, P, ts, keep, h0, params, save=True, drops=drops, lstm=lstm)
        ctx.specs, ctx.merged, ctx.drops = specs, merged, drops
        ctx.pool_dP = P.grad_fn is not None  # dP only flows on into P's graph (never kept as a leaf's .grad)
        ctx.c = float(ts.reshape(-1)[0]) if merged else 0.0
        ctx.nsave = [sum(x is not None for x in s) for s in saves]
        kept = [x for s in saves for x in s if x is not None]
        ctx.lstm = lstm is not None
        ctx.pool_lpre = lpre is not None and lpre.grad_fn is not None
        lk = [lstm.pre, lstm.r_t, lstm.c0, lstm.c, lstm.hl, lstm.gates] if lstm is not None else []
        ctx.save_for_backward(ts, keep, h0, S, *lk, *kept, *flat)
        if lstm is None:
            C = S.new_empty(0)
            ctx.mark_non_differentiable(C)
            return S, C
        return S, lstm.c

    @staticmethod
    def backward(ctx: Any, gS: Tensor, gC: Tensor | None) -> tuple[Tensor | None, ...]:
        from .switch import refuse_double_backward

        refuse_double_backward()
        specs: list[CfCLayerSpec] = ctx.specs
        L = len(specs)
        ts, keep, h0, S, *rest = ctx.saved_tensors
        lstm = None
        if ctx.lstm:
            lstm = _Lstm(*rest[:6])
            rest = rest[6:]
        nk = sum(ctx.nsave)
        kept, flat = rest[:nk], rest[nk:]
        params = _unflatten(specs, flat)
        saves: list[list[Tensor | None]] = []
        it = iter(kept)
        for sp in specs:
            saves.append([next(it) if w else None for w in _save_widths(sp)])
        T, B, N = S.shape
        gS = gS.contiguous()
        need = ctx.needs_input_grad
        # outputs per layer: [dU (layer 0: dP), then the gradients of WxT, WhT, b, HwT, hb where needed]
        outs: list[list[Tensor | None]] = []
        o = 9  # needs_input_grad: specs, drops, P, ts, keep, h0, lpre, lRt, c0, then the flat params
        for l, p in enumerate(params):
            out: list[Tensor | None] = [None]
            if l == 0 and need[2]:
                K0 = specs[0].width
                dP = _POOL.take(T * B * K0, S.dtype) if ctx.pool_dP else S.new_empty(T * B * K0)
                out[0] = dP.view(T, B, K0)
            for k, w in enumerate(p):  # layer 0 has no WxT and b here (its input map is P's)
                wanted = w is not None and need[o + k] and (l > 0 or k not in (0, 2))
                out.append(torch.empty(w.shape, dtype=w.dtype) if wanted else None)  # type: ignore[union-attr]
            outs.append(out)
            o += len(p)
        gh0 = S.new_empty(B, N)
        lib = _LIB.get()
        if lib is None:
            raise RuntimeError("liquidflow's native CfC kernel became unavailable between forward and backward")
        layers = _layers(specs, params, saves, outs, ctx.drops)
        fn = getattr(lib, f"lf_cfc_backward_{_SFX[S.dtype]}")
        kp = keep.data_ptr() if keep is not None else None
        ls = None
        if lstm is not None:
            if gC is not None:
                lstm.grad_c = gC.contiguous()
            if need[6]:  # pooled like dP where it only flows on into the input map's graph
                n4 = T * B * 4 * N
                g = _POOL.take(n4, S.dtype) if ctx.pool_lpre else S.new_empty(n4)
                lstm.grad_pre = g.view(T, B, 4 * N)
            lstm.grad_r_t = S.new_empty(N, 4 * N) if need[7] else None
            lstm.grad_c0 = S.new_empty(B, N)
            ls = ctypes.byref(lstm.struct(T, B))
        rc = fn(L, layers, T, B, N, ts.data_ptr(), kp, h0.data_ptr(), S.data_ptr(), gS.data_ptr(), gh0.data_ptr(),
                int(ctx.merged), ls, torch.get_num_threads())  # fmt: skip
        if rc == -2:
            raise RuntimeError(
                "liquidflow's native CfC kernel was called without the buffers it needs; please report this"
            )
        if rc < 0:
            raise MemoryError("liquidflow's native CfC kernel could not allocate its scratch memory")
        grads = [g for o in outs for g in o[1:]]
        lg: list[Tensor | None] = [None, None, None]
        if lstm is not None:
            lg = [lstm.grad_pre, lstm.grad_r_t, lstm.grad_c0 if need[8] else None]
        return (None, None, outs[0][0], None, None, gh0 if need[5] else None, *lg, *grads)


def _unflatten(specs: list[CfCLayerSpec], flat: Any) -> list[list[Tensor | None]]:
    out, o = [], 0
    for sp in specs:
        out.append(list(flat[o : o + sp.n_params]))
        o += sp.n_params
    return out


def chain(specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
          params: list[list[Tensor | None]], drops: Drops = None,
          lstm: CfCLSTM | None = None) -> Tensor | None:  # fmt: skip
    """States (T, B, N) as ``_fused.cfc_chain``, or None where the C kernel does not apply (see :func:`why_not`).
    With ``lstm`` (mixed memory) its cell states (T, B, N) are left in ``lstm.c``."""
    lib = _resolve(specs, P, ts, keep, h0, params, drops, lstm)
    if isinstance(lib, str):
        return None
    return run(lib, specs, P, ts, keep, h0, params, drops, lstm)


def run(lib: ctypes.CDLL, specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
        params: list[list[Tensor | None]], drops: Drops = None, lstm: CfCLSTM | None = None) -> Tensor:  # fmt: skip
    """:func:`chain` on a library :func:`resolve` returned for these arguments (checks not repeated)."""
    T, B, _ = P.shape
    P = P.contiguous()
    ts = ts.reshape(T, B).contiguous()
    keep = keep.reshape(T, B).contiguous() if keep is not None else None
    h0 = h0.contiguous()
    if drops is not None:
        drops = [None if d is None else [x.contiguous() for x in d] for d in drops]  # type: ignore[union-attr]
    flat = [p for layer in params for p in layer]
    lt = (lstm.pre.contiguous(), lstm.r_t, lstm.c0.contiguous()) if lstm is not None else (None, None, None)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (P, h0, *lt, *flat)):
        S, C = _NativeCfCChain.apply(specs, drops, P, ts, keep, h0, *lt, *flat)
        if lstm is not None:
            lstm.c = C
        return S  # type: ignore[no-any-return]
    ls = None
    if lstm is not None:
        N = h0.shape[1]
        ls = _Lstm(lt[0], lt[1], lt[2], P.new_empty(T, B, N))  # type: ignore[arg-type]
    S = _forward(lib, specs, P, ts, keep, h0, params, save=False, drops=drops, lstm=ls)[0]
    if lstm is not None:
        assert ls is not None
        lstm.c = ls.c
    return S
