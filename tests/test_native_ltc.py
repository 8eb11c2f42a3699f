"""The C kernels of the LTC (liquidflow/_native/ltc.c via liquidflow._ops.native_ltc).

Each case runs with the native kernels on and off (``use_native(False)``: the torch fused kernels of
``_fused`` and ``LTCCell.precompute``); outputs, final states and the gradients of every parameter,
the input and the initial state must agree to 1e-10 in float64 and 1e-5 in float32. Cases cover
the dense and the edge-list kernel, the sensory kernel, masks, per-sample timespans, initial states,
one or two threads, inputs of which only some need gradients, and the fallbacks.
"""

from __future__ import annotations

import pytest
import torch

from helpers import (
    INPUT_SIZE,
    LAYERS,
    close_scaled,
    make_layer,
    random_batch,
    require_native,
    run_with_grads,
)
from liquidflow import _native
from liquidflow._ops import fused as _fused
from liquidflow._ops import native_ltc as _native_ltc
from liquidflow._spec import TABLEAUX, ButcherTableau
from liquidflow.torch import LTC
from liquidflow.wirings import NCP, AutoNCP

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
DTYPES = pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
EXTRA = {
    "ltc-fc-wide": lambda: LTC(INPUT_SIZE, 19, ode_unfolds=3),  # vector tails (19 is no multiple of 8 or 16)
    "ltc-autoncp": lambda: LTC(INPUT_SIZE, AutoNCP(12, 3, seed=2)),  # edge list
    "ltc-ncp-nomap": lambda: LTC(INPUT_SIZE, NCP(5, 4, 3, 2, 2, 2, 2, seed=1), input_mapping=None, ode_unfolds=2),
}
NAMES = ["ltc-fc", "ltc-ncp", "ltc-linear-nomap", "ltc-euler", "ltc-heun", "ltc-autoncp-rk4", *EXTRA]


@pytest.fixture(autouse=True)
def _native_available() -> None:
    require_native("ltc")


@pytest.fixture(params=["1-thread", "2-threads"])
def threads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the kernels on one thread, or split the batch rows over two (whatever the work size)."""
    n = 1 if request.param == "1-thread" else 2
    monkeypatch.setattr(_native_ltc, "_THREADS_FROM", 0 if n > 1 else 10**18)
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    yield n
    torch.set_num_threads(old)


def _layer(name: str, dtype: torch.dtype) -> torch.nn.Module:
    if name in LAYERS:
        return make_layer(name, dtype)
    torch.manual_seed(0)
    return EXTRA[name]().to(dtype)


def _close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    close_scaled(a, b, TOL[dtype], what)


class _Count:
    """Counts the C calls per kernel (the native path was really taken)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = {}
        for name in ("_dense_forward", "_sparse_forward"):
            real = getattr(_native_ltc, name)

            def wrapped(*args, _real=real, _name=name, **kwargs):
                self.calls[_name] = self.calls.get(_name, 0) + 1
                return _real(*args, **kwargs)

            monkeypatch.setattr(_native_ltc, name, wrapped)
        real_s = _native_ltc._NativeSensory.forward

        def sensory(*args, **kwargs):
            self.calls["sensory"] = self.calls.get("sensory", 0) + 1
            return real_s(*args, **kwargs)

        monkeypatch.setattr(_native_ltc._NativeSensory, "forward", staticmethod(sensory))


