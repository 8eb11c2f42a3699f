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
forward pass also saves act'(u) for the backward pass). :func:`why_not` says why the C kernel does
not apply to a call (native code switched off or unavailable, not on the CPU, not float32/float64,
a mode other than default / no_gate, ...), or None when it does; :func:`chain` then returns None
and the torch kernels of ``_fused`` run instead.
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

Tensor = torch.Tensor
_MERGE = True  # merge the gate heads when dt is uniform (tests switch it off to check both paths)
_SFX = {torch.float32: "f32", torch.float64: "f64"}
_i64, _ptr, _layers_p = ctypes.c_int64, ctypes.c_void_p, ctypes.POINTER(abi.LfCfcLayer)
_MAX_LAYERS: dict[int, int] = {}  # id(library) -> the most layers a chain may have (LF_MAXL of cfc.c)


def _setup(lib: ctypes.CDLL) -> None:
    for sfx in _SFX.values():
        f = getattr(lib, f"lf_cfc_forward_{sfx}")
        # L, layers, T, B, N, P, K0, ts, keep, h0, S, merge_ok, nt
        f.argtypes = [_i64, _layers_p, _i64, _i64, _i64, _ptr, _i64, _ptr, _ptr, _ptr, _ptr, _i64, _i64]
        f.restype = ctypes.c_int
        g = getattr(lib, f"lf_cfc_backward_{sfx}")
        # L, layers, T, B, N, ts, keep, h0, S, gS, gh0, merged, nt
        g.argtypes = [_i64, _layers_p, _i64, _i64, _i64, _ptr, _ptr, _ptr, _ptr, _ptr, _ptr, _i64, _i64]
        g.restype = ctypes.c_int
    _MAX_LAYERS[id(lib)] = lib.lf_cfc_maxlayers()


_LIB = abi.KernelLibrary("cfc", abi.CFC_ABI_VERSION, abi.CFC_STRUCTS, _setup)


def _strided(t: Tensor | None) -> abi.LfStrided:
    if t is None:
        return abi.LfStrided()
    return abi.LfStrided(t.data_ptr(), t.stride(0), t.stride(1) if t.dim() > 1 else 0)


