"""Fused CfC sequence kernel (see :mod:`.fused`): a chain of CfC layers (one with a backbone, or the
wired layers of an NCP) over a whole sequence, one autograd node with a hand-written backward pass,
and the chain's one-step form for streaming."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .._spec import LECUN_A, LECUN_B, CfCLayer
from .switch import refuse_double_backward

Tensor = torch.Tensor
_tanh_bw = torch.ops.aten.tanh_backward.grad_input
_sigmoid_bw = torch.ops.aten.sigmoid_backward.grad_input

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
        refuse_double_backward()
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