# ------------------------------------------------------------------------------------------ layers
@DTYPES
@pytest.mark.parametrize("case", ["plain", "masked", "hx-last", "uniform-dt"])
@pytest.mark.parametrize("name", NAMES)
def test_native_matches_torch_kernels(name: str, case: str, dtype: torch.dtype, threads: int, monkeypatch) -> None:
    layer = _layer(name, dtype)
    B, T = 5, 7
    x, dt, mask = random_batch(B, T, dtype, seed=1, masked=case == "masked")
    if case == "uniform-dt":
        dt = None
    h0 = None
    if case == "hx-last":
        h0 = 0.3 * torch.randn(B, layer.state_size, dtype=dtype, generator=torch.Generator().manual_seed(3))
    rs = not case.endswith("last")
    count = _Count(monkeypatch)
    fast = run_with_grads(layer, x, dt, mask, h0, True, rs)
    sparse = layer.cell.synapse_count <= 0.35 * layer.state_size**2
    assert count.calls == {"_sparse_forward" if sparse else "_dense_forward": 1, "sensory": 1}, count.calls
    slow = run_with_grads(layer, x, dt, mask, h0, False, rs)
    assert sum(count.calls.values()) == 2, "use_native(False) still ran a C kernel"
    _close(fast[0], slow[0], dtype, "output")
    _close(fast[1], slow[1], dtype, "final state")
    names = [n for n, p in layer.named_parameters() if p.requires_grad] + ["input", "hx"]
    for n, a, b in zip(names, fast[2], slow[2]):
        _close(a, b, dtype, f"gradient of {n}")


@pytest.mark.parametrize("name", ["ltc-fc", "ltc-ncp", "ltc-midpoint", "ltc-autoncp-rk4"])
def test_frozen_weights_and_inference(name: str) -> None:
    """Only the input needs a gradient (the kernels skip the weight accumulators); no_grad runs save nothing."""
    layer = _layer(name, torch.float64)
    for p in layer.parameters():
        p.requires_grad_(False)
    x, dt, mask = random_batch(4, 6, torch.float64, seed=5, masked=True)
    grads = []
    for native in (True, False):
        xx = x.clone().requires_grad_()
        with _native.use_native(native):
            out, _ = layer(xx, timespans=dt, mask=mask)
        (gx,) = torch.autograd.grad(out.square().sum(), xx)
        grads.append(gx)
        with torch.no_grad(), _native.use_native(native):
            out_ng, _ = layer(x, timespans=dt, mask=mask)
        _close(out_ng, out.detach(), torch.float64, "no_grad output")
    _close(grads[0], grads[1], torch.float64, "gradient of the input")


def test_switching_native_off_between_forward_and_backward() -> None:
    layer = _layer("ltc-fc", torch.float64)
    x, dt, _ = random_batch(2, 4, torch.float64)
    out, _ = layer(x, timespans=dt)
    with _native.use_native(False):
        out.sum().backward()  # the backward pass uses the library of the forward pass
    g = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    with _native.use_native(False):
        layer(x, timespans=dt)[0].sum().backward()
    for a, p in zip(g, layer.parameters()):
        _close(a, p.grad, torch.float64, "gradient")


def test_double_backward_is_refused() -> None:
    layer = _layer("ltc-ncp", torch.float64)
    x, dt, _ = random_batch(2, 3)
    x.requires_grad_()
    out, _ = layer(x, timespans=dt)
    with pytest.raises(RuntimeError, match=r"double backward \(create_graph=True\) through liquidflow"):
        torch.autograd.grad(out.sum(), x, create_graph=True)