def _data(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _layers(specs: list[CfCLayerSpec], params: list[list[Tensor | None]], saves: list[list[Tensor | None]],
            outs: list[list[Tensor | None]]) -> ctypes.Array[abi.LfCfcLayer]:  # fmt: skip
    """The layers as cfc.c reads them: sizes, options, weights with their strides, buffers."""
    layers = (abi.LfCfcLayer * len(specs))()
    off = 0
    for l, (sp, y) in enumerate(zip(specs, layers)):
        WxT, WhT, b, HwT, hb = params[l]
        Z, Fh, G, ZD = saves[l]
        dU, gWxT, gWhT, gb, gHwT, ghb = outs[l]
        y.hidden, y.width, y.backbone, y.no_gate, y.offset = sp.hidden, sp.width, sp.backbone, sp.mode == "no_gate", off
        y.activation = abi.CFC_ACTIVATIONS[sp.activation]
        if l > 0:  # layer 0's input map is the caller's P
            y.in_size = 0 if WxT is None else WxT.shape[0]
            y.wx_t, y.b = _strided(WxT), _strided(b)
        y.wh_t, y.hw_t, y.hb = _strided(WhT), _strided(HwT), _strided(hb)
        y.z, y.f, y.g, y.zd = _data(Z), _data(Fh), _data(G), _data(ZD)
        y.grad_u, y.grad_wx_t, y.grad_wh_t = _data(dU), _data(gWxT), _data(gWhT)
        y.grad_b, y.grad_hw_t, y.grad_hb = _data(gb), _data(gHwT), _data(ghb)
        off += sp.hidden
    return layers


def _why_not_inputs(specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
                    params: list[list[Tensor | None]]) -> str | None:  # fmt: skip
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
    for l, sp in enumerate(specs):
        if sp.backbone and sp.activation not in abi.CFC_ACTIVATIONS:
            return f"layer {l}: backbone activation {sp.activation!r} is not in the C kernel"
        if sp.mode not in ("default", "no_gate"):
            return f"layer {l}: mode={sp.mode!r} is not in the C kernel (default, no_gate)"
        WxT, WhT, b, HwT, hb = params[l]
        H, K = sp.hidden, sp.width
        need: list[tuple[str, Tensor | None, tuple[int, ...]]] = [("WhT", WhT, (H, K))]
        if l > 0:
            need.append(("WxT", WxT, (specs[l - 1].hidden, K)))
            if b is not None:
                need.append(("b", b, (K,)))
        if sp.backbone:
            need += [("HwT", HwT, (K, 4 * H)), ("hb", hb, (4 * H,))]
        elif K != 4 * H:
            return f"layer {l}: width {K} without a backbone, expected 4 * hidden = {4 * H}"
        for name, p, shape in need:
            if p is None:
                return f"layer {l}: {name} is missing"
            if p.device.type != "cpu":
                return abi.not_cpu(p.device)
            if p.dtype != dtype:
                return abi.mixed_dtypes(f"P {dtype}, layer {l} {name} {p.dtype}")
            if tuple(p.shape) != shape:
                return f"shape: layer {l} {name} {tuple(p.shape)}, expected {shape}"
    return None


def _resolve(specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
             params: list[list[Tensor | None]]) -> ctypes.CDLL | str:  # fmt: skip
    """The library to run the call, or why not."""
    if not _native.enabled():
        return abi.SWITCHED_OFF
    reason = _why_not_inputs(specs, P, ts, keep, h0, params) or _LIB.why_not()
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
            params: list[list[Tensor | None]]) -> str | None:  # fmt: skip
    """None when :func:`chain` runs the C kernel for these arguments, else the reason it does not."""
    lib = _resolve(specs, P, ts, keep, h0, params)
    return lib if isinstance(lib, str) else None


Saves = list[list[Tensor | None]]


def _save_widths(sp: CfCLayerSpec) -> tuple[int, int, int, int]:
    """Columns the forward pass saves per step for the backward pass: z, [f1, f2], g, act'(u) (0: none)."""
    K = sp.width if sp.backbone else 0
    return K, 2 * sp.hidden, sp.hidden, K if sp.activation in abi.CFC_SAVE_DERIVATIVE else 0


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


def _forward(lib: Any, specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
             params: list[list[Tensor | None]], save: bool) -> tuple[Tensor, Saves, int]:  # fmt: skip
    """States (T, B, N), the saved activations per layer [Z, F, G, ZD] and the merged flag."""
    T, B, K0 = P.shape
    N = h0.shape[1]
    saves: list[list[Tensor | None]] = [[None, None, None, None] for _ in specs]
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
    layers = _layers(specs, params, saves, [[None] * 6] * len(specs))
    fn = getattr(lib, f"lf_cfc_forward_{_SFX[P.dtype]}")
    kp = keep.data_ptr() if keep is not None else None
    merged = fn(len(specs), layers, T, B, N, P.data_ptr(), K0, ts.data_ptr(), kp, h0.data_ptr(), S.data_ptr(),
                int(_MERGE), torch.get_num_threads())  # fmt: skip
    if merged < 0:
        raise MemoryError("liquidflow's native CfC kernel could not allocate its scratch memory")
    return S, saves, merged


