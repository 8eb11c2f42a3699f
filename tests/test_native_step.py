"""The streaming step in C (liquidflow.torch._native_step, ``step.c``) against the torch paths.

``layer.step`` with gradients off runs one C call per step where it applies. Every layer
configuration of tests/helpers.py (and a few more: projections, activations, mappings) is stepped
over irregular intervals with the C kernel and with ``use_native(False)`` (the torch fast step or
the general path): outputs and states must agree to 1e-12 in float64 and ~1e-6 in float32, in
batches, unbatched, with per-sample elapsed times, strided inputs and after every kind of weight
edit. Where the kernel does not apply it must return None, and malformed calls must raise exactly
the errors of the torch path.
"""

from __future__ import annotations

import copy
import io
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import reference as ref
from helpers import INPUT_SIZE, LAYERS, make_layer, reference_step
from liquidflow import _native
from liquidflow._ops import fused as _fused
from liquidflow.torch import LTC, CfC, _native_step
from liquidflow.wirings import NCP, AutoNCP

EXTRA: dict[str, Callable[[], nn.Module]] = {
    "ltc-proj": lambda: LTC(INPUT_SIZE, 6, proj_size=3),
    "ltc-ncp-nomap-proj": lambda: LTC(
        INPUT_SIZE, NCP(4, 3, 2, 2, 2, 2, 2, seed=3), input_mapping=None, output_mapping="linear", proj_size=2
    ),
    "ltc-unfolds1-eps": lambda: LTC(INPUT_SIZE, 5, ode_unfolds=1, epsilon=1e-3),
    "cfc-tanh": lambda: CfC(INPUT_SIZE, 6, activation="tanh", backbone_units=8),
    "cfc-gelu": lambda: CfC(INPUT_SIZE, 6, activation="gelu", backbone_units=8),
    "cfc-silu-no_gate": lambda: CfC(INPUT_SIZE, 6, activation="silu", mode="no_gate", backbone_units=9),
    "cfc-pure-proj": lambda: CfC(INPUT_SIZE, 6, mode="pure", proj_size=2, backbone_units=8),
    "cfc-proj-same-size": lambda: CfC(INPUT_SIZE, 6, proj_size=6, backbone_units=8),
    "cfc-3layers-dropout": lambda: CfC(INPUT_SIZE, 5, backbone_layers=3, backbone_units=7, backbone_dropout=0.3),
    "cfc-nobackbone-no_gate": lambda: CfC(INPUT_SIZE, 6, backbone_layers=0, mode="no_gate"),
    "wcfc-autoncp-proj": lambda: CfC(INPUT_SIZE, AutoNCP(10, 3, seed=1), proj_size=2),
}
ALL = {**LAYERS, **EXTRA}
# where the C kernel does not apply: explicit LTC solvers, mixed memory (the hook never calls it), lecun_tanh heads
FALLBACK = [
    *("ltc-autoncp-rk4", "ltc-euler", "ltc-midpoint", "ltc-heun", "ltc-mixed-proj", "cfc-mixed-proj"),
    "cfc-paper-heads",
]
NATIVE = sorted(set(ALL) - set(FALLBACK))
DTYPES = [torch.float64, torch.float32]
TOL = {torch.float64: 1e-12, torch.float32: 2e-6}


@pytest.fixture(scope="module", autouse=True)
def _native_available() -> None:
    if _native.load("step") is None:
        reason = f"native step kernel unavailable: {_native.status().get('step')}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _make(name: str, dtype: torch.dtype, seed: int = 0) -> nn.Module:
    if name in LAYERS:
        layer = make_layer(name, dtype, seed)
    else:
        torch.manual_seed(seed)
        layer = EXTRA[name]().to(dtype)
        with torch.no_grad():  # off the symmetric initial values, as make_layer does
            for pname, p in layer.named_parameters():
                if pname.endswith(("input_b", "output_b", "bias", "w_tau")) or "vleak" in pname:
                    p.add_(0.1 * torch.randn_like(p))
                if pname.endswith(("input_w", "output_w", ".A")):
                    p.mul_(1.0 + 0.2 * torch.randn_like(p))
    return layer.eval()


def _flat(state: Any) -> torch.Tensor:
    return torch.cat([s.reshape(-1) for s in state]) if isinstance(state, tuple) else state.reshape(-1)