# ------------------------------------------------------------------------------------------ kernels
def _kernel_inputs(T: int, B: int, N: int, dtype: torch.dtype, masked: bool, E: int | None = None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return (torch.rand(*shape, generator=g, dtype=dtype) * (hi - lo) + lo).requires_grad_()

    shape = (N, N) if E is None else (E,)
    base = r(T, B, 2, N, lo=0.2, hi=1.0)
    C = r(T, B, N, lo=0.5, hi=3.0)
    h0 = r(B, N, lo=-0.5, hi=0.5)
    w, we, sigma, sm = r(*shape), r(*shape, lo=-1.0, hi=1.0), r(*shape, lo=3.0, hi=8.0), r(*shape, lo=1.0, hi=5.0)
    keep = torch.rand(T, B, 1, generator=g) > 0.3 if masked else None
    return base, C, keep, h0, w, we, sigma, sm


@DTYPES
@pytest.mark.parametrize("B", [5, 19], ids=["B5", "B19"])  # the edge-list kernel: one block of rows, or several
@pytest.mark.parametrize("masked", [False, True], ids=["all", "masked"])
@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_kernels_match_torch(kind: str, masked: bool, B: int, dtype: torch.dtype, threads: int) -> None:
    T, N, L = 6, 9, 3
    extra: tuple[torch.Tensor, ...] = ()
    E = None
    if kind == "sparse":
        adj = torch.rand(N, N, generator=torch.Generator().manual_seed(4)) < 0.3
        src, dst = adj.nonzero(as_tuple=True)
        extra, E = (src, dst), src.numel()
    base, C, keep, h0, w, we, sigma, sm = _kernel_inputs(T, B, N, dtype, masked, E)
    wrt = [base, C, h0, w, we, sigma, sm]
    gS = torch.randn(T, B, N, dtype=dtype, generator=torch.Generator().manual_seed(9))
    results = []
    for native in (True, False):
        fn = _fused.ltc_semi_implicit if kind == "dense" else _fused.ltc_sparse
        with _native.use_native(native):
            S = fn(L, base, C, keep, h0, w, we, sigma, sm, *extra)
        results.append((S.detach(), torch.autograd.grad((S * gS).sum(), wrt)))
    _close(results[0][0], results[1][0], dtype, "states")
    for n, a, b in zip(["base", "C", "h0", "w", "we", "sigma", "sm"], results[0][1], results[1][1]):
        _close(a, b, dtype, f"gradient of {n}")


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_kernels_pass_gradcheck(kind: str) -> None:
    T, B, N, L = 3, 2, 4, 2
    base, C, keep, h0, w, we, sigma, sm = _kernel_inputs(T, B, N, torch.float64, True, None if kind == "dense" else 7)
    keep[0] = True
    if kind == "dense":
        fn = lambda *a: _native_ltc.dense(L, a[0], a[1], keep, *a[2:])  # noqa: E731
    else:
        src = torch.tensor([0, 0, 1, 2, 3, 3, 2])
        dst = torch.tensor([1, 2, 2, 0, 3, 1, 2])
        fn = lambda *a: _native_ltc.sparse(L, a[0], a[1], keep, *a[2:], src, dst)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (base, C, h0, w, we, sigma, sm))


def _edges(N: int) -> tuple[torch.Tensor, torch.Tensor]:
    adj = torch.rand(N, N, generator=torch.Generator().manual_seed(4)) < 0.3
    src, dst = adj.nonzero(as_tuple=True)
    return src, dst


# an explicit method of three stages with every a_ij non-zero (Kutta's third-order method)
KUTTA3 = ButcherTableau("kutta3", 3, ((), (0.5,), (-1.0, 2.0)), (1 / 6, 2 / 3, 1 / 6), (0.0, 0.5, 1.0))


