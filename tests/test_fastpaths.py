"""The fused sequence kernels (liquidflow.torch._fused) against the plain step loop and the reference.

Each supported layer configuration is run twice, with the fused kernels on and off; outputs, final
states and the gradients of every parameter, the input and the initial state must agree to 1e-10
in float64 and 1e-5 in float32, with and without masks, per-sample timespans and initial states.
The float64 fused path is also checked against the numpy reference (tests/reference.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import LAYERS, make_layer, random_batch, reference_run
from liquidflow import _native
from liquidflow.torch import LTC, CfC, _fused
from liquidflow.wirings import AutoNCP

FUSED = [
    "ltc-fc",
    "ltc-ncp",
    "ltc-linear-nomap",
    "cfc-default",
    "cfc-no_gate",
    "cfc-nobackbone",
    "wcfc-autoncp",
    "wcfc-ncp-no_gate",
    "wcfc-fc",
]
PLAIN_ONLY = sorted(set(LAYERS) - set(FUSED))  # fall back to the step loop (solver, mode, LSTM, ...)
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
    err = float((a - b).abs().max()) if a.numel() else 0.0
    assert err <= TOL[dtype] * scale, f"{what}: max abs difference {err:.3g} (scale {scale:.3g})"


def _run(layer, x, dt, mask, h0, fused: bool, return_sequences: bool = True):
    layer.return_sequences = return_sequences
    params = [p for p in layer.parameters()]
    xx = x.clone().requires_grad_()
    hh = h0.clone().requires_grad_() if h0 is not None else None
    with _fused.use_fused(fused):
        out, h = layer(xx, hh, timespans=dt, mask=mask)
    g = torch.Generator().manual_seed(7)
    w_out = torch.randn(out.shape, generator=g, dtype=out.dtype)
    w_h = torch.randn(h.shape, generator=g, dtype=h.dtype)
    loss = (out * w_out).sum() + (h * w_h).sum()
    wrt = params + [xx] + ([hh] if hh is not None else [])
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    grads = [torch.zeros_like(w) if gr is None else gr for gr, w in zip(grads, wrt)]
    return out.detach(), h.detach(), grads


class _Spy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, names=("cfc_chain", "ltc_semi_implicit", "ltc_sparse")) -> None:
        self.calls = 0
        for name in names:
            real = getattr(_fused, name)

            def wrapped(*args, _real=real, **kwargs):
                self.calls += 1
                return _real(*args, **kwargs)

            monkeypatch.setattr(_fused, name, wrapped)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ["plain", "masked", "hx-last", "masked-last"])
@pytest.mark.parametrize("name", FUSED)
def test_fused_matches_plain_values_and_gradients(name: str, case: str, dtype: torch.dtype, monkeypatch) -> None:
    layer = make_layer(name, dtype)
    B, T = 3, 6
    x, dt, mask = random_batch(B, T, dtype, seed=1, masked=case.startswith("masked"))
    h0 = None
    if case == "hx-last":
        h0 = 0.3 * torch.randn(B, layer.state_size, dtype=dtype, generator=torch.Generator().manual_seed(3))
    rs = not case.endswith("last")  # "last": return_sequences=False, the last observed step
    spy = _Spy(monkeypatch)
    fast = _run(layer, x, dt, mask, h0, True, rs)
    assert spy.calls == 1, "the fused kernel was not used"
    slow = _run(layer, x, dt, mask, h0, False, rs)
    assert spy.calls == 1
    _close(fast[0], slow[0], dtype, "output")
    _close(fast[1], slow[1], dtype, "final state")
    names = [n for n, _ in layer.named_parameters()] + ["input", "hx"]
    for n, a, b in zip(names, fast[2], slow[2]):
        _close(a, b, dtype, f"gradient of {n}")


@pytest.mark.parametrize("name", FUSED)
def test_fused_matches_numpy_reference(name: str) -> None:
    layer = make_layer(name, torch.float64)
    x, dt, mask = random_batch(3, 5, torch.float64, seed=2, masked=True)
    with torch.no_grad(), _fused.use_fused(True):
        out, h = layer(x, timespans=dt, mask=mask)
    y_ref, h_ref, _ = reference_run(layer, x, dt, mask)
    np.testing.assert_allclose(out.numpy(), y_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(h.numpy(), h_ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", PLAIN_ONLY)
def test_unsupported_configurations_fall_back_to_the_step_loop(name: str, monkeypatch) -> None:
    layer = make_layer(name, torch.float64)
    x, dt, _ = random_batch(2, 3, torch.float64)
    spy = _Spy(monkeypatch)
    with _fused.use_fused(True):
        layer(x, timespans=dt)
    assert spy.calls == 0


def test_grad_of_timespans_uses_the_step_loop(monkeypatch) -> None:
    layer = make_layer("cfc-default")
    x, dt, _ = random_batch(2, 4)
    dt.requires_grad_()
    spy = _Spy(monkeypatch)
    out, _ = layer(x, timespans=dt)
    out.sum().backward()
    assert spy.calls == 0 and dt.grad is not None and torch.isfinite(dt.grad).all()


def test_double_backward_is_refused_with_a_clear_error() -> None:
    layer = make_layer("cfc-default")
    x, dt, _ = random_batch(2, 3)
    x.requires_grad_()
    out, _ = layer(x, timespans=dt)
    with pytest.raises(RuntimeError, match=r"double backward \(create_graph=True\) through liquidflow"):
        torch.autograd.grad(out.sum(), x, create_graph=True)
    with _fused.use_fused(False):  # the documented way out: the step loop is twice differentiable
        out, _ = layer(x, timespans=dt)
        (gx,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        gx.sum().backward()


@pytest.mark.parametrize("name", ["cfc-default", "cfc-no_gate", "cfc-nobackbone", "wcfc-autoncp", "ltc-ncp", "ltc-fc"])
def test_streaming_steps_equal_the_sequence(name: str, monkeypatch) -> None:
    layer = make_layer(name, torch.float64)
    x, dt, _ = random_batch(2, 5, torch.float64, seed=4)
    taken = []
    real = layer.cell.fused_step

    def fused_step(*args):
        out = real(*args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(layer.cell, "fused_step", fused_step)
    # the torch one-step path (the native C step, which takes precedence, has tests/test_native_step.py)
    monkeypatch.setattr(_native, "_SWITCH", False)
    with torch.no_grad():
        with _fused.use_fused(False):
            out, h_ref = layer(x, timespans=dt)
        h = None
        for t in range(5):
            y, h = layer.step(x[:, t], h, dt[:, t])
            _close(y, out[:, t], torch.float64, f"step {t}")
        assert taken == [True] * 5, "step did not take the one-step fast path"
        y1, h1 = layer.step(x[0, 0], None, 0.7)  # unbatched, float dt
        with _fused.use_fused(False):
            y2, h2 = layer.step(x[0, 0], None, 0.7)
        _close(y1, y2, torch.float64, "unbatched step")
    _close(h, h_ref, torch.float64, "final state")
    _close(h1, h2, torch.float64, "unbatched state")


def test_inference_follows_parameter_updates_even_through_data() -> None:
    layer = make_layer("cfc-default", torch.float64)
    x, dt, _ = random_batch(2, 4, torch.float64)
    with torch.no_grad():
        first, _ = layer(x, timespans=dt)
        layer.cell.f1.weight.add_(0.5)  # an optimizer-style in-place update
        updated, _ = layer(x, timespans=dt)
        with _fused.use_fused(False):
            expected, _ = layer(x, timespans=dt)
    assert not torch.allclose(updated, first)
    _close(updated, expected, torch.float64, "after the update")
    layer.cell.f2.weight.data.mul_(-1.0)  # in place through .data: no version bump, still seen
    with torch.no_grad():
        flipped, _ = layer(x, timespans=dt)
        with _fused.use_fused(False):
            expected, _ = layer(x, timespans=dt)
    assert not torch.allclose(flipped, updated)
    _close(flipped, expected, torch.float64, "after the .data edit")
    layer.load_state_dict(make_layer("cfc-default", torch.float64, seed=5).state_dict())
    with torch.no_grad():
        loaded, _ = layer(x, timespans=dt)
        with _fused.use_fused(False):
            expected, _ = layer(x, timespans=dt)
    _close(loaded, expected, torch.float64, "after load_state_dict")


@pytest.mark.parametrize("make", [lambda: CfC(20, 64), lambda: LTC(20, AutoNCP(32, 10))], ids=["cfc64", "ltc-ncp"])
def test_benchmark_sized_models_train_identically(make) -> None:
    """One optimizer step of the benchmark models: fused and plain give the same new parameters."""
    torch.manual_seed(0)
    a = make()
    b = make()
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 12, 20, generator=torch.Generator().manual_seed(1))
    for model, fused in ((a, True), (b, False)):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with _fused.use_fused(fused):
            model(x)[0].square().mean().backward()
        opt.step()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        _close(p.detach(), q.detach(), torch.float32, n)


@pytest.mark.parametrize(("name", "kernel"), [("ltc-fc", "ltc_semi_implicit"), ("ltc-ncp", "ltc_sparse")])
def test_ltc_picks_the_dense_or_the_edge_list_kernel(name: str, kernel: str, monkeypatch) -> None:
    layer = make_layer(name)
    n = layer.state_size
    assert (layer.cell.synapse_count <= 0.35 * n * n) == (kernel == "ltc_sparse")
    spy = _Spy(monkeypatch, (kernel,))
    x, dt, _ = random_batch(2, 3)
    layer(x, timespans=dt)
    assert spy.calls == 1