def _close(a: Any, b: Any, dtype: torch.dtype, what: str) -> None:
    a, b = _flat(a), _flat(b)
    assert a.shape == b.shape, f"{what}: shapes {tuple(a.shape)} vs {tuple(b.shape)}"
    scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
    err = float((a - b).abs().max()) if a.numel() else 0.0
    assert err <= TOL[dtype] * scale, f"{what}: max abs difference {err:.3g} (scale {scale:.3g})"


def _step(layer: nn.Module, x: Any, h: Any, dt: Any, native: bool) -> tuple[torch.Tensor, Any]:
    with torch.no_grad(), _native.use_native(native):
        return layer.step(x, h, dt)  # type: ignore[operator,no-any-return]


def _dts(kind: str, t: int, B: int, dtype: torch.dtype, g: torch.Generator) -> Any:
    """Elapsed times of step t: a float, or one per sample as (B,), (B, 1) or a strided column."""
    v = torch.rand(B, generator=g, dtype=dtype) * 2.0 + 0.05
    if kind == "float" or (kind == "mixed" and t % 3 == 0):
        return float(v[0])
    if kind == "column" or (kind == "mixed" and t % 3 == 1):
        return v.reshape(B, 1)
    if kind == "strided":
        return torch.stack([v, v], 1)[:, 0]  # stride 2
    return v


def _compare_run(layer: nn.Module, dtype: torch.dtype, B: int | None, dt_kind: str = "mixed", T: int = 25) -> None:
    """T steps with the native kernel and with the torch path, each carrying its own state."""
    g = torch.Generator().manual_seed(11)
    hn: Any = None
    ht: Any = None
    for t in range(T):
        shape = (INPUT_SIZE,) if B is None else (B, INPUT_SIZE)
        x = torch.randn(shape, generator=g, dtype=dtype)
        dt = _dts(dt_kind if B is not None else "float", t, B or 1, dtype, g)
        yn, hn = _step(layer, x, hn, dt, True)
        yt, ht = _step(layer, x, ht, dt, False)
        _close(yn, yt, dtype, f"output at step {t}")
        _close(hn, ht, dtype, f"state at step {t}")
        assert yn.shape == yt.shape and _flat(hn).shape == _flat(ht).shape


# ---------------------------------------------------------------------------------------- values
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(ALL))
def test_native_matches_torch_path(name: str, dtype: torch.dtype) -> None:
    layer = _make(name, dtype)
    _compare_run(layer, dtype, B=6)  # a block of 4 rows and 2 single rows (CfC)
    _compare_run(layer, dtype, B=1)
    _compare_run(layer, dtype, B=None, T=10)  # unbatched


@pytest.mark.parametrize("name", NATIVE)
def test_native_kernel_runs(name: str) -> None:
    """The supported configurations do run in C, and layer.step returns what the kernel returns."""
    layer = _make(name, torch.float32)
    x = torch.randn(2, INPUT_SIZE)
    with torch.no_grad():
        direct = _native_step.step(layer, x, None, 0.7)
        assert direct is not None
        y, h = layer.step(x, None, 0.7)
        assert torch.equal(y, direct[0]) and torch.equal(h, direct[1])
        again = _native_step.step(layer, x, h, torch.full((2,), 0.3))
        assert again is not None


@pytest.mark.parametrize("name", FALLBACK)
def test_fallback_configurations(name: str) -> None:
    layer = _make(name, torch.float64)
    with torch.no_grad():
        assert _native_step.step(layer, torch.randn(2, INPUT_SIZE, dtype=torch.float64), None, 1.0) is None