@DTYPES
@pytest.mark.parametrize("B", [5, 19], ids=["B5", "B19"])
@pytest.mark.parametrize("masked", [False, True], ids=["all", "masked"])
@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("solver", [*TABLEAUX, "kutta3"])
def test_explicit_kernels_match_torch(solver: str, kind: str, masked: bool, B: int, dtype: torch.dtype,
                                      threads: int) -> None:  # fmt: skip
    """The C kernels of the explicit solvers (any tableau) against the fused torch kernel, values and
    the gradients of every input (the torch kernel differentiates by autograd, one interval at a time)."""
    tableau = KUTTA3 if solver == "kutta3" else TABLEAUX[solver]
    T, N, L = 6, 9, 3
    edges = _edges(N) if kind == "sparse" else None
    base, C, keep, h0, w, we, sigma, sm = _kernel_inputs(
        T, B, N, dtype, masked, None if edges is None else edges[0].numel()
    )
    C = (C.detach() * 8).requires_grad_()  # c = C_m / h large enough for an explicit method to be stable
    wrt = [base, C, h0, w, we, sigma, sm]
    gS = torch.randn(T, B, N, dtype=dtype, generator=torch.Generator().manual_seed(9))
    if edges is None:
        S = _native_ltc.dense(L, base, C, keep, h0, w, we, sigma, sm, tableau)
    else:
        S = _native_ltc.sparse(L, base, C, keep, h0, w, we, sigma, sm, *edges, tableau)
    assert S is not None
    fast = (S.detach(), torch.autograd.grad((S * gS).sum(), wrt))
    S2 = _fused.ltc_explicit(L, tableau, base, C, keep, h0, w, we, sigma, sm, edges)
    slow = (S2.detach(), torch.autograd.grad((S2 * gS).sum(), wrt))
    _close(fast[0], slow[0], dtype, "states")
    for n, a, b in zip(["base", "C", "h0", "w", "we", "sigma", "sm"], fast[1], slow[1]):
        _close(a, b, dtype, f"gradient of {n}")


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("solver", ["midpoint", "rk4"])
def test_explicit_kernels_pass_gradcheck(kind: str, solver: str) -> None:
    T, B, N, L = 3, 2, 4, 2
    tableau = TABLEAUX[solver]
    base, C, keep, h0, w, we, sigma, sm = _kernel_inputs(T, B, N, torch.float64, True, None if kind == "dense" else 7)
    keep[0] = True
    C = (C.detach() * 4).requires_grad_()
    if kind == "dense":
        fn = lambda *a: _native_ltc.dense(L, a[0], a[1], keep, *a[2:], tableau)  # noqa: E731
    else:
        src = torch.tensor([0, 0, 1, 2, 3, 3, 2])
        dst = torch.tensor([1, 2, 2, 0, 3, 1, 2])
        fn = lambda *a: _native_ltc.sparse(L, a[0], a[1], keep, *a[2:], src, dst, tableau)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (base, C, h0, w, we, sigma, sm))


def test_explicit_solvers_take_the_kernels() -> None:
    """Every named solver runs on the C kernel (sequence) and the one-step kernels give the loop's step."""
    from liquidflow.torch import explain, use_path

    for solver in TABLEAUX:
        torch.manual_seed(0)
        layer = LTC(INPUT_SIZE, 5, solver=solver, ode_unfolds=4).double()
        x, dt, _ = random_batch(3, 4, torch.float64)
        assert explain(layer, x, timespans=dt).path == "native", solver
        h = 0.1 * torch.randn(3, 5, dtype=torch.float64)
        with torch.no_grad():
            with use_path("fused"):
                fast = layer.step(x[:, 0], h, dt[:, 0])
            with use_path("loop"):
                slow = layer.step(x[:, 0], h, dt[:, 0])
        _close(fast[1], slow[1], torch.float64, f"{solver} step state")
        _close(fast[0], slow[0], torch.float64, f"{solver} step output")


@DTYPES
def test_sensory_kernel_matches_precompute(dtype: torch.dtype, threads: int) -> None:
    layer = _layer("ltc-ncp", dtype)
    cell = layer.cell
    x = torch.randn(4, 3, INPUT_SIZE, dtype=dtype).requires_grad_()  # (T, B, I)
    leak = torch.randn(2, cell.state_size, dtype=dtype).requires_grad_()
    ws = cell.positive("sensory_w") * cell.sensory_sparsity_mask
    tables = (ws, ws * cell.sensory_erev, cell.sensory_sigma, cell.sensory_sigma * cell.sensory_mu)
    params = [p for p in cell.parameters() if p.requires_grad]
    native = _native_ltc.sensory(cell.map_inputs(x), leak, *tables)
    assert native is not None
    plain = cell.precompute(x) + leak
    _close(native.detach(), plain.detach(), dtype, "base")
    gb = torch.randn_like(plain)
    g1 = torch.autograd.grad((native * gb).sum(), [x, leak, *params], allow_unused=True)
    g2 = torch.autograd.grad((plain * gb).sum(), [x, leak, *params], allow_unused=True)
    for a, b in zip(g1, g2):
        assert (a is None) == (b is None)
        if a is not None:
            _close(a, b, dtype, "gradient")


