"""Fused sequence kernels: whole-sequence autograd Functions with hand-written backward passes.

The plain path (a Python loop over ``cell.step_pre``, autograd recording every operation) is the
reference. The kernels here compute the same equations (docs/math.md) over a whole sequence with
fewer and larger operations:

* the forward pass runs without autograd into preallocated time-major (T, B, .) buffers;
* the backward pass walks the sequence in reverse with the hand-derived adjoint of one step, and
  computes each weight gradient at the end as one matrix product over all T·B rows (CfC), or from
  per-row accumulators summed over the batch once (LTC);
* LTC recomputes its synaptic activations in the backward pass from the saved states, so training
  memory is O(T·B·N·unfolds) instead of O(T·B·N²·unfolds);
* with gradients off (inference, streaming) nothing is recorded or saved for a backward pass;
  ``step`` skips the general input normalisation for well-formed inputs.

Derived weights (masked, scaled, transposed) are rebuilt on every call, never cached across calls:
a cache could not see in-place edits made through ``.data``.

Which kernel runs is decided by :mod:`._dispatch` alone (these run on GPUs, and on CPU where the C
kernels do not apply). ``tests/test_conformance.py`` checks them against the numpy reference and
their gradients against the loop. :func:`use_fused` switches every kernel (C and torch) off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from .._spec import LECUN_A, LECUN_B, ButcherTableau, CfCLayer

Tensor = torch.Tensor
_tanh_bw = torch.ops.aten.tanh_backward.grad_input
_sigmoid_bw = torch.ops.aten.sigmoid_backward.grad_input
_sigmoid_bw_new = torch.ops.aten.sigmoid_backward

_ENABLED = True


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


def _refuse_double_backward() -> None:
    # backward runs with grad mode on only under create_graph=True: the hand-written adjoint is not
    # itself differentiable, so say so instead of returning wrong second derivatives
    if torch.is_grad_enabled():
        raise RuntimeError(
            "double backward (create_graph=True) through liquidflow's fused sequence kernel is not supported; "
            "run the layer inside `with liquidflow.torch.use_path('loop'):` for higher-order gradients"
        )


# ================================================================================================ CfC
CfCLayerSpec = CfCLayer  # the kernels' view of one CfC (sub-)layer, from liquidflow._spec


def cfc_why_not(specs: list[CfCLayerSpec]) -> str | None:
    """Why the fused sequence kernel (:func:`cfc_chain`) does not run this chain, or None when it does.

    Its backbone is one layer of tanh (lecun_tanh with its constants folded into the weights), relu,
    silu or gelu (act'(u) saved for the last two); the C kernel takes 2-4 backbone layers, pure mode,
    lecun_tanh heads, dropout and mixed memory besides."""
    for l, sp in enumerate(specs):
        if sp.mode not in ("default", "no_gate"):
            return f"layer {l}: mode={sp.mode!r} is not in the fused kernel (default, no_gate)"
        if sp.layers > 1:
            return f"layer {l}: {sp.layers} backbone layers; the fused torch kernel takes 0 or 1"
        if sp.head != "tanh":
            return f"layer {l}: head_activation={sp.head!r}; the fused torch kernel takes tanh heads"
        if sp.dropout:
            return f"layer {l}: backbone dropout in training; the fused torch kernel has none"
        if sp.memory:
            return "mixed_memory=True: the fused torch kernel has no LSTM (the C kernel has)"
        if sp.lecun:
            return (
                "backbone_activation lecun_tanh not folded into the weights: the fused torch kernel takes tanh and "
                "lecun_tanh"
            )
    return None


_SAVE_DERIVATIVE = ("silu", "gelu")  # their act'(u) is saved by the forward pass (relu's follows from z)


def _act_fwd(activation: str, u: Tensor, z: Tensor, zd: Tensor | None) -> Tensor:
    """z = act(u) into z for relu, silu, gelu (u is scratch); act'(u) into zd for silu and gelu."""
    if activation == "relu":
        return torch.clamp_min(u, 0.0, out=z)
    if activation == "silu":  # u s, d/du = s (1 + u (1 - s))
        s = torch.sigmoid(u)
        torch.mul(u, s, out=z)
        if zd is not None:
            torch.addcmul(s, s, u - z, out=zd)  # s + s (u - u s) = s (1 + u (1 - s))
        return z
    if activation == "gelu":  # u Phi(u), d/du = Phi(u) + u phi(u)
        cdf = torch.special.ndtr(u)
        torch.mul(u, cdf, out=z)
        if zd is not None:
            torch.addcmul(cdf, u, torch.exp(u * u * -0.5).mul_(0.3989422804014327), out=zd)
        return z
    raise ValueError(f"no fused backbone for activation {activation!r}")


def backbone_act(activation: str, u: Tensor) -> Tensor:
    """act(u) for the one-step kernel, in place where torch has an in-place form (u is scratch)."""
    if activation == "tanh":
        return u.tanh_()
    if activation == "lecun_tanh":
        return u.mul_(LECUN_B).tanh_().mul_(LECUN_A)
    if activation == "relu":
        return u.relu_()
    if activation == "silu":
        return F.silu(u, inplace=True)
    if activation == "gelu":
        return F.gelu(u)
    raise ValueError(f"backbone activation must be one of tanh, lecun_tanh, relu, silu, gelu; got {activation!r}")


def _cfc_forward(
    specs: list[CfCLayerSpec],
    P: Tensor,  # (T, B, K0): layer 0's first map applied to the inputs, bias included
    ts: Tensor,  # (T, B, 1)
    keep: Tensor | None,  # (T, B, 1) bool
    h0: Tensor,  # (B, N)
    params: list[list[Tensor | None]],  # per layer [WxT, WhT, b, HwT, hb]
    save: bool,
) -> tuple[Tensor, dict[str, Any]]:
    T, B, _ = P.shape
    Hs = [s.hidden for s in specs]
    offs = [sum(Hs[:l]) for l in range(len(specs))]
    S = P.new_empty(T, B, sum(Hs))  # the state after each step, layers concatenated
    # per-step views are made once here (one C++ call each) instead of by slicing inside the loop
    Pt, tst = P.unbind(0), ts.unbind(0)
    keept = keep.unbind(0) if keep is not None else None
    Zs: list[Tensor | None] = []
    ZDs: list[Tensor | None] = []  # act'(u) of silu and gelu backbones
    Fs: list[Tensor] = []
    Gs: list[Tensor] = []
    lay: list[Any] = []
    for l, sp in enumerate(specs):
        H = sp.hidden
        n = T if save else 1  # without gradients one step's scratch space is reused
        Z = P.new_empty(n, B, sp.width) if sp.backbone else None
        ZD = P.new_empty(n, B, sp.width) if sp.backbone and sp.activation in _SAVE_DERIVATIVE else None
        ZDs.append(ZD)
        V = P.new_empty(n, B, 4 * H) if sp.backbone else None
        Fh = P.new_empty(n, B, 2 * H)
        G = P.new_empty(n, B, H)
        Zs.append(Z)
        Fs.append(Fh)
        Gs.append(G)

        def views(x: Tensor | None, lo: int | None = None, hi: int | None = None) -> list[Tensor] | None:
            if x is None:
                return None
            v = x if lo is None else x[:, :, lo:hi]
            out = list(v.unbind(0))
            return out * T if len(out) == 1 and T > 1 else out

        lay.append(
            (
                views(Z),
                views(V),
                views(V, 0, 2 * H) if V is not None else None,
                views(V, 2 * H, 3 * H) if V is not None else None,
                views(V, 3 * H, 4 * H) if V is not None else None,
                views(Fh),
                views(Fh, 0, H),
                views(Fh, H, 2 * H),
                views(G),
                views(S, offs[l], offs[l] + H) if len(specs) > 1 else list(S.unbind(0)),
                views(ZDs[l]),
            )
        )
    # torch's CPU tanh is about ten times slower than its sigmoid, so the large tanh's (backbone and
    # heads, B x 128 values per step) are computed as tanh(x) = 2 sigmoid(2x) - 1, the doubling exact
    # in the matrix products (addmm's alpha/beta, the head rows of f1 and f2 scaled by 2)
    doubled: list[tuple[Tensor, Tensor, Tensor] | None] = []
    for l, sp in enumerate(specs):
        HwT, hb = params[l][3], params[l][4]
        if sp.backbone and HwT is not None and hb is not None:
            scale = torch.ones_like(hb)
            scale[: 2 * sp.hidden] = 2.0
            # the backbone's own input is doubled only for tanh (2 sigmoid(2u) - 1); other activations take u
            WhT = params[l][1] * 2.0 if sp.activation == "tanh" else params[l][1]  # type: ignore[operator]
            doubled.append((HwT * scale, hb * scale, WhT))  # type: ignore[arg-type,operator]
        else:
            doubled.append(None)
    if doubled[0] is not None and specs[0].activation == "tanh":
        Pt = (P * 2.0).unbind(0)
    # 0-dim tensors: a Python scalar operand costs a host-to-tensor conversion on every call
    two = torch.full((), 2.0, dtype=P.dtype, device=P.device)
    minus_one = torch.full((), -1.0, dtype=P.dtype, device=P.device)
    hs = list(torch.split(h0, Hs, dim=1))
    for t in range(T):
        dt = tst[t]
        y_prev: Tensor | None = None
        for l, sp in enumerate(specs):
            WxT, WhT, b, HwT, hb = params[l]
            Zt, Vt, Vf, Va, Vb, Ft, F1, F2, Gt, St, ZDt = lay[l]
            H = sp.hidden
            h = hs[l]
            dbl = doubled[l]
            if dbl is not None and sp.activation != "tanh":  # relu, silu, gelu: z = act(u), act'(u) saved
                z = _act_fwd(sp.activation, torch.addmm(Pt[t], h, dbl[2]), Zt[t], ZDt[t] if ZDt else None)
                torch.addmm(dbl[1], z, dbl[0], out=Vt[t])  # f1 and f2 rows doubled
                torch.addcmul(minus_one, torch.sigmoid(Vf[t], out=Ft[t]), two, out=Ft[t])  # tanh(f1), tanh(f2)
                va, vb = Va[t], Vb[t]
            elif dbl is not None:  # the backbone: z = tanh(u) = 2 sigmoid(2u) - 1, then the heads
                u2 = torch.addmm(Pt[t], h, dbl[2])  # 2u
                z = torch.addcmul(minus_one, torch.sigmoid(u2, out=Zt[t]), two, out=Zt[t])
                torch.addmm(dbl[1], z, dbl[0], out=Vt[t])  # f1 and f2 rows doubled
                torch.addcmul(minus_one, torch.sigmoid(Vf[t], out=Ft[t]), two, out=Ft[t])  # tanh(f1), tanh(f2)
                va, vb = Va[t], Vb[t]
            else:
                if l == 0:
                    u = torch.addmm(Pt[t], h, WhT)  # type: ignore[arg-type]
                else:
                    u = torch.addmm(b, y_prev, WxT)  # type: ignore[arg-type]
                    u.addmm_(h, WhT)  # type: ignore[arg-type]
                va, vb = u[:, 2 * H : 3 * H], u[:, 3 * H :]
                torch.tanh(u[:, : 2 * H], out=Ft[t])
            g = torch.sigmoid(torch.addcmul(vb, va, dt, value=-1.0), out=Gt[t])
            if keept is None:
                if sp.mode == "default":
                    new = torch.lerp(F2[t], F1[t], g, out=St[t])
                else:
                    new = torch.addcmul(F2[t], F1[t], g, out=St[t])
            else:
                new = torch.lerp(F2[t], F1[t], g) if sp.mode == "default" else torch.addcmul(F2[t], F1[t], g)
                new = torch.where(keept[t], new, h, out=St[t])
            hs[l] = new
            y_prev = new
    return S, {"Z": Zs, "F": Fs, "G": Gs, "offs": offs, "ZD": ZDs}


class _CfCChain(torch.autograd.Function):
    """A chain of CfC layers (one with a backbone, or the wired layers) over a whole sequence."""

    @staticmethod
    def forward(ctx: Any, specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
                *flat: Tensor | None) -> Tensor:  # fmt: skip
        params = [list(flat[5 * l : 5 * l + 5]) for l in range(len(specs))]
        save = any(ctx.needs_input_grad)
        S, saved = _cfc_forward(specs, P, ts, keep, h0, params, save)
        if save:
            ctx.specs = specs
            ctx.saved = saved
            ctx.save_for_backward(P, ts, keep, h0, S, *flat)
        return S

    @staticmethod
    def backward(ctx: Any, gS: Tensor) -> tuple[Tensor | None, ...]:
        _refuse_double_backward()
        specs: list[CfCLayerSpec] = ctx.specs
        P, ts, keep, h0, S, *flat = ctx.saved_tensors
        params = [list(flat[5 * l : 5 * l + 5]) for l in range(len(specs))]
        # transposed once here so each step multiplies by a contiguous matrix
        back = [[None if p is None else p.T.contiguous() for p in (WxT, WhT, HwT)] for WxT, WhT, _, HwT, _ in params]
        Z, Fh, G, offs = ctx.saved["Z"], ctx.saved["F"], ctx.saved["G"], ctx.saved["offs"]
        ZD = ctx.saved["ZD"]
        T, B, _ = P.shape
        L = len(specs)
        gS = gS.contiguous()
        ndt = ts.neg().unbind(0)
        dU = [P.new_empty(T, B, s.width) for s in specs]  # gradient at the first linear map's output
        dV = [P.new_empty(T, B, 4 * s.hidden) if s.backbone else None for s in specs]  # at the heads
        gSt = gS.unbind(0)
        keept = keep.unbind(0) if keep is not None else None
        zero = torch.zeros((), dtype=gS.dtype, device=gS.device)
        lay: list[Any] = []
        for l, sp in enumerate(specs):
            H = sp.hidden
            D: Any = dV[l] if sp.backbone else dU[l]  # (T, B, 4H): gradient at the heads
            lay.append(
                (
                    list(dU[l].unbind(0)),
                    list(D.unbind(0)),
                    list(D[:, :, :H].unbind(0)),
                    list(D[:, :, H : 2 * H].unbind(0)),
                    list(D[:, :, : 2 * H].unbind(0)),
                    list(D[:, :, 2 * H : 3 * H].unbind(0)),
                    list(D[:, :, 3 * H :].unbind(0)),
                    list(Z[l].unbind(0)) if Z[l] is not None else None,
                    list(Fh[l].unbind(0)),
                    list(Fh[l][:, :, :H].unbind(0)),
                    list(Fh[l][:, :, H:].unbind(0)),
                    list(G[l].unbind(0)),
                    list(gS[:, :, offs[l] : offs[l] + H].unbind(0)) if L > 1 else list(gSt),
                )
            )
        dh: list[Tensor | None] = [None] * L
        for t in range(T - 1, -1, -1):
            dy_next: Tensor | None = None  # gradient into layer l's output from layer l+1's input
            for l in range(L - 1, -1, -1):
                sp = specs[l]
                WxTb, WhTb, HwTb = back[l]
                dUt, dVt, d1, d2, d12, da, db, Zt, Ft, F1, F2, Gt, gSl = lay[l]
                dnew = gSl[t]
                dhl_next = dh[l]
                if dhl_next is not None:
                    dnew = dnew + dhl_next
                if dy_next is not None:
                    dnew = dnew + dy_next
                carry = None
                if keept is not None:
                    carry = torch.where(keept[t], zero, dnew)
                    dnew = torch.where(keept[t], dnew, zero)
                g = Gt[t]
                torch.mul(dnew, g, out=d1[t])  # d f1
                if sp.mode == "default":  # new = f2 + g (f1 - f2)
                    torch.sub(dnew, d1[t], out=d2[t])
                    dg = dnew * (F1[t] - F2[t])
                else:  # no_gate: new = f1 g + f2
                    d2[t].copy_(dnew)
                    dg = dnew * F1[t]
                _tanh_bw(d12[t], Ft[t], grad_input=d12[t])
                _sigmoid_bw(dg, g, grad_input=db[t])
                torch.mul(db[t], ndt[t], out=da[t])
                if sp.backbone and sp.activation == "tanh":
                    du = _tanh_bw(torch.mm(dVt[t], HwTb), Zt[t], grad_input=dUt[t])  # type: ignore[arg-type,index]
                elif sp.backbone:  # relu from z; silu and gelu from the saved act'(u)
                    dz = torch.mm(dVt[t], HwTb)  # type: ignore[arg-type]
                    dact = (Zt[t] > 0) if sp.activation == "relu" else ZD[l][t]  # type: ignore[index]
                    du = torch.mul(dz, dact, out=dUt[t])
                else:
                    du = dVt[t]
                dhl = torch.mm(du, WhTb)  # type: ignore[arg-type]
                dh[l] = dhl if carry is None else dhl.add_(carry)
                dy_next = torch.mm(du, WxTb) if l > 0 else None  # type: ignore[arg-type]
        # weight gradients: one product over all T*B rows per weight
        grads: list[Tensor | None] = []
        Hprev = torch.cat([h0.unsqueeze(0), S[:-1]], 0).reshape(T * B, -1)  # state before each step
        for l, sp in enumerate(specs):
            b = params[l][2]
            du2 = dU[l].reshape(T * B, -1)
            gWxT = gb = gHwT = ghb = None
            if l > 0:
                yp = S[:, :, offs[l - 1] : offs[l - 1] + specs[l - 1].hidden].reshape(T * B, -1)
                gWxT = yp.T @ du2
                gb = du2.sum(0) if b is not None else None
            gWhT = Hprev[:, offs[l] : offs[l] + sp.hidden].T @ du2
            if sp.backbone:
                dv2 = dV[l].reshape(T * B, -1)  # type: ignore[union-attr]
                gHwT = Z[l].reshape(T * B, -1).T @ dv2  # type: ignore[union-attr]
                ghb = dv2.sum(0)
            grads += [gWxT, gWhT, gb, gHwT, ghb]
        gh0 = [
            torch.zeros_like(h0[:, offs[l] : offs[l] + s.hidden]) if dh[l] is None else dh[l]
            for l, s in enumerate(specs)
        ]
        return (None, dU[0], None, None, torch.cat(gh0, dim=1), *grads)  # type: ignore[arg-type]


def cfc_chain(specs: list[CfCLayerSpec], P: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
              params: list[list[Tensor | None]], drops: Any = None, lstm: Any = None) -> Tensor:  # fmt: skip
    """States (T, B, N) of a chain of CfC layers; inputs are time-major (see :class:`_CfCChain`).
    ``drops`` and ``lstm`` must be None (no dropout, no mixed memory here: :func:`cfc_why_not`)."""
    why = cfc_why_not(specs)
    if why is not None or drops is not None or lstm is not None:
        raise ValueError(f"the fused CfC kernel does not run this chain: {why or 'dropout or mixed memory'}")
    flat = [p for layer in params for p in layer]
    if not torch.is_grad_enabled():
        return _cfc_forward(specs, P, ts, keep, h0, params, save=False)[0]
    return _CfCChain.apply(specs, P, ts, keep, h0, *flat)  # type: ignore[no-any-return]


# ================================================================================================ LTC
class _LTCSemiImplicit(torch.autograd.Function):
    """LTC with the fused semi-implicit solver over a whole sequence (docs/math.md, section 2).

    Inputs (time-major): ``base`` (T, B, 2, N) = [g_leak v_leak + Σ s E^s, g_leak + Σ s + ε],
    ``C`` (T, B, N) = C_m / (dt / L), the synapse tables ``w`` (masked), ``we`` = w E, ``sigma``,
    ``sm`` = sigma mu (N, N), ``h0`` (B, N) and ``keep`` (T, B, 1) or None. Returns (T, B, N).
    """

    @staticmethod
    def forward(ctx: Any, unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor,
                we: Tensor, sigma: Tensor, sm: Tensor) -> Tensor:  # fmt: skip
        save = any(ctx.needs_input_grad)
        S, V, ND = _ltc_forward(unfolds, base, C, keep, h0, torch.stack([we, w]), sigma, -sm, save)
        if save:
            ctx.unfolds = unfolds
            ctx.save_for_backward(C, keep, w, we, sigma, sm, V, ND)
        return S

    @staticmethod
    def backward(ctx: Any, gS: Tensor) -> tuple[Tensor | None, ...]:
        _refuse_double_backward()
        C, keep, w, we, sigma, sm, V, ND = ctx.saved_tensors
        L = ctx.unfolds
        T, B, N = gS.shape
        gS = gS.contiguous()
        Q = gS.new_empty(T, L, B, 2, N)  # [d num, d den] of each unfold
        nV = V.neg()
        # weight-gradient terms are accumulated per batch row and summed over the batch once at the end
        accW2 = gS.new_zeros(B, 2, N, N)
        accsig = gS.new_zeros(B, N, N)
        accdS = gS.new_zeros(B, N, N)
        nsm = -sm
        A = gS.new_empty(B, N, N)
        dA = gS.new_empty(B, N, N)
        dS = gS.new_empty(B, N, N)
        red = gS.new_empty(B, N)
        zero = torch.zeros((), dtype=gS.dtype, device=gS.device)
        dh = gS.new_zeros(B, N)
        for t in range(T - 1, -1, -1):
            g = gS[t] + dh
            carry = None
            if keep is not None:
                carry = torch.where(keep[t], zero, g)
                g = torch.where(keep[t], g, zero)
            c = C[t]
            Vs, nVs, Ds, Qs = V[t].unbind(0), nV[t].unbind(0), ND[t, :, :, 1].unbind(0), Q[t].unbind(0)
            for k in range(L - 1, -1, -1):
                vk, Q2 = Vs[k], Qs[k]
                # v' = (c v + num) / D, D = c + den: d num = g / D, d den = -g v' / D (d c: after the loop)
                q = torch.div(g, Ds[k], out=Q2[:, 0])
                torch.mul(q, nVs[k + 1], out=Q2[:, 1])
                torch.addcmul(nsm, vk.unsqueeze(2), sigma, out=A).sigmoid_()  # recomputed activations
                torch.mul(q.unsqueeze(1), we, out=dA)
                dA.addcmul_(Q2[:, 1].unsqueeze(1), w)  # d a_ij = d num_j E_ij w_ij + d den_j w_ij
                accW2.addcmul_(A.unsqueeze(1), Q2.unsqueeze(2))
                _sigmoid_bw(dA, A, grad_input=dS)  # d of the sigmoid's argument
                accdS.add_(dS)
                accsig.addcmul_(dS, vk.unsqueeze(2))
                g = torch.addcmul(torch.sum(dS.mul_(sigma), dim=2, out=red), q, c)
            dh = g if carry is None else g.add_(carry)
        gbase = Q.sum(1)  # (T, B, 2, N)
        gC = (Q[:, :, :, 0] * (V[:, :-1] - V[:, 1:])).sum(1)  # d c = sum_k d num_k (v_k - v_k+1)
        gW2 = accW2.sum(0)
        return (None, gbase, gC, None, dh, gW2[1], gW2[0], accsig.sum(0), accdS.sum(0).neg_())


def _ltc_forward(L: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, W2: Tensor, sigma: Tensor,
                 nsm: Tensor, save: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    T, B, _, N = base.shape
    S = base.new_empty(T, B, N)
    n = T if save else 1
    V = base.new_empty(n, L + 1, B, N)  # v before each unfold (and after the last)
    ND = base.new_empty(n, L, B, 2, N)  # [numerator, denominator] of each unfold
    BC = base.clone()
    BC[:, :, 1] += C  # (T, B, 2, N): [base numerator, base denominator + c]
    A = base.new_empty(B, N, N)
    prod = base.new_empty(B, 2, N, N)
    Vt = [list(x.unbind(0)) for x in V.unbind(0)] * (1 if save else T)
    NDt = [list(x.unbind(0)) for x in ND.unbind(0)] * (1 if save else T)
    v = h0
    for t in range(T):
        c, bc, Vs, NDs = C[t], BC[t], Vt[t], NDt[t]
        Vs[0].copy_(v)
        vk = v
        for k in range(L):
            torch.addcmul(nsm, vk.unsqueeze(2), sigma, out=A).sigmoid_()  # (B, N, N): pre i, post j
            nd = torch.sum(torch.mul(A.unsqueeze(1), W2, out=prod), dim=2, out=NDs[k]).add_(bc)  # [num, D]
            vk = torch.addcmul(nd[:, 0], c, vk, out=Vs[k + 1]).div_(nd[:, 1])  # (c v + num) / (c + den)
        if keep is not None:
            torch.where(keep[t], vk, v, out=S[t])
        else:
            S[t].copy_(vk)
        v = S[t]
    return S, (V if save else None), (ND if save else None)


def ltc_semi_implicit(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
                      sigma: Tensor, sm: Tensor) -> Tensor:  # fmt: skip
    """States (T, B, N) of an LTC with the semi-implicit solver; see :class:`_LTCSemiImplicit`."""
    if not torch.is_grad_enabled():
        return _ltc_forward(unfolds, base, C, keep, h0, torch.stack([we, w]), sigma, -sm, save=False)[0]
    return _LTCSemiImplicit.apply(unfolds, base, C, keep, h0, w, we, sigma, sm)  # type: ignore[no-any-return]


# ================================================================================================ one step
def cfc_chain_step(specs: list[CfCLayerSpec], p0: Tensor, dt: float | Tensor, h: Tensor,
                   params: list[list[Tensor | None]]) -> Tensor:  # fmt: skip
    """One step of a CfC chain without autograd bookkeeping (streaming); p0 (B, K0), h (B, N)."""
    hs = torch.split(h, [s.hidden for s in specs], dim=1) if len(specs) > 1 else (h,)
    y: Tensor | None = None
    news = []
    for l, sp in enumerate(specs):
        WxT, WhT, b, HwT, hb = params[l]
        H = sp.hidden
        if l == 0:
            u = torch.addmm(p0, hs[0], WhT)  # type: ignore[arg-type]
        else:
            u = torch.addmm(b, y, WxT).addmm_(hs[l], WhT)  # type: ignore[arg-type]
        if sp.backbone:
            z = backbone_act(sp.activation, u)
            v = torch.addmm(hb, z, HwT)  # type: ignore[arg-type]
        else:
            v = u
        f = torch.tanh(v[:, : 2 * H])
        if isinstance(dt, Tensor):
            g = torch.addcmul(v[:, 3 * H :], v[:, 2 * H : 3 * H], dt, value=-1.0).sigmoid_()
        else:
            g = torch.add(v[:, 3 * H :], v[:, 2 * H : 3 * H], alpha=-dt).sigmoid_()
        y = torch.lerp(f[:, H:], f[:, :H], g) if sp.mode == "default" else torch.addcmul(f[:, H:], f[:, :H], g)
        news.append(y)
    return news[0] if len(news) == 1 else torch.cat(news, dim=1)


def ltc_step(unfolds: int, base: Tensor, c: Tensor, v: Tensor, W2: Tensor, sigma: Tensor, nsm: Tensor) -> Tensor:
    """One interval of the semi-implicit LTC without autograd bookkeeping; base (B, 2, N), c (B, N) or (N,)."""
    B, N = v.shape
    A = v.new_empty(B, N, N)
    prod = v.new_empty(B, 2, N, N)
    nd = v.new_empty(B, 2, N)
    bc = base.clone()
    bc[:, 1] += c
    for _ in range(unfolds):
        torch.addcmul(nsm, v.unsqueeze(2), sigma, out=A).sigmoid_()
        torch.sum(torch.mul(A.unsqueeze(1), W2, out=prod), dim=2, out=nd).add_(bc)
        v = torch.addcmul(nd[:, 0], c, v).div_(nd[:, 1])
    return v


# ================================================================================================ sparse LTC
class _LTCSparse(torch.autograd.Function):
    """:class:`_LTCSemiImplicit` on the synapses that exist: an edge list ``src -> dst`` (E edges).

    For sparse wirings (an AutoNCP(32, 10) has 102 of 1024 possible synapses) the per-unfold work
    drops from B·N² to B·E values: gather the presynaptic potentials, one sigmoid per edge, and
    ``index_add`` into the postsynaptic neurons. Inputs as in the dense kernel, with the synapse
    tables given per edge: ``w``, ``we``, ``sigma``, ``sm`` (E,), ``src``, ``dst`` (E,) int64.
    """

    @staticmethod
    def forward(ctx: Any, unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor,
                we: Tensor, sigma: Tensor, sm: Tensor, src: Tensor, dst: Tensor) -> Tensor:  # fmt: skip
        save = any(ctx.needs_input_grad)
        S, V, ND = _ltc_sparse_forward(unfolds, base, C, keep, h0, torch.stack([we, w]), sigma, -sm, src, dst, save)
        if save:
            ctx.unfolds = unfolds
            ctx.save_for_backward(C, keep, w, we, sigma, sm, src, dst, V, ND)
        return S

    @staticmethod
    def backward(ctx: Any, gS: Tensor) -> tuple[Tensor | None, ...]:
        _refuse_double_backward()
        C, keep, w, we, sigma, sm, src, dst, V, ND = ctx.saved_tensors
        L = ctx.unfolds
        T, B, N = gS.shape
        E = src.numel()
        gS = gS.contiguous()
        Q = gS.new_empty(T, L, B, 2, N)  # [d num, d den] of each unfold
        nV = V.neg()
        accW2 = gS.new_zeros(B, 2, E)
        accsig = gS.new_zeros(B, E)
        accdS = gS.new_zeros(B, E)
        nsm = -sm
        zero = torch.zeros((), dtype=gS.dtype, device=gS.device)
        dh = gS.new_zeros(B, N)
        for t in range(T - 1, -1, -1):
            g = gS[t] + dh
            carry = None
            if keep is not None:
                carry = torch.where(keep[t], zero, g)
                g = torch.where(keep[t], g, zero)
            c = C[t]
            Vs, nVs, Ds, Qs = V[t].unbind(0), nV[t].unbind(0), ND[t, :, :, 1].unbind(0), Q[t].unbind(0)
            for k in range(L - 1, -1, -1):
                Q2 = Qs[k]
                q = torch.div(g, Ds[k], out=Q2[:, 0])
                torch.mul(q, nVs[k + 1], out=Q2[:, 1])
                vs = Vs[k].index_select(1, src)  # (B, E) presynaptic potentials
                A = torch.addcmul(nsm, vs, sigma).sigmoid_()
                Qg = Q2.index_select(2, dst)  # (B, 2, E) at the postsynaptic neurons
                accW2.addcmul_(A.unsqueeze(1), Qg)
                dA = torch.mul(Qg[:, 0], we).addcmul_(Qg[:, 1], w)
                dS = _sigmoid_bw_new(dA, A)
                accdS.add_(dS)
                accsig.addcmul_(dS, vs)
                g = torch.index_add(torch.mul(q, c), 1, src, dS.mul_(sigma))
            dh = g if carry is None else g.add_(carry)
        gbase = Q.sum(1)
        gC = (Q[:, :, :, 0] * (V[:, :-1] - V[:, 1:])).sum(1)
        gW2 = accW2.sum(0)
        return (None, gbase, gC, None, dh, gW2[1], gW2[0], accsig.sum(0), accdS.sum(0).neg_(), None, None)


def _ltc_sparse_forward(L: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, W2: Tensor, sigma: Tensor,
                        nsm: Tensor, src: Tensor, dst: Tensor,
                        save: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    T, B, _, N = base.shape
    S = base.new_empty(T, B, N)
    n = T if save else 1
    V = base.new_empty(n, L + 1, B, N)
    ND = base.new_empty(n, L, B, 2, N)
    BC = base.clone()
    BC[:, :, 1] += C
    Vt = [list(x.unbind(0)) for x in V.unbind(0)] * (1 if save else T)
    NDt = [list(x.unbind(0)) for x in ND.unbind(0)] * (1 if save else T)
    v = h0
    for t in range(T):
        c, bc, Vs, NDs = C[t], BC[t], Vt[t], NDt[t]
        Vs[0].copy_(v)
        vk = v
        for k in range(L):
            A = torch.addcmul(nsm, vk.index_select(1, src), sigma).sigmoid_()  # (B, E)
            nd = torch.index_add(bc, 2, dst, A.unsqueeze(1) * W2, out=NDs[k])  # [num, D] (B, 2, N)
            vk = torch.addcmul(nd[:, 0], c, vk, out=Vs[k + 1]).div_(nd[:, 1])
        if keep is not None:
            torch.where(keep[t], vk, v, out=S[t])
        else:
            S[t].copy_(vk)
        v = S[t]
    return S, (V if save else None), (ND if save else None)


def ltc_sparse(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
               sigma: Tensor, sm: Tensor, src: Tensor, dst: Tensor) -> Tensor:  # fmt: skip
    """States (T, B, N) of an LTC on an edge list (semi-implicit solver); see :class:`_LTCSparse`."""
    if not torch.is_grad_enabled():
        W2 = torch.stack([we, w])
        return _ltc_sparse_forward(unfolds, base, C, keep, h0, W2, sigma, -sm, src, dst, save=False)[0]
    return _LTCSparse.apply(unfolds, base, C, keep, h0, w, we, sigma, sm, src, dst)  # type: ignore[no-any-return]


# ================================================================================================ explicit LTC solvers
def _rk_interval(L: int, tableau: ButcherTableau, v: Tensor, bt: Tensor, c: Tensor, W2: Tensor, sigma: Tensor,
                 nsm: Tensor, edges: tuple[Tensor, Tensor] | None) -> Tensor:  # fmt: skip
    """One interval (``L`` unfolds) of the explicit method ``tableau``: v (B, N), bt (B, 2, N) without
    epsilon, c (B, N) = C_m / h, W2 = [we, w] (2, N, N) or (2, E) on ``edges``. With K_s = h k_s:
    u_s = v + sum_{i<s} a_si K_i, K_s = (num(u_s) - den(u_s) u_s) / c, v' = v + sum_s b_s K_s."""
    for _ in range(L):
        ks: list[Tensor] = []
        for row in tableau.a:
            u = v
            for coef, k in zip(row, ks):
                if coef != 0.0:
                    u = u + coef * k
            if edges is None:
                A = torch.addcmul(nsm, u.unsqueeze(2), sigma).sigmoid()  # (B, N, N): pre i, post j
                nd = (A.unsqueeze(1) * W2).sum(2) + bt  # (B, 2, N)
            else:
                src, dst = edges
                A = torch.addcmul(nsm, u.index_select(1, src), sigma).sigmoid()  # (B, E)
                nd = torch.index_add(bt, 2, dst, A.unsqueeze(1) * W2)
            ks.append((nd[:, 0] - nd[:, 1] * u) / c)
        out = v
        for coef, k in zip(tableau.b, ks):
            if coef != 0.0:
                out = out + coef * k
        v = out
    return v


class _LTCExplicit(torch.autograd.Function):
    """LTC with an explicit Runge-Kutta solver over a whole sequence, dense or on an edge list.

    Inputs as :class:`_LTCSemiImplicit` / :class:`_LTCSparse` (``base`` without epsilon), plus the
    ``tableau``. The forward pass keeps only the states; the backward pass recomputes one interval at
    a time from the state before it, with autograd, and applies its adjoint (memory O(T B N))."""

    @staticmethod
    def forward(ctx: Any, unfolds: int, tableau: ButcherTableau, base: Tensor, C: Tensor, keep: Tensor | None,
                h0: Tensor, w: Tensor, we: Tensor, sigma: Tensor, sm: Tensor, src: Tensor | None,
                dst: Tensor | None) -> Tensor:  # fmt: skip
        S = _ltc_explicit_forward(unfolds, tableau, base, C, keep, h0, w, we, sigma, sm, src, dst)
        if any(ctx.needs_input_grad):
            ctx.unfolds, ctx.tableau = unfolds, tableau
            ctx.save_for_backward(base, C, keep, h0, w, we, sigma, sm, src, dst, S)
        return S

    @staticmethod
    def backward(ctx: Any, gS: Tensor) -> tuple[Tensor | None, ...]:
        _refuse_double_backward()
        base, C, keep, h0, w, we, sigma, sm, src, dst, S = ctx.saved_tensors
        edges = None if src is None else (src, dst)
        T = base.shape[0]
        gbase, gC = torch.zeros_like(base), torch.zeros_like(C)
        tables = [w.detach().requires_grad_(), we.detach().requires_grad_(), sigma.detach().requires_grad_(),
                  sm.detach().requires_grad_()]  # fmt: skip
        gtab = [torch.zeros_like(t) for t in tables]
        dh = torch.zeros_like(h0)
        one = torch.ones((), dtype=C.dtype, device=C.device)
        for t in range(T - 1, -1, -1):
            g = gS[t] + dh
            v0 = (h0 if t == 0 else S[t - 1]).detach().requires_grad_()
            bt, ct = base[t].detach().requires_grad_(), C[t].detach().requires_grad_()
            with torch.enable_grad():
                c = ct if keep is None else torch.where(keep[t], ct, one)
                W2 = torch.stack([tables[1], tables[0]])
                vn = _rk_interval(ctx.unfolds, ctx.tableau, v0, bt, c, W2, tables[2], -tables[3], edges)
                if keep is not None:
                    vn = torch.where(keep[t], vn, v0)
                grads = torch.autograd.grad(vn, [v0, bt, ct, *tables], g)
            dh = grads[0]
            gbase[t], gC[t] = grads[1], grads[2]
            for acc, gr in zip(gtab, grads[3:]):
                acc.add_(gr)
        return (None, None, gbase, gC, None, dh, *gtab, None, None)


@torch.no_grad()
def _ltc_explicit_forward(L: int, tableau: ButcherTableau, base: Tensor, C: Tensor, keep: Tensor | None,
                          h0: Tensor, w: Tensor, we: Tensor, sigma: Tensor, sm: Tensor, src: Tensor | None,
                          dst: Tensor | None) -> Tensor:  # fmt: skip
    T = base.shape[0]
    S = base.new_empty(T, *h0.shape)
    edges = None if src is None or dst is None else (src, dst)
    W2, nsm = torch.stack([we, w]), -sm
    one = torch.ones((), dtype=C.dtype, device=C.device)
    v = h0
    for t in range(T):
        c = C[t] if keep is None else torch.where(keep[t], C[t], one)
        vn = _rk_interval(L, tableau, v, base[t], c, W2, sigma, nsm, edges)
        torch.where(keep[t], vn, v, out=S[t]) if keep is not None else S[t].copy_(vn)
        v = S[t]
    return S


def ltc_explicit(unfolds: int, tableau: ButcherTableau, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor,
                 w: Tensor, we: Tensor, sigma: Tensor, sm: Tensor,
                 edges: tuple[Tensor, Tensor] | None = None) -> Tensor:  # fmt: skip
    """States (T, B, N) of an LTC with the explicit solver ``tableau``, dense (tables (N, N)) or on
    ``edges`` (tables (E,)); see :class:`_LTCExplicit`."""
    src, dst = (None, None) if edges is None else edges
    if not torch.is_grad_enabled():
        return _ltc_explicit_forward(unfolds, tableau, base, C, keep, h0, w, we, sigma, sm, src, dst)
    out = _LTCExplicit.apply(unfolds, tableau, base, C, keep, h0, w, we, sigma, sm, src, dst)
    return out  # type: ignore[no-any-return]


def ltc_explicit_step(unfolds: int, tableau: ButcherTableau, base: Tensor, c: Tensor, v: Tensor, W2: Tensor,
                      sigma: Tensor, nsm: Tensor) -> Tensor:  # fmt: skip
    """One interval of an explicit LTC solver without autograd (streaming); base (B, 2, N) without
    epsilon, c (B, N) or (N,), W2 = [we, w] (2, N, N), nsm = -sigma mu."""
    return _rk_interval(unfolds, tableau, v, base, c, W2, sigma, nsm, None)