@pytest.mark.parametrize("name", NATIVE)
def test_float64_against_reference(name: str) -> None:
    """The C step (float64) against the numpy reference of tests/reference.py."""
    layer = _make(name, torch.float64)
    assert getattr(layer.cell, "backbone_activation", "lecun_tanh") in ref.ACT
    step = reference_step(layer)
    g = torch.Generator().manual_seed(3)
    h = np.zeros(layer.state_size)
    hx = None
    for _ in range(15):
        x = torch.randn(INPUT_SIZE, generator=g, dtype=torch.float64)
        dt = 0.05 + 2.0 * float(torch.rand((), generator=g, dtype=torch.float64))
        y, hx = _step(layer, x, hx, dt, True)
        yr, h = step(x.numpy(), h, dt)
        if layer.fc is not None:
            yr = layer.fc.weight.detach().numpy() @ yr + layer.fc.bias.detach().numpy()
        np.testing.assert_allclose(hx.numpy(), h, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(y.numpy(), yr, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["ltc-fc", "ltc-ncp", "cfc-default", "cfc-pure", "wcfc-autoncp", "wcfc-autoncp-proj"])
@pytest.mark.parametrize("dt_kind", ["float", "vector", "column", "strided"])
def test_elapsed_time_forms(name: str, dtype: torch.dtype, dt_kind: str) -> None:
    _compare_run(_make(name, dtype), dtype, B=4, dt_kind=dt_kind, T=8)


@pytest.mark.parametrize("name", ["ltc-fc", "cfc-default", "wcfc-autoncp"])
def test_strided_and_batched_inputs(name: str) -> None:
    """Rows of a (B, T, F) batch (x[:, t] is strided) and a hidden state given by the caller."""
    dtype = torch.float64
    layer = _make(name, dtype)
    g = torch.Generator().manual_seed(5)
    xs = torch.randn(5, 7, INPUT_SIZE, generator=g, dtype=dtype)
    h0 = 0.3 * torch.randn(5, layer.state_size, generator=g, dtype=dtype)
    hn, ht = h0, h0.clone()
    for t in range(7):
        assert not xs[:, t].is_contiguous()
        yn, hn = _step(layer, xs[:, t], hn, 0.4 + 0.1 * t, True)
        yt, ht = _step(layer, xs[:, t].contiguous(), ht, 0.4 + 0.1 * t, False)
        _close(yn, yt, dtype, f"output at step {t}")
        _close(hn, ht, dtype, f"state at step {t}")
    # the sequence forward pass agrees with the steps (per-step timespans)
    with torch.no_grad():
        out, h_seq = layer(xs, h0, timespans=torch.tensor([0.4 + 0.1 * t for t in range(7)], dtype=dtype).expand(5, 7))
    _close(hn, h_seq, dtype, "final state vs forward")
    _close(yn, out[:, -1], dtype, "last output vs forward")


@pytest.mark.parametrize("name", ["cfc-default", "cfc-pure-proj", "wcfc-autoncp-proj", "cfc-2layers-relu", "ltc-fc",
                                  "ltc-ncp-nomap-proj"])  # fmt: skip
def test_rows_split_over_threads(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large batches are split over OpenMP threads (CfC in blocks of rows): same values."""
    monkeypatch.setattr(_native_step, "_THREADS_FROM", 1)  # threads from batch 2 (plans built below)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for dtype in DTYPES:
            layer = _make(name, dtype)
            _compare_run(layer, dtype, B=9, T=6)  # blocks of 4, 4 and 1 rows
            _compare_run(layer, dtype, B=13, dt_kind="strided", T=4)
    finally:
        torch.set_num_threads(threads)


def test_outputs_are_fresh_tensors() -> None:
    """The returned tensors are new: the caller's state and earlier outputs are never overwritten."""
    layer = _make("ltc-fc", torch.float32)
    x = torch.randn(2, INPUT_SIZE)
    y1, h1 = _step(layer, x, None, 1.0, True)
    keep_y, keep_h = y1.clone(), h1.clone()
    y2, h2 = _step(layer, x, h1, 1.0, True)
    assert torch.equal(y1, keep_y) and torch.equal(h1, keep_h)
    assert h2.data_ptr() != h1.data_ptr() and y2.data_ptr() != y1.data_ptr()


# ---------------------------------------------------------------------------------------- edits
def _edits(layer: nn.Module) -> list[tuple[str, Callable[[], None]]]:
    cell = layer.cell
    first = next(p for n, p in layer.named_parameters() if n.endswith(("weight", "w_raw")))

    def inplace() -> None:
        with torch.no_grad():
            for p in layer.parameters():
                p.mul_(0.9).add_(0.01)

    def data_inplace() -> None:
        first.data.mul_(1.5)

    def data_assign() -> None:
        first.data = first.data * -0.5 + 0.1  # new storage

    def state_dict() -> None:
        other = copy.deepcopy(layer)
        with torch.no_grad():
            for p in other.parameters():
                p.add_(0.05 * torch.randn_like(p))
        layer.load_state_dict(other.state_dict())

    edits = [("in place", inplace), (".data in place", data_inplace), (".data =", data_assign),
             ("load_state_dict", state_dict)]  # fmt: skip
    if hasattr(cell, "w_raw"):

        def new_param() -> None:
            cell.w_raw = nn.Parameter(cell.w_raw.detach() + 0.2)

        def mask_edit() -> None:
            cell.sparsity_mask[0].zero_()  # drops synapses (fully connected) ...
            cell.sensory_sparsity_mask.fill_(1.0)  # ... or adds sensory ones (NCP)

        def unfolds() -> None:
            cell.ode_unfolds = 3
            cell.epsilon = 0.5

        edits += [("new Parameter", new_param), ("mask edit", mask_edit), ("ode_unfolds", unfolds)]
    else:
        sub = cell.layers[-1] if hasattr(cell, "layers") else cell

        def new_module() -> None:
            old = sub.f1
            lin = nn.Linear(old.in_features, old.out_features).to(old.weight.dtype)
            sub.f1 = lin

        def mode() -> None:
            for c in cell.layers if hasattr(cell, "layers") else [cell]:
                c.mode = "no_gate"

        edits += [("new module", new_module), ("mode", mode)]
    return edits


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["ltc-fc", "ltc-proj", "ltc-ncp", "cfc-default", "cfc-proj-same-size",
                                  "wcfc-autoncp", "cfc-nobackbone"])  # fmt: skip
def test_weight_edits_are_seen(name: str, dtype: torch.dtype) -> None:
    """Parameters are read live: every kind of edit between two steps changes the next step."""
    layer = _make(name, dtype)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, INPUT_SIZE, generator=g, dtype=dtype)
    _, h = _step(layer, x, None, 0.8, True)
    for what, edit in _edits(layer):
        before, hb = _step(layer, x, h, 0.8, True)
        edit()
        yn, hn = _step(layer, x, h, 0.8, True)
        yt, ht = _step(layer, x, h, 0.8, False)
        _close(yn, yt, dtype, f"output after {what}")
        _close(hn, ht, dtype, f"state after {what}")
        assert not (torch.equal(yn, before) and torch.equal(hn, hb)), f"{what}: the step did not change"
        h = hn