def test_inputs_the_kernels_do_not_take_fall_back() -> None:
    base, C, keep, h0, w, we, sigma, sm = (
        t.detach() if t is not None else None for t in _kernel_inputs(2, 2, 3, torch.float64, True)
    )
    assert _native_ltc.dense(2, base, C, keep, h0, w, we, sigma, sm) is not None
    half = [t.to(torch.bfloat16) for t in (base, C, h0, w, we, sigma, sm)]
    assert _native_ltc.dense(2, half[0], half[1], keep, *half[2:]) is None  # dtype
    assert _native_ltc.dense(2, base, C, keep, h0, w.float(), we, sigma, sm) is None  # mixed dtypes
    assert _native_ltc.dense(2, base, C[:, :1], keep, h0, w, we, sigma, sm) is None  # shapes
    assert _native_ltc.dense(2, base, C, keep.float(), h0, w, we, sigma, sm) is None  # keep not bool
    src, dst = torch.tensor([0, 1]), torch.tensor([1, 5])  # 5 is out of range: torch raises its own error
    e = torch.ones(2, dtype=torch.float64)
    assert _native_ltc.sparse(2, base, C, keep, h0, e, e, e, e, src, dst) is None
    with _native.use_native(False):
        assert _native_ltc.dense(2, base, C, keep, h0, w, we, sigma, sm) is None
        assert _native_ltc.sensory(base[:, :, 0], base[0, 0], w, we, sigma, sm) is None


def test_non_contiguous_inputs() -> None:
    base, C, keep, h0, w, we, sigma, sm = (
        t.detach() if t is not None else None for t in _kernel_inputs(4, 3, 5, torch.float64, True)
    )
    args = (base, C, keep, h0, w.t(), we.t(), sigma.t(), sm.t())  # transposed views
    out = _native_ltc.dense(2, base.transpose(0, 1).contiguous().transpose(0, 1), *args[1:])
    with _native.use_native(False):
        ref = _fused.ltc_semi_implicit(2, *args)
    assert out is not None
    _close(out, ref, torch.float64, "states")


