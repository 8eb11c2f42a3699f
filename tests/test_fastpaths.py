"""Path-specific edge cases of the sequence kernels and the one-step path (liquidflow.torch._dispatch).

Values and gradients of every configuration on every path (native C, fused torch, loop) against the
numpy reference are in tests/test_conformance.py. Here: which path a call takes (spied on the
dispatcher), gradients with respect to timespans, double backward, streaming steps equal to the
sequence, in-place parameter edits, the dense/edge-list LTC choice and one optimizer step of the
benchmark-sized models.
"""

from __future__ import annotations

import pytest
import torch

from helpers import INPUT_SIZE, LAYERS, make_layer, random_batch
from liquidflow import _native
from liquidflow._ops import fused as _fused
from liquidflow.torch import LTC, CfC, _dispatch, explain, use_path
from liquidflow.wirings import AutoNCP

KERNEL = [  # the configurations the sequence kernels take (tests/test_conformance.py forces each path)
    "ltc-fc",
    "ltc-ncp",
    "ltc-linear-nomap",
    "ltc-euler",
    "ltc-midpoint",
    "ltc-heun",
    "ltc-autoncp-rk4",
    "ltc-mixed-proj",
    "cfc-default",
    "cfc-no_gate",
    "cfc-nobackbone",
    "cfc-pure",
    "cfc-2layers-relu",
    "wcfc-autoncp",
    "wcfc-ncp-pure",
    "cfc-mixed-proj",
    "cfc-paper-heads",
    "wcfc-ncp-no_gate",
    "wcfc-fc",
]
# configurations that still run the step loop, each with a reason (every registered one has a kernel now)
LOOP_ONLY = [*sorted(set(LAYERS) - set(KERNEL)), "cfc-5layers"]
_EXTRA = {"cfc-5layers": lambda: CfC(INPUT_SIZE, 6, backbone_layers=5, backbone_units=8)}
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
    err = float((a - b).abs().max()) if a.numel() else 0.0
    assert err <= TOL[dtype] * scale, f"{what}: max abs difference {err:.3g} (scale {scale:.3g})"