def test_dtype_conversion_and_dropout_training() -> None:
    layer = _make("cfc-3layers-dropout", torch.float32)
    x = torch.randn(2, INPUT_SIZE)
    assert _native_step.step(layer, x, None, 1.0) is not None
    layer.train()  # dropout between backbone layers is active: the torch path runs
    assert _native_step.step(layer, x, None, 1.0) is None
    layer.eval()
    layer.to(torch.float64)
    assert _native_step.step(layer, x, None, 1.0) is None  # float32 input, float64 layer
    x64 = x.double()
    assert _native_step.step(layer, x64, None, 1.0) is not None
    _compare_run(layer, torch.float64, B=2, T=5)


def test_layers_stay_picklable_and_copyable() -> None:
    """The per-layer plan lives outside the layer: pickling and deep copies are unaffected."""
    layer = _make("cfc-default", torch.float32)
    x = torch.randn(1, INPUT_SIZE)
    _, h = _step(layer, x, None, 1.0, True)
    buf = io.BytesIO()
    torch.save(layer, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    twin = copy.deepcopy(layer)
    for other in (loaded, twin):
        y2, h2 = _step(other, x, h, 1.0, True)
        y1, h1 = _step(layer, x, h, 1.0, True)
        assert torch.equal(y1, y2) and torch.equal(h1, h2)
    with torch.no_grad():
        twin.cell.f1.weight.zero_()  # the copy has its own parameters
    assert not torch.equal(_step(twin, x, h, 1.0, True)[0], _step(layer, x, h, 1.0, True)[0])


def test_plans_go_with_their_layers() -> None:
    """The per-layer plan does not keep a layer alive and is dropped with it."""
    import gc
    import weakref

    layer = _make("wcfc-autoncp", torch.float32)
    _step(layer, torch.randn(1, INPUT_SIZE), None, 1.0, True)
    key, ref = id(layer), weakref.ref(layer)
    assert key in _native_step._plans
    del layer
    gc.collect()
    assert ref() is None and key not in _native_step._plans


def test_inference_mode() -> None:
    layer = _make("ltc-ncp", torch.float32)
    x = torch.randn(2, INPUT_SIZE)
    with torch.inference_mode():
        y, h = layer.step(x, None, 0.5)
        y2, h2 = layer.step(x, h, 0.5)
    yt, ht = _step(layer, x, None, 0.5, False)
    yt2, ht2 = _step(layer, x, ht, 0.5, False)
    for a, b, what in ((y, yt, "first output"), (y2, yt2, "output"), (h2, ht2, "state")):
        _close(a, b, torch.float32, what)


# ---------------------------------------------------------------------------------------- errors
def _outcome(layer: nn.Module, x: Any, h: Any, dt: Any, native: bool) -> Any:
    try:
        return _step(layer, x, h, dt, native)
    except Exception as e:  # the exception itself is what is compared
        return e


NAN = float("nan")
INF = float("inf")


def _bad_calls(dtype: torch.dtype, n: int) -> list[tuple[str, Any, Any, Any]]:
    x = torch.randn(2, INPUT_SIZE, dtype=dtype)
    h = torch.zeros(2, n, dtype=dtype)
    xnan, hinf = x.clone(), h.clone()
    xnan[1, 2] = NAN
    hinf[0, 1] = INF
    other = torch.float32 if dtype == torch.float64 else torch.float64
    return [
        ("nan input", xnan, None, 1.0),
        ("inf state", x, hinf, 1.0),
        ("zero dt", x, h, 0.0),
        ("negative dt", x, h, -0.5),
        ("nan dt", x, h, NAN),
        ("inf dt", x, h, INF),
        ("bad dt tensor", x, h, torch.tensor([0.5, -1.0], dtype=dtype)),
        ("nan dt tensor", x, h, torch.tensor([0.5, NAN], dtype=dtype)),
        ("dt tensor of wrong size", x, h, torch.ones(3, dtype=dtype)),
        ("bool dt", x, h, True),
        ("wrong features", torch.randn(2, INPUT_SIZE + 1, dtype=dtype), None, 1.0),
        ("3-D input", torch.randn(2, 1, INPUT_SIZE, dtype=dtype), None, 1.0),
        ("wrong input dtype", x.to(other), None, 1.0),
        ("wrong state dtype", x, h.to(other), 1.0),
        ("wrong state shape", x, torch.zeros(2, n + 1, dtype=dtype), 1.0),
        ("unbatched state, batched input", x, torch.zeros(n, dtype=dtype), 1.0),
        ("batched state, unbatched input", x[0], h, 1.0),
        ("tuple state", x, (h, h), 1.0),
        ("not a tensor", x.tolist(), None, 1.0),
        ("empty batch", torch.randn(0, INPUT_SIZE, dtype=dtype), None, 1.0),
    ]


@pytest.mark.parametrize("name", ["ltc-fc", "cfc-default", "wcfc-autoncp", "cfc-pure-proj"])
def test_malformed_calls_behave_as_the_torch_path(name: str) -> None:
    dtype = torch.float64
    layer = _make(name, dtype)
    for what, x, h, dt in _bad_calls(dtype, layer.state_size):
        if isinstance(x, torch.Tensor) and x.dtype == dtype and x.dim() in (1, 2) and x.shape[-1] == INPUT_SIZE:
            with torch.no_grad():
                direct = _native_step.step(layer, x, h, dt)
            if what not in ("empty batch",):
                assert direct is None, f"{what}: the C kernel should decline"
        a = _outcome(layer, x, h, dt, True)
        b = _outcome(layer, x, h, dt, False)
        if isinstance(b, Exception):
            assert type(a) is type(b) and str(a) == str(b), f"{what}: {a!r} vs {b!r}"
        else:
            assert not isinstance(a, Exception), f"{what}: {a!r}"
            _close(a[0], b[0], dtype, what)
            _close(a[1], b[1], dtype, what)


def test_switched_off() -> None:
    layer = _make("cfc-default", torch.float32)
    with torch.no_grad(), _native.use_native(False):
        assert _native_step.step(layer, torch.randn(1, INPUT_SIZE), None, 1.0) is None
    with torch.no_grad(), _fused.use_fused(False):  # the hook is skipped; the general path runs
        y, _ = layer.step(torch.randn(1, INPUT_SIZE), None, 1.0)
    assert y.shape == (1, 6) and bool(torch.isfinite(y).all())


def test_grad_mode_uses_torch_path() -> None:
    """With gradients on, layer.step does not call the kernel and outputs carry autograd history."""
    layer = _make("ltc-fc", torch.float64)
    x = torch.randn(1, INPUT_SIZE, dtype=torch.float64)
    y, _ = layer.step(x, None, 1.0)
    assert y.requires_grad
    y_native, _ = _step(layer, x, None, 1.0, True)
    _close(y_native, y.detach(), torch.float64, "grad-mode output")


def test_math_helper_precision() -> None:
    """The softplus (w, sensory_w, gleak, cm) and exp of step.c are within a few ulp."""
    import ctypes

    lib = _native.load("step")
    assert lib is not None
    f = lib.lf_step_softplus_check_f32
    f.argtypes, f.restype = [ctypes.c_float], ctypes.c_float
    xs = np.concatenate([np.linspace(-40, 40, 4001), -np.logspace(-8, 1.3, 200), np.logspace(-8, 1.3, 200)])
    xs = xs.astype(np.float32)
    got = np.array([f(float(v)) for v in xs])
    ref = np.logaddexp(0.0, xs.astype(np.float64))
    assert float(np.max(np.abs(got - ref) / ref)) < 4e-7
    assert math.isclose(f(25.0), 25.0)
    # double: exp and softplus within a few ulp (the float64 kernels use them for every synapse)
    f64 = lib.lf_step_softplus_check_f64
    e64 = lib.lf_step_exp_check_f64
    for fn in (f64, e64):
        fn.argtypes, fn.restype = [ctypes.c_double], ctypes.c_double
    xs64 = np.concatenate([np.linspace(-700, 700, 2001), np.linspace(-30, 30, 2001), -np.logspace(-12, 1.5, 100)])
    assert max(abs(e64(v) - math.exp(v)) / math.exp(v) for v in xs64) < 1e-15
    ref64 = [v if v > 20 else max(v, 0.0) + math.log1p(math.exp(-abs(v))) for v in xs64]
    assert max(abs(f64(v) - r) / r for v, r in zip(xs64, ref64)) < 2e-15


def test_why_not_says_why() -> None:
    """why_not gives the reason exactly where step returns None, for what a CPU can make."""
    from liquidflow._ops import native_abi as abi

    f64 = torch.float64
    layer = _make("cfc-default", f64)
    x = torch.randn(2, INPUT_SIZE, dtype=f64)
    h = torch.zeros(2, layer.state_size, dtype=f64)
    lecun = CfC(INPUT_SIZE, 5, head_activation="lecun_tanh", backbone_units=6).to(f64).eval()
    half = CfC(INPUT_SIZE, 5, backbone_units=6).half().eval()
    dropout = _make("cfc-3layers-dropout", f64).train()
    cases = [
        ("applies", layer, x, h, 0.5, None),
        ("applies, dt per row", _make("ltc-ncp", f64), x, None, torch.full((2,), 0.5, dtype=f64), None),
        ("lecun heads", lecun, x, None, 1.0, "head_activation='lecun_tanh' is not in the C kernel"),
        ("float16 layer", half, x.half(), None, 1.0, abi.not_float(torch.float16)),
        ("rk4", _make("ltc-autoncp-rk4", f64), x, None, 1.0, "solver 'rk4'; the C step has the semi-implicit one only"),
        ("mixed memory", _make("cfc-mixed-proj", f64), x, None, 1.0, "mixed_memory=True is not in the C step"),
        ("dropout", dropout, x, None, 1.0, "backbone dropout in training mode (call layer.eval() to stream)"),
        (
            "input dtype",
            layer,
            x.float(),
            None,
            1.0,
            "mixed dtypes (layer torch.float64, input torch.float32); the C kernels take one dtype for all tensors",
        ),
        ("meta input", layer, x.to("meta"), None, 1.0, "tensors on meta; the C kernels take CPU tensors"),
        (
            "features",
            layer,
            x[:, 1:],
            None,
            1.0,
            f"shape: input (2, {INPUT_SIZE - 1}), the layer takes {INPUT_SIZE} features",
        ),
        ("not a tensor", layer, x.tolist(), None, 1.0, "input is a list, not a tensor"),
        ("state", layer, x, (h, h), 1.0, "the state is a tuple, not a tensor"),
        ("state shape", layer, x, h[:, 1:], 1.0, "shape: state (2, 5), expected (2, 6)"),
        ("dt", layer, x, h, -0.5, "dt=-0.5; the C step takes a finite dt > 0"),
        ("bool dt", layer, x, h, True, "dt is a bool; the C step takes a float or a tensor"),
        ("dt size", layer, x, h, torch.ones(3, dtype=f64), "shape: dt (3,), expected one value per batch row (2)"),
    ]
    with torch.no_grad():
        for what, lay, xx, hh, dt, reason in cases:
            assert _native_step.why_not(lay, xx, hh, dt) == reason, what
            assert (_native_step.step(lay, xx, hh, dt) is None) == (reason is not None), what
        # values are read by the kernel only: why_not accepts the call, step declines it (the torch path raises)
        xnan = x.clone()
        xnan[0, 0] = float("nan")
        assert _native_step.why_not(layer, xnan, h, 0.5) is None
        assert _native_step.step(layer, xnan, h, 0.5) is None
        with _native.use_native(False):
            assert _native_step.why_not(layer, x, h, 0.5) == abi.SWITCHED_OFF