class _NativeCfCChain(torch.autograd.Function):
    """``_fused._CfCChain`` with the time loops (forward and adjoint) in C."""

    @staticmethod
    def forward(ctx: Any, specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
                *flat: Tensor | None) -> Tensor:  # fmt: skip
        lib = _LIB.get()
        params = [list(flat[5 * l : 5 * l + 5]) for l in range(len(specs))]
        S, saves, merged = _forward(lib, specs, P, ts, keep, h0, params, save=True)
        ctx.specs, ctx.merged = specs, merged
        ctx.pool_dP = P.grad_fn is not None  # dP only flows on into P's graph (never kept as a leaf's .grad)
        ctx.c = float(ts.reshape(-1)[0]) if merged else 0.0
        ctx.nsave = [sum(x is not None for x in s) for s in saves]
        kept = [x for s in saves for x in s if x is not None]
        ctx.save_for_backward(ts, keep, h0, S, *kept, *flat)
        return S

    @staticmethod
    def backward(ctx: Any, gS: Tensor) -> tuple[Tensor | None, ...]:
        from .fused import _refuse_double_backward

        _refuse_double_backward()
        specs: list[CfCLayerSpec] = ctx.specs
        L = len(specs)
        ts, keep, h0, S, *rest = ctx.saved_tensors
        nk = sum(ctx.nsave)
        kept, flat = rest[:nk], rest[nk:]
        params = [list(flat[5 * l : 5 * l + 5]) for l in range(L)]
        saves: list[list[Tensor | None]] = []
        it = iter(kept)
        for sp in specs:
            saves.append([next(it) if w else None for w in _save_widths(sp)])
        T, B, N = S.shape
        gS = gS.contiguous()
        need = ctx.needs_input_grad
        # outputs per layer: [dU (layer 0: dP), then the gradients of WxT, WhT, b, HwT, hb where needed]
        outs: list[list[Tensor | None]] = []
        for l, p in enumerate(params):
            out: list[Tensor | None] = [None]
            if l == 0 and need[1]:
                K0 = specs[0].width
                dP = _POOL.take(T * B * K0, S.dtype) if ctx.pool_dP else S.new_empty(T * B * K0)
                out[0] = dP.view(T, B, K0)
            for k, w in enumerate(p):  # layer 0 has no WxT and b here (its input map is P's)
                wanted = w is not None and need[5 + 5 * l + k] and (l > 0 or k in (1, 3, 4))
                out.append(torch.empty(w.shape, dtype=w.dtype) if wanted else None)  # type: ignore[union-attr]
            outs.append(out)
        gh0 = S.new_empty(B, N)
        lib = _LIB.get()
        if lib is None:
            raise RuntimeError("liquidflow's native CfC kernel became unavailable between forward and backward")
        layers = _layers(specs, params, saves, outs)
        fn = getattr(lib, f"lf_cfc_backward_{_SFX[S.dtype]}")
        kp = keep.data_ptr() if keep is not None else None
        rc = fn(L, layers, T, B, N, ts.data_ptr(), kp, h0.data_ptr(), S.data_ptr(), gS.data_ptr(), gh0.data_ptr(),
                int(ctx.merged), torch.get_num_threads())  # fmt: skip
        if rc == -2:
            raise RuntimeError(
                "liquidflow's native CfC kernel was called without the buffers it needs; please report this"
            )
        if rc < 0:
            raise MemoryError("liquidflow's native CfC kernel could not allocate its scratch memory")
        grads = [g for o in outs for g in o[1:]]
        return (None, outs[0][0], None, None, gh0 if need[4] else None, *grads)


def chain(specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
          params: list[list[Tensor | None]]) -> Tensor | None:  # fmt: skip
    """States (T, B, N) as ``_fused.cfc_chain``, or None where the C kernel does not apply (see :func:`why_not`)."""
    lib = _resolve(specs, P, ts, keep, h0, params)
    if isinstance(lib, str):
        return None
    return run(lib, specs, P, ts, keep, h0, params)


def run(lib: ctypes.CDLL, specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
        params: list[list[Tensor | None]]) -> Tensor:  # fmt: skip
    """:func:`chain` on a library :func:`resolve` returned for these arguments (checks not repeated)."""
    T, B, _ = P.shape
    P = P.contiguous()
    ts = ts.reshape(T, B).contiguous()
    keep = keep.reshape(T, B).contiguous() if keep is not None else None
    h0 = h0.contiguous()
    flat = [p for layer in params for p in layer]
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (P, h0, *flat)):
        return _NativeCfCChain.apply(specs, P, ts, keep, h0, *flat)  # type: ignore[no-any-return]
    return _forward(lib, specs, P, ts, keep, h0, params, save=False)[0]