def test_why_not_says_why() -> None:
    """Each why_not gives the reason exactly where its kernel returns None, for what a CPU can make."""
    from liquidflow._ops import native_abi as abi

    T, B, N = 2, 3, 4
    base, C, keep, h0, w, we, sigma, sm = (
        t.detach() if t is not None else None for t in _kernel_inputs(T, B, N, torch.float64, True)
    )
    tables = [w, we, sigma, sm]
    dense = [
        ("applies", (2, base, C, keep, h0, *tables), None),
        (
            "float16",
            (2, base.half(), C.half(), keep, h0.half(), *(t.half() for t in tables)),
            abi.not_float(torch.float16),
        ),
        (
            "mixed",
            (2, base, C, keep, h0, w.float(), we, sigma, sm),
            "mixed dtypes (base torch.float64, w torch.float32); the C kernels take one dtype for all tensors",
        ),
        ("meta", (2, base, C.to("meta"), keep, h0, *tables), "tensors on meta; the C kernels take CPU tensors"),
        ("unfolds", (0, base, C, keep, h0, *tables), "ode_unfolds=0; the C kernel takes an int >= 1"),
        ("C shape", (2, base, C[:, :1], keep, h0, *tables), "shape: C (2, 1, 4), expected (2, 3, 4)"),
        ("table shape", (2, base, C, keep, h0, w[:, :2], we, sigma, sm), "shape: w (4, 2), expected (4, 4)"),
        ("mask", (2, base, C, keep.float(), h0, *tables), "mask of dtype torch.float32; the C kernel takes torch.bool"),
        (
            "base",
            (2, base[:, :, :1], C, keep, h0, *tables),
            "shape: base (2, 3, 1, 4); the C kernel takes (T, B, 2, N)",
        ),
    ]
    for what, args, reason in dense:
        assert _native_ltc.why_not_dense(*args) == reason, what
        assert (_native_ltc.dense(*args) is None) == (reason is not None), what
    e = torch.ones(2, dtype=torch.float64)
    sparse = [
        ("applies", (2, base, C, keep, h0, e, e, e, e, torch.tensor([0, 1]), torch.tensor([1, 3])), None),
        (
            "out of range",
            (2, base, C, keep, h0, e, e, e, e, torch.tensor([0, 1]), torch.tensor([1, 5])),
            "edge indices out of range [0, 4)",
        ),
        (
            "int32 indices",
            (2, base, C, keep, h0, e, e, e, e, torch.tensor([0, 1], dtype=torch.int32), torch.tensor([1, 3])),
            "src: dtype torch.int32, shape (2,); the C kernel takes int64 of shape (2,)",
        ),
        (
            "edge tables",
            (2, base, C, keep, h0, *tables, torch.tensor([0, 1]), torch.tensor([1, 3])),
            "shape: w (4, 4), expected (2,)",
        ),
    ]
    for what, args, reason in sparse:
        assert _native_ltc.why_not_sparse(*args) == reason, what
        assert (_native_ltc.sparse(*args) is None) == (reason is not None), what
    x, leak = torch.randn(T, B, 5, dtype=torch.float64), torch.randn(2, N, dtype=torch.float64)
    s_tables = [torch.rand(5, N, dtype=torch.float64) for _ in range(4)]
    sensory = [
        ("applies", (x, leak, *s_tables), None),
        ("float16", (x.half(), leak.half(), *(t.half() for t in s_tables)), abi.not_float(torch.float16)),
        ("leak", (x, leak[:1], *s_tables), "shape: leak (1, 4); the C kernel takes (2, N)"),
        ("tables", (x[..., :4], leak, *s_tables), "shape: sw (5, 4), expected (4, 4)"),
        ("x", (x[0], leak, *s_tables), "shape: x (3, 5); the C kernel takes (T, B, I)"),
    ]
    for what, args, reason in sensory:
        assert _native_ltc.why_not_sensory(*args) == reason, what
        assert (_native_ltc.sensory(*args) is None) == (reason is not None), what
    with _native.use_native(False):
        assert _native_ltc.why_not_dense(*dense[0][1]) == abi.SWITCHED_OFF
        assert _native_ltc.why_not_sparse(*sparse[0][1]) == abi.SWITCHED_OFF
        assert _native_ltc.why_not_sensory(*sensory[0][1]) == abi.SWITCHED_OFF


@DTYPES
@pytest.mark.parametrize("name", ["ltc-mixed-proj", "ltc-mixed-autoncp", "ltc-mixed-euler"])
def test_mixed_memory_runs_the_lstm_in_the_kernel(name: str, dtype: torch.dtype, threads: int) -> None:
    """Mixed memory on the dense and the edge-list C kernels: outputs, both final states and the
    gradients of every parameter, the input, h0 and c0 against the loop, with a loss on the final
    cell state too and a mask."""
    from liquidflow.torch import explain, use_path

    layer = make_layer(name, dtype)
    x, dt, mask = random_batch(5, 7, dtype, seed=2, masked=True)
    g = torch.Generator().manual_seed(3)
    h0 = [0.3 * torch.randn(5, layer.state_size, dtype=dtype, generator=g) for _ in range(2)]
    assert explain(layer, x, tuple(h0), timespans=dt, mask=mask).path == "native"
    results = []
    for path in ("native", "loop"):
        hx = tuple(t.clone().requires_grad_() for t in h0)
        xx = x.clone().requires_grad_()
        with use_path(path):
            y, (h, c) = layer(xx, hx, timespans=dt, mask=mask)
        loss = (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(5), dtype=dtype)).sum()
        loss = loss + (h * 0.3).sum() + (c * c).sum()
        params = [p for p in layer.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, [*params, xx, *hx])
        results.append((y.detach(), h.detach(), c.detach(), grads))
    for what, a, b in zip(["output", "h", "c"], results[0][:3], results[1][:3]):
        _close(a, b, dtype, what)
    names = [n for n, p in layer.named_parameters() if p.requires_grad] + ["input", "h0", "c0"]
    for n, a, b in zip(names, results[0][3], results[1][3]):
        _close(a, b, dtype, f"gradient of {n}")
