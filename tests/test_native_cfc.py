"""The C kernels of CfC chains (liquidflow/_native/cfc.c via liquidflow._ops.native_cfc).

Each configuration runs with the native kernels on and off (``use_native(False)``: the torch fused
kernel of ``_fused``); outputs, final states and the gradients of every parameter, the input and the
initial state must agree to 1e-10 in float64 and 1e-5 in float32. Cases cover uniform elapsed
times (the gate heads merged, and not), per-sample timespans, masks, initial states, batch sizes
that are not multiples of the register tile, and one or two threads.
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
from liquidflow._ops import native_cfc as _native_cfc
from liquidflow._ops.fused import CfCLayerSpec
from liquidflow.torch import CfC
from liquidflow.wirings import NCP, AutoNCP

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
EXTRA = {
    "cfc-tanh": lambda: CfC(INPUT_SIZE, 5, activation="tanh", backbone_units=20),
    "cfc-wide": lambda: CfC(INPUT_SIZE, 19, backbone_units=40),  # more than one register panel, tails
    "wcfc-autoncp-big": lambda: CfC(INPUT_SIZE, AutoNCP(24, 5, seed=2)),
    "wcfc-ncp-deep": lambda: CfC(INPUT_SIZE, NCP(5, 4, 3, 2, 2, 2, 2, seed=1)),
}
NAMES = ["cfc-default", "cfc-no_gate", "cfc-nobackbone", "wcfc-autoncp", "wcfc-ncp-no_gate", "wcfc-fc", *EXTRA]


@pytest.fixture(autouse=True)
def _native_available() -> None:
    require_native("cfc")


def _layer(name: str, dtype: torch.dtype) -> torch.nn.Module:
    if name in LAYERS:
        return make_layer(name, dtype)
    torch.manual_seed(0)
    layer = EXTRA[name]().to(dtype)
    with torch.no_grad():
        for pname, p in layer.named_parameters():
            if pname.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return layer


def _close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    close_scaled(a, b, TOL[dtype], what)


class _Count:
    """Counts the C forward passes (the native kernel was really taken)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = _native_cfc._forward

        def wrapped(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(_native_cfc, "_forward", wrapped)


def _compare(layer, x, dt, mask, h0, dtype, monkeypatch, return_sequences=True) -> None:
    count = _Count(monkeypatch)
    fast = run_with_grads(layer, x, dt, mask, h0, True, return_sequences)
    assert count.calls == 1, "the native kernel was not used"
    slow = run_with_grads(layer, x, dt, mask, h0, False, return_sequences)
    assert count.calls == 1
    _close(fast[0], slow[0], dtype, "output")
    _close(fast[1], slow[1], dtype, "final state")
    names = [n for n, p in layer.named_parameters() if p.requires_grad] + ["input", "hx"]
    for n, a, b in zip(names, fast[2], slow[2]):
        _close(a, b, dtype, f"gradient of {n}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ["uniform", "float-dt", "per-sample", "masked", "hx-last", "unmerged"])
@pytest.mark.parametrize("name", NAMES)
def test_native_matches_torch_kernel(name: str, case: str, dtype: torch.dtype, monkeypatch) -> None:
    layer = _layer(name, dtype)
    B, T = 5, 7
    x, dt, mask = random_batch(B, T, dtype, seed=1, masked=case == "masked")
    ts: torch.Tensor | float | None = dt
    if case in ("uniform", "unmerged"):
        ts = None  # every step 1.0: the gate heads merge (unless switched off)
    elif case == "float-dt":
        ts = 0.37
    h0 = None
    if case in ("hx-last", "masked"):
        h0 = 0.3 * torch.randn(B, layer.state_size, dtype=dtype, generator=torch.Generator().manual_seed(3))
    if case == "unmerged":
        monkeypatch.setattr(_native_cfc, "_MERGE", False)
    _compare(layer, x, ts, mask, h0, dtype, monkeypatch, return_sequences=case != "hx-last")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("B", [1, 3, 4, 9, 13])
@pytest.mark.parametrize("name", ["cfc-wide", "wcfc-autoncp-big"])
def test_batch_sizes_and_threads(name: str, B: int, threads: int, monkeypatch) -> None:
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        dtype = torch.float64
        layer = _layer(name, dtype)
        x, dt, mask = random_batch(B, 6, dtype, seed=B, masked=True)
        h0 = 0.2 * torch.randn(B, layer.state_size, dtype=dtype, generator=torch.Generator().manual_seed(B))
        _compare(layer, x, dt, mask, h0, dtype, monkeypatch)
        _compare(layer, x, None, None, None, dtype, monkeypatch)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_benchmark_sized_models(dtype: torch.dtype, monkeypatch) -> None:
    """CfC(20, 64) and CfC on AutoNCP(32, 10) at batch 32: the sizes the kernels are tuned for."""
    for make in (lambda: CfC(20, 64), lambda: CfC(20, AutoNCP(32, 10))):
        torch.manual_seed(0)
        layer = make().to(dtype)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(32, 20, 20, generator=g, dtype=dtype)
        dt = torch.rand(32, 20, generator=g, dtype=dtype) + 0.5
        _compare(layer, x, None, None, None, dtype, monkeypatch)
        _compare(layer, x, dt, None, None, dtype, monkeypatch)


def test_partial_gradients_and_inference(monkeypatch) -> None:
    """Only some inputs need gradients (frozen weights, input only); no_grad takes the forward-only kernel."""
    dtype = torch.float64
    layer = _layer("cfc-default", dtype)
    x, dt, _ = random_batch(3, 5, dtype, seed=6)
    for p in layer.cell.backbone.parameters():
        p.requires_grad_(False)
    _compare(layer, x, dt, None, None, dtype, monkeypatch)
    for p in layer.parameters():
        p.requires_grad_(False)
    _compare(layer, x, None, None, None, dtype, monkeypatch)  # the input's gradient alone
    count = _Count(monkeypatch)
    with torch.no_grad():
        a, ha = layer(x, timespans=dt)
        with _native.use_native(False):
            b, hb = layer(x, timespans=dt)
    assert count.calls == 1
    _close(a, b, dtype, "inference output")
    _close(ha, hb, dtype, "inference state")


def test_falls_back_where_it_does_not_apply(monkeypatch) -> None:
    layer = _layer("cfc-default", torch.float64)
    x, dt, _ = random_batch(2, 4, torch.float64)
    count = _Count(monkeypatch)
    with torch.no_grad(), _native.use_native(False):
        layer(x, timespans=dt)
    assert count.calls == 0
    spec, params, Wx, b = layer.cell.fused_plan(fold=False)  # lecun_tanh applied in C, not folded
    P = torch.nn.functional.linear(x.transpose(0, 1), Wx, b)
    ts = dt.t().unsqueeze(-1)
    h0 = torch.zeros(2, layer.state_size, dtype=torch.float64)
    unfolded = _native_cfc.chain([spec], P, ts, None, h0, [params])
    assert spec.lecun and unfolded is not None
    assert _fused.cfc_why_not([spec]) == (
        "backbone_activation lecun_tanh not folded into the weights: the fused torch kernel takes tanh and lecun_tanh"
    )
    spec, params, Wx, b = layer.cell.fused_plan()
    P = torch.nn.functional.linear(x.transpose(0, 1), Wx, b)
    folded = _native_cfc.chain([spec], P, ts, None, h0, [params])
    assert folded is not None and spec.activation == "tanh" and _fused.cfc_why_not([spec]) is None
    _close(unfolded.detach(), folded.detach(), torch.float64, "lecun_tanh in C vs folded into the weights")
    assert _native_cfc.chain([spec], P.half(), ts.half(), None, h0.half(), [params]) is None  # dtype
    assert _native_cfc.chain([spec], P, ts.float(), None, h0, [params]) is None  # mixed dtypes


def test_double_backward_is_refused() -> None:
    layer = _layer("wcfc-autoncp", torch.float64)
    x, dt, _ = random_batch(2, 3)
    x.requires_grad_()
    with _native.use_native(True):
        out, _ = layer(x, timespans=dt)
        with pytest.raises(RuntimeError, match=r"double backward \(create_graph=True\)"):
            torch.autograd.grad(out.sum(), x, create_graph=True)


def test_chains_of_different_sizes_in_turn(monkeypatch) -> None:
    """Calls with other shapes in between (no state is kept across calls)."""
    dtype = torch.float64
    layer = _layer("wcfc-ncp-deep", dtype)
    x, dt, mask = random_batch(6, 5, dtype, seed=8, masked=True)
    _compare(layer, x, dt, mask, None, dtype, monkeypatch)
    _compare(layer, x[:2, :3], dt[:2, :3], None, None, dtype, monkeypatch)
    _compare(_layer("cfc-wide", dtype), x, dt, mask, None, dtype, monkeypatch)
    _compare(layer, x, dt, mask, None, dtype, monkeypatch)


def test_saved_buffers_are_not_reused_while_a_graph_holds_them(monkeypatch) -> None:
    """Two graphs alive at once, then both backward passes; buffers come back only after release."""
    dtype = torch.float64
    layer = _layer("cfc-default", dtype)
    x, dt, _ = random_batch(4, 6, dtype, seed=9)
    ref = []
    for xs in (x, 2.0 * x):
        with _native.use_native(False):
            out, _ = layer(xs, timespans=dt)
        ref.append(torch.autograd.grad(out.square().sum(), list(layer.parameters())))
    for _ in range(2):  # the second round takes the buffers the first one gave back
        count = _Count(monkeypatch)
        outs = [layer(xs, timespans=dt)[0] for xs in (x, 2.0 * x)]
        assert count.calls == 2
        for out, expected in zip(outs, ref):
            grads = torch.autograd.grad(out.square().sum(), list(layer.parameters()))
            for a, b in zip(grads, expected):
                _close(a, b, dtype, "gradient")
        del outs, out
        assert any(_native_cfc._POOL._free.values()), "the released graphs did not give their buffers back"
    monkeypatch.setattr(_native_cfc._POOL, "max_bytes", 0)  # nothing kept: fresh buffers every call
    out, _ = layer(x, timespans=dt)
    for a, b in zip(torch.autograd.grad(out.square().sum(), list(layer.parameters())), ref[0]):
        _close(a, b, dtype, "gradient without pooling")


def test_why_not_says_why(monkeypatch) -> None:
    """why_not gives the reason exactly where chain returns None, for what can be made on a CPU."""
    from liquidflow._ops import native_abi as abi

    layer = _layer("cfc-default", torch.float64)
    x, dt, _ = random_batch(2, 4, torch.float64)
    spec, params, Wx, b = layer.cell.fused_plan()
    P = torch.nn.functional.linear(x.transpose(0, 1), Wx, b)  # (T, B, K)
    ts = dt.t().unsqueeze(-1)
    h0 = torch.zeros(2, layer.state_size, dtype=torch.float64)
    half = [[p.half() if p is not None else None for p in params]]
    pure = CfCLayerSpec(spec.hidden, spec.width, True, "pure")
    deep = CfCLayerSpec(spec.hidden, spec.width, True, "default", depth=5)
    cases = [
        ("applies", ([spec], P, ts, None, h0, [params]), None),
        ("pure without A, w_tau", ([pure], P, ts, None, h0, [params]), "layer 0: 5 parameter tensors, expected 7"),
        ("deep", ([deep], P, ts, None, h0, [params]), "layer 0: 5 backbone layers; the C kernel takes at most 4"),
        ("float16", ([spec], P.half(), ts.half(), None, h0.half(), half), abi.not_float(torch.float16)),
        (
            "mixed",
            ([spec], P, ts.float(), None, h0, [params]),
            "mixed dtypes (P torch.float64, timespans torch.float32); the C kernels take one dtype for all tensors",
        ),
        (
            "ts grad",
            ([spec], P, ts.clone().requires_grad_(), None, h0, [params]),
            "timespans require grad; the C kernel gives no gradient for them",
        ),
        ("meta", ([spec], P.to("meta"), ts, None, h0, [params]), "tensors on meta; the C kernels take CPU tensors"),
        (
            "P width",
            ([spec], P[..., 1:], ts, None, h0, [params]),
            f"shape: P (4, 2, {spec.width - 1}), layer 0 has width {spec.width}",
        ),
        ("h0", ([spec], P, ts, None, h0[:, 1:], [params]), f"shape: h0 (2, {layer.state_size - 1}), expected (2, 6)"),
        (
            "mask",
            ([spec], P, ts, torch.ones(4, 2, 1), h0, [params]),
            "mask of dtype torch.float32; the C kernel takes torch.bool",
        ),
        ("weights", ([spec], P, ts, None, h0, [[None, None, *params[2:]]]), "layer 0: WhT is missing"),
    ]
    for what, args, reason in cases:
        assert _native_cfc.why_not(*args) == reason, what
        assert (_native_cfc.chain(*args) is None) == (reason is not None), what
    with _native.use_native(False):
        assert _native_cfc.why_not(*cases[0][1]) == abi.SWITCHED_OFF
        assert _native_cfc.chain(*cases[0][1]) is None
    monkeypatch.setitem(_native_cfc._MAX_LAYERS, id(_native.load("cfc")), 0)
    assert _native_cfc.why_not(*cases[0][1]) == "a chain of 1 layers; the C kernel takes at most 0"
    assert _native_cfc.chain(*cases[0][1]) is None


@pytest.mark.parametrize("activation", ["tanh", "lecun_tanh", "relu", "gelu", "silu"])
@pytest.mark.parametrize("merged", [False, True])
def test_every_backbone_activation_has_its_adjoint(activation: str, merged: bool) -> None:
    """The hand-written backward of each backbone activation (act'(u) from z, or the saved zd)
    against finite differences, with per-sample and with uniform elapsed times (merged heads)."""
    torch.manual_seed(3)
    T, B, H, K = 3, 5, 4, 7
    spec = CfCLayerSpec(H, K, True, "default", activation)
    f64 = {"dtype": torch.float64, "requires_grad": True}
    P, h0 = torch.randn(T, B, K, **f64), 0.3 * torch.randn(B, H, **f64)
    WhT, HwT, hb = 0.5 * torch.randn(H, K, **f64), 0.5 * torch.randn(K, 4 * H, **f64), torch.randn(4 * H, **f64)
    ts = torch.full((T, B, 1), 0.7, dtype=torch.float64) if merged else torch.rand(T, B, 1, dtype=torch.float64) + 0.2

    def run(P: torch.Tensor, h0: torch.Tensor, WhT: torch.Tensor, HwT: torch.Tensor, hb: torch.Tensor) -> torch.Tensor:
        out = _native_cfc.chain([spec], P, ts, None, h0, [[None, WhT, None, HwT, hb]])
        assert out is not None
        return out

    assert torch.autograd.gradcheck(run, (P, h0, WhT, HwT, hb))


@pytest.mark.parametrize(
    ("depth", "activation", "mode", "head", "dropout"),
    [
        (2, "relu", "default", "tanh", False),
        (3, "gelu", "no_gate", "tanh", True),
        (4, "silu", "default", "lecun_tanh", False),
        (2, "lecun_tanh", "pure", "tanh", True),
        (1, "tanh", "pure", "tanh", False),
        (0, "tanh", "pure", "tanh", False),
        (1, "relu", "no_gate", "lecun_tanh", True),
    ],
)
@pytest.mark.parametrize("merged", [False, True])
def test_backbone_layers_modes_heads_and_dropout_have_their_adjoint(depth, activation, mode, head, dropout,
                                                                    merged) -> None:  # fmt: skip
    """The hand-written backward of deeper backbones (W_k, b_k), the pure mode (A, w_tau), lecun_tanh
    heads and dropout multipliers against finite differences, per-sample and uniform elapsed times."""
    torch.manual_seed(4)
    T, B, H, K = 3, 5, 4, 7
    V = H if mode == "pure" else 4 * H
    width = K if depth else V
    spec = CfCLayerSpec(H, width, depth > 0, mode, activation, max(depth, 1), head, dropout)
    f64 = {"dtype": torch.float64, "requires_grad": True}
    P, h0 = torch.randn(T, B, width, **f64), 0.3 * torch.randn(B, H, **f64)
    params = [None, 0.5 * torch.randn(H, width, **f64), None]
    params += [0.5 * torch.randn(K, V, **f64), torch.randn(V, **f64)] if depth else [None, None]
    for _ in range(1, depth):
        params += [0.4 * torch.randn(K, K, **f64), 0.2 * torch.randn(K, **f64)]
    if mode == "pure":
        params += [1 + 0.2 * torch.randn(H, **f64), 0.3 * torch.randn(H, **f64)]
    drops = None
    if dropout:
        drops = [[(torch.rand(T, B, K) > 0.3).double() / 0.7 for _ in range(depth)]]
    ts = torch.full((T, B, 1), 0.7, dtype=torch.float64) if merged else torch.rand(T, B, 1, dtype=torch.float64) + 0.2
    wrt = [p for p in params if p is not None]

    def run(P: torch.Tensor, h0: torch.Tensor, *ws: torch.Tensor) -> torch.Tensor:
        it = iter(ws)
        ps = [None if p is None else next(it) for p in params]
        out = _native_cfc.chain([spec], P, ts, None, h0, [ps], drops)
        assert out is not None, _native_cfc.why_not([spec], P, ts, None, h0, [ps], drops)
        return out

    assert torch.autograd.gradcheck(run, (P, h0, *wrt))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"backbone_dropout": 0.3},
        {"backbone_dropout": 0.4, "backbone_layers": 3, "activation": "relu"},
        {"backbone_dropout": 0.2, "backbone_layers": 2, "activation": "gelu", "mode": "pure"},
    ],
)
def test_dropout_in_training_runs_the_c_kernel_with_the_loops_masks(kwargs, dtype, monkeypatch) -> None:
    """In training mode a sequence call draws its dropout multipliers once, (T, B, K) per backbone
    layer, and the C kernel and the loop use the same ones: same seed, same outputs and gradients."""
    from liquidflow.torch import explain, use_path

    torch.manual_seed(0)
    layer = CfC(INPUT_SIZE, 5, backbone_units=9, **kwargs).to(dtype).train()
    x, dt, mask = random_batch(4, 6, dtype, seed=2, masked=True)
    assert explain(layer, x, timespans=dt, mask=mask).path == "native"
    results = []
    for path in ("native", "loop"):
        count = _Count(monkeypatch)
        torch.manual_seed(5)
        xx = x.clone().requires_grad_()
        with use_path(path):
            y, h = layer(xx, timespans=dt, mask=mask)
        assert count.calls == (1 if path == "native" else 0)
        g = torch.Generator().manual_seed(7)
        loss = (y * torch.randn(y.shape, generator=g, dtype=dtype)).sum() + h.square().sum()
        params = [xx, *layer.parameters()]
        results.append((y.detach(), torch.autograd.grad(loss, params)))
    (y0, g0), (y1, g1) = results
    _close(y0, y1, dtype, "output")
    for a, b in zip(g0, g1):
        _close(a, b, dtype, "gradient")
    layer.eval()  # no dropout: the outputs differ from training's
    with torch.no_grad():
        y_eval, _ = layer(x, timespans=dt, mask=mask)
    assert float((y_eval - y0).abs().max()) > 1e-3