class _Spy:
    """Counts the jobs the dispatcher hands to a kernel (native or fused), or to named _fused kernels."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...] = ()) -> None:
        self.calls = 0
        targets = [(_fused, n) for n in names] or [(_dispatch, "_run_native"), (_dispatch, "_run_fused")]
        for mod, name in targets:
            real = getattr(mod, name)

            def wrapped(*args, _real=real, **kwargs):
                self.calls += 1
                return _real(*args, **kwargs)

            monkeypatch.setattr(mod, name, wrapped)


@pytest.mark.parametrize("name", KERNEL)
def test_kernel_configurations_run_one_kernel_call(name: str, monkeypatch) -> None:
    layer = make_layer(name, torch.float64)
    x, dt, mask = random_batch(3, 4, torch.float64, seed=1, masked=True)
    spy = _Spy(monkeypatch)
    layer(x, timespans=dt, mask=mask)
    assert spy.calls == 1, "no kernel ran"
    assert explain(layer, x, timespans=dt, mask=mask).path in ("native", "fused")
    with _fused.use_fused(False):
        layer(x, timespans=dt, mask=mask)
        assert explain(layer, x).reasons["native"] == "kernels switched off (use_fused(False))"
    assert spy.calls == 1


@pytest.mark.parametrize("name", LOOP_ONLY)
def test_unsupported_configurations_run_the_step_loop_and_say_why(name: str, monkeypatch) -> None:
    layer = _EXTRA[name]().double() if name in _EXTRA else make_layer(name, torch.float64)
    x, dt, _ = random_batch(2, 3, torch.float64)
    spy = _Spy(monkeypatch)
    layer(x, timespans=dt)
    assert spy.calls == 0
    choice = explain(layer, x, timespans=dt)
    assert choice.path == "loop" and choice.reasons["native"] and choice.reasons["fused"]
    with pytest.raises(_dispatch.PathError, match="use_path\\('fused'\\): the fused sequence path does not apply"):
        with use_path("fused"):
            layer(x, timespans=dt)


def test_a_sample_without_observed_steps_runs_the_loop(monkeypatch) -> None:
    layer = make_layer("cfc-default")
    x, dt, _ = random_batch(2, 3)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    spy = _Spy(monkeypatch)
    layer(x, timespans=dt, mask=mask)
    assert spy.calls == 0
    assert explain(layer, x, timespans=dt, mask=mask).reasons["native"] == "a sample has no observed step"


def test_grad_of_timespans_uses_the_step_loop(monkeypatch) -> None:
    layer = make_layer("cfc-default")
    x, dt, _ = random_batch(2, 4)
    dt.requires_grad_()
    spy = _Spy(monkeypatch)
    out, _ = layer(x, timespans=dt)
    out.sum().backward()
    assert spy.calls == 0 and dt.grad is not None and torch.isfinite(dt.grad).all()
    assert "timespans require grad" in (explain(layer, x, timespans=dt).reasons["native"] or "")


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
    with use_path("fused"):
        layer(x, timespans=dt)
    assert spy.calls == 1


@pytest.mark.parametrize("name", ["cfc-default", "ltc-ncp", "wcfc-autoncp", "cfc-pure"])
@pytest.mark.parametrize("batch_first", [True, False])
def test_one_step_calls_with_a_state_take_the_step_path(name: str, batch_first: bool) -> None:
    """ncps users stream with ``y, h = rnn(x_t.unsqueeze(1), h)``: that is ``layer.step``."""
    layer = make_layer(name, torch.float64)
    layer.batch_first = batch_first
    x, dt, _ = random_batch(3, 4, torch.float64, seed=9)
    h = 0.1 * torch.ones(3, layer.state_size, dtype=torch.float64)
    with torch.no_grad():
        h_step = h_call = h
        for t in range(4):
            xt = x[:, t : t + 1] if batch_first else x[:, t : t + 1].transpose(0, 1)
            dtt = dt[:, t : t + 1] if batch_first else dt[:, t : t + 1].T  # (B, 1) / (1, B)
            with use_path("loop"):  # the general path on the same call
                y_gen, h_gen = layer(xt, h_call, timespans=dtt)
            y_call, h_call = layer(xt, h_call, timespans=dtt)
            y_step, h_step = layer.step(x[:, t], h_step, dt[:, t])
            assert (
                y_call.shape == y_gen.shape == ((3, 1, y_step.shape[-1]) if batch_first else (1, 3, y_step.shape[-1]))
            )
            _close(y_call.reshape(y_step.shape), y_step, torch.float64, f"output at step {t}")
            _close(h_call, h_step, torch.float64, f"state at step {t}")
            _close(y_call, y_gen, torch.float64, f"output vs the general path at step {t}")
            _close(h_call, h_gen, torch.float64, f"state vs the general path at step {t}")
        choice = explain(layer, xt, h_call, timespans=dtt)
        with pytest.raises(ValueError, match="timespans must have shape"):
            layer(xt, h_call, timespans=dt[:, t])  # (B,): refused as by the general path
    assert choice.kind == "one-step sequence (streaming)"
    assert choice.path == "native"  # the C step also takes pure mode


def test_a_slow_option_is_said_once_per_layer() -> None:
    def slow() -> torch.nn.Module:  # more backbone layers than the C kernel takes
        return CfC(INPUT_SIZE, 5, backbone_layers=5, backbone_units=4).double()

    layer = slow()
    x, dt, _ = random_batch(2, 3)
    with pytest.warns(_dispatch.SlowPathWarning, match=r"CfC: backbone_layers=5: the C kernel takes at most 4; this "):
        layer(x, timespans=dt)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(x, timespans=dt)  # once per layer
        make_layer("cfc-default")(x, timespans=dt)  # kernel configurations say nothing
        make_layer("ltc-mixed-proj")(x, timespans=dt)  # LTC mixed memory: the C kernel
        with use_path("loop"):
            slow()(x, timespans=dt)  # a forced path is the caller's choice


@pytest.mark.parametrize("name", ["cfc-relu", "cfc-gelu", "cfc-silu"])
def test_other_backbone_activations_run_the_c_kernel_and_the_fused_one_too(name: str, monkeypatch) -> None:
    from helpers import require_native

    require_native("cfc")
    layer = make_layer(name, torch.float64)
    x, dt, _ = random_batch(2, 3, torch.float64)
    spy = _Spy(monkeypatch)
    layer(x, timespans=dt)
    assert spy.calls == 1
    act = layer.cell.backbone_activation
    choice = explain(layer, x, timespans=dt)
    assert choice.path == "native"
    assert act in ("relu", "gelu", "silu")
    assert choice.reasons["fused"] == _dispatch._NATIVE_RUNS  # the fused torch kernel (GPUs) takes them too
    with _native.use_native(False):
        assert explain(layer, x, timespans=dt).path == "fused"
        with torch.no_grad():  # the one-step torch kernel applies any activation
            assert explain(layer, x[:, 0], step=True).path == "fused"
