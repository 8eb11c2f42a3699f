"""Fused LTC sequence kernels (see :mod:`.fused`): the semi-implicit solver on dense synapse tables or
an edge list, and the explicit Runge-Kutta solvers, each one autograd node per sequence with a
hand-written (semi-implicit) or per-interval recomputed (explicit) backward pass; the one-step forms
for streaming."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .._spec import ButcherTableau
from .switch import refuse_double_backward

Tensor = torch.Tensor
_sigmoid_bw = torch.ops.aten.sigmoid_backward.grad_input
_sigmoid_bw_new = torch.ops.aten.sigmoid_backward


# ================================================================================================ semi-implicit
def _nd_dense(v: Tensor, bc: Tensor, W2: Tensor, sigma: Tensor, nsm: Tensor, A: Tensor, prod: Tensor,
              out: Tensor | None = None) -> Tensor:  # fmt: skip
    """[num, D] (B, 2, N) of a semi-implicit unfold at v on dense tables; A (B, N, N), prod (B, 2, N, N) scratch."""
    torch.addcmul(nsm, v.unsqueeze(2), sigma, out=A).sigmoid_()  # (B, N, N): pre i, post j
    return torch.sum(torch.mul(A.unsqueeze(1), W2, out=prod), dim=2, out=out).add_(bc)


def _ltc_forward(L: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, W2: Tensor, sigma: Tensor,
                 nsm: Tensor, edges: tuple[Tensor, Tensor] | None,
                 save: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    """The semi-implicit sequence on dense tables (``edges`` None) or an edge list: the states S, and
    with ``save`` the potentials V and [num, D] of every unfold for the backward pass."""
    T, B, _, N = base.shape
    S = base.new_empty(T, B, N)
    n = T if save else 1
    V = base.new_empty(n, L + 1, B, N)  # v before each unfold (and after the last)
    ND = base.new_empty(n, L, B, 2, N)  # [numerator, denominator] of each unfold
    BC = base.clone()
    BC[:, :, 1] += C  # (T, B, 2, N): [base numerator, base denominator + c]
    if edges is None:  # scratch of the dense tables
        A, prod = base.new_empty(B, N, N), base.new_empty(B, 2, N, N)
    Vt = [list(x.unbind(0)) for x in V.unbind(0)] * (1 if save else T)
    NDt = [list(x.unbind(0)) for x in ND.unbind(0)] * (1 if save else T)
    v = h0
    for t in range(T):
        c, bc, Vs, NDs = C[t], BC[t], Vt[t], NDt[t]
        Vs[0].copy_(v)
        vk = v
        for k in range(L):
            if edges is None:
                nd = _nd_dense(vk, bc, W2, sigma, nsm, A, prod, out=NDs[k])  # [num, D]
            else:
                src, dst = edges
                Ae = torch.addcmul(nsm, vk.index_select(1, src), sigma).sigmoid_()  # (B, E)
                nd = torch.index_add(bc, 2, dst, Ae.unsqueeze(1) * W2, out=NDs[k])  # [num, D] (B, 2, N)
            vk = torch.addcmul(nd[:, 0], c, vk, out=Vs[k + 1]).div_(nd[:, 1])  # (c v + num) / (c + den)
        if keep is not None:
            torch.where(keep[t], vk, v, out=S[t])
        else:
            S[t].copy_(vk)
        v = S[t]
    return S, (V if save else None), (ND if save else None)


# the adjoint of one semi-implicit unfold: (v_k, [d num, d den], d num, c) -> the adjoint at v_k
_UnfoldAdjoint = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def _ltc_adjoint(L: int, gS: Tensor, C: Tensor, keep: Tensor | None, V: Tensor, ND: Tensor,
                 unfold: _UnfoldAdjoint) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """The adjoint of :func:`_ltc_forward`, walking steps and unfolds in reverse: returns the gradients
    at base, C and h0. ``unfold(v_k, Q2, q, c)`` gives the adjoint at v_k from the unfold's
    Q2 = [d num, d den] (B, 2, N) (q = d num) and accumulates the weight gradients."""
    T, B, N = gS.shape
    gS = gS.contiguous()
    Q = gS.new_empty(T, L, B, 2, N)  # [d num, d den] of each unfold
    nV = V.neg()
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
            # v' = (c v + num) / D, D = c + den: d num = g / D, d den = -g v' / D (d c: after the loop)
            q = torch.div(g, Ds[k], out=Q2[:, 0])
            torch.mul(q, nVs[k + 1], out=Q2[:, 1])
            g = unfold(Vs[k], Q2, q, c)
        dh = g if carry is None else g.add_(carry)
    gbase = Q.sum(1)  # (T, B, 2, N)
    gC = (Q[:, :, :, 0] * (V[:, :-1] - V[:, 1:])).sum(1)  # d c = sum_k d num_k (v_k - v_k+1)
    return gbase, gC, dh


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
        S, V, ND = _ltc_forward(unfolds, base, C, keep, h0, torch.stack([we, w]), sigma, -sm, None, save)
        if save:
            ctx.unfolds = unfolds
            ctx.save_for_backward(C, keep, w, we, sigma, sm, V, ND)
        return S

    @staticmethod
    def backward(ctx: Any, gS: Tensor) -> tuple[Tensor | None, ...]:
        refuse_double_backward()
        C, keep, w, we, sigma, sm, V, ND = ctx.saved_tensors
        B, N = gS.shape[1:]
        # weight-gradient terms are accumulated per batch row and summed over the batch once at the end
        accW2 = gS.new_zeros(B, 2, N, N)
        accsig = gS.new_zeros(B, N, N)
        accdS = gS.new_zeros(B, N, N)
        nsm = -sm
        A = gS.new_empty(B, N, N)
        dA = gS.new_empty(B, N, N)
        dS = gS.new_empty(B, N, N)
        red = gS.new_empty(B, N)

        def unfold(vk: Tensor, Q2: Tensor, q: Tensor, c: Tensor) -> Tensor:
            torch.addcmul(nsm, vk.unsqueeze(2), sigma, out=A).sigmoid_()  # recomputed activations
            torch.mul(q.unsqueeze(1), we, out=dA)
            dA.addcmul_(Q2[:, 1].unsqueeze(1), w)  # d a_ij = d num_j E_ij w_ij + d den_j w_ij
            accW2.addcmul_(A.unsqueeze(1), Q2.unsqueeze(2))
            _sigmoid_bw(dA, A, grad_input=dS)  # d of the sigmoid's argument
            accdS.add_(dS)
            accsig.addcmul_(dS, vk.unsqueeze(2))
            return torch.addcmul(torch.sum(dS.mul_(sigma), dim=2, out=red), q, c)

        gbase, gC, dh = _ltc_adjoint(ctx.unfolds, gS, C, keep, V, ND, unfold)
        gW2 = accW2.sum(0)
        return (None, gbase, gC, None, dh, gW2[1], gW2[0], accsig.sum(0), accdS.sum(0).neg_())


def ltc_semi_implicit(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
                      sigma: Tensor, sm: Tensor) -> Tensor:  # fmt: skip
    """States (T, B, N) of an LTC with the semi-implicit solver; see :class:`_LTCSemiImplicit`."""
    if not torch.is_grad_enabled():
        return _ltc_forward(unfolds, base, C, keep, h0, torch.stack([we, w]), sigma, -sm, None, save=False)[0]
    return _LTCSemiImplicit.apply(unfolds, base, C, keep, h0, w, we, sigma, sm)  # type: ignore[no-any-return]


def ltc_step(unfolds: int, base: Tensor, c: Tensor, v: Tensor, W2: Tensor, sigma: Tensor, nsm: Tensor) -> Tensor:
    """One interval of the semi-implicit LTC without autograd bookkeeping; base (B, 2, N), c (B, N) or (N,)."""
    B, N = v.shape
    A = v.new_empty(B, N, N)
    prod = v.new_empty(B, 2, N, N)
    nd = v.new_empty(B, 2, N)
    bc = base.clone()
    bc[:, 1] += c
    for _ in range(unfolds):
        _nd_dense(v, bc, W2, sigma, nsm, A, prod, out=nd)
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
        S, V, ND = _ltc_forward(unfolds, base, C, keep, h0, torch.stack([we, w]), sigma, -sm, (src, dst), save)
        if save:
            ctx.unfolds = unfolds
            ctx.save_for_backward(C, keep, w, we, sigma, sm, src, dst, V, ND)
        return S

    @staticmethod
    def backward(ctx: Any, gS: Tensor) -> tuple[Tensor | None, ...]:
        refuse_double_backward()
        C, keep, w, we, sigma, sm, src, dst, V, ND = ctx.saved_tensors
        B, E = gS.shape[1], src.numel()
        accW2 = gS.new_zeros(B, 2, E)
        accsig = gS.new_zeros(B, E)
        accdS = gS.new_zeros(B, E)
        nsm = -sm

        def unfold(vk: Tensor, Q2: Tensor, q: Tensor, c: Tensor) -> Tensor:
            vs = vk.index_select(1, src)  # (B, E) presynaptic potentials
            A = torch.addcmul(nsm, vs, sigma).sigmoid_()
            Qg = Q2.index_select(2, dst)  # (B, 2, E) at the postsynaptic neurons
            accW2.addcmul_(A.unsqueeze(1), Qg)
            dA = torch.mul(Qg[:, 0], we).addcmul_(Qg[:, 1], w)
            dS = _sigmoid_bw_new(dA, A)
            accdS.add_(dS)
            accsig.addcmul_(dS, vs)
            return torch.index_add(torch.mul(q, c), 1, src, dS.mul_(sigma))

        gbase, gC, dh = _ltc_adjoint(ctx.unfolds, gS, C, keep, V, ND, unfold)
        gW2 = accW2.sum(0)
        return (None, gbase, gC, None, dh, gW2[1], gW2[0], accsig.sum(0), accdS.sum(0).neg_(), None, None)


def ltc_sparse(unfolds: int, base: Tensor, C: Tensor, keep: Tensor | None, h0: Tensor, w: Tensor, we: Tensor,
               sigma: Tensor, sm: Tensor, src: Tensor, dst: Tensor) -> Tensor:  # fmt: skip
    """States (T, B, N) of an LTC on an edge list (semi-implicit solver); see :class:`_LTCSparse`."""
    if not torch.is_grad_enabled():
        W2 = torch.stack([we, w])
        return _ltc_forward(unfolds, base, C, keep, h0, W2, sigma, -sm, (src, dst), save=False)[0]
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
        refuse_double_backward()
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
