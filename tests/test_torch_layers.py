"""Sequence-layer conventions: per-sample time, masks, chunking, streaming, layouts, gradients."""

from __future__ import annotations

import pytest
import torch

from helpers import INPUT_SIZE, LAYERS, make_layer, random_batch
from liquidflow.torch import LTC, CfC
from liquidflow.wirings import AutoNCP

NAMES = sorted(LAYERS)


def _state(h):
    return h[0] if isinstance(h, tuple) else h


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", ["32", "hidden"])
def test_batch_equals_each_sample_alone(name: str, batch: str) -> None:
    """The ncps bug: timespans broadcast along the hidden axis. Here each sample keeps its own dt."""
    layer = make_layer(name)
    B = 32 if batch == "32" else layer.state_size
    x, dt, mask = random_batch(B, 6, seed=7, masked=True)
    y, h = layer(x, timespans=dt, mask=mask)
    for b in range(B):
        yb, hb = layer(x[b : b + 1], timespans=dt[b : b + 1], mask=mask[b : b + 1])
        assert (y[b : b + 1] - yb).abs().max().item() < 1e-6
        assert (_state(h)[b : b + 1] - _state(hb)).abs().max().item() < 1e-6
    # and the dt really matters: another dt changes the answer
    y2, _ = layer(x, timespans=dt * 1.7, mask=mask)
    assert (y2 - y).abs().max().item() > 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_chunked_run_equals_whole_run(name: str) -> None:
    layer = make_layer(name)
    x, dt, _ = random_batch(3, 10, seed=11)
    y, h = layer(x, timespans=dt)
    y1, h1 = layer(x[:, :4], timespans=dt[:, :4])
    y2, h2 = layer(x[:, 4:], h1, timespans=dt[:, 4:])
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, atol=1e-12, rtol=0)
    torch.testing.assert_close(_state(h2), _state(h), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_streaming_step_equals_sequence(name: str) -> None:
    layer = make_layer(name)
    x, dt, _ = random_batch(2, 5, seed=12)
    y, h = layer(x, timespans=dt)
    state = None
    for t in range(5):
        yt, state = layer.step(x[:, t], state, dt=dt[:, t])
        torch.testing.assert_close(yt, y[:, t], atol=1e-12, rtol=0)
    torch.testing.assert_close(_state(state), _state(h), atol=1e-12, rtol=0)
    # unbatched step with a float dt
    y0, _ = layer.step(x[0, 0], None, dt=float(dt[0, 0]))
    torch.testing.assert_close(y0, y[0, 0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["ltc-ncp", "cfc-default", "wcfc-autoncp", "ltc-mixed-proj"])
def test_unbatched_and_time_major_layouts(name: str) -> None:
    layer = make_layer(name)
    x, dt, mask = random_batch(3, 6, seed=13, masked=True)
    y, h = layer(x, timespans=dt, mask=mask)
    y0, h0 = layer(x[0], timespans=dt[0], mask=mask[0])
    torch.testing.assert_close(y0, y[0], atol=1e-12, rtol=0)
    torch.testing.assert_close(_state(h0), _state(h)[0], atol=1e-12, rtol=0)
    layer.batch_first = False
    yt, ht = layer(x.transpose(0, 1), timespans=dt.T, mask=mask.T)
    torch.testing.assert_close(yt.transpose(0, 1), y, atol=1e-12, rtol=0)
    torch.testing.assert_close(_state(ht), _state(h), atol=1e-12, rtol=0)


@pytest.mark.parametrize("shape", ["float", "BT", "BT1", "tensor0d"])
def test_timespan_shapes_agree(shape: str) -> None:
    layer = make_layer("cfc-default")
    x, _, _ = random_batch(3, 5, seed=2)
    ref, _ = layer(x, timespans=torch.full((3, 5), 0.37, dtype=torch.float64))
    ts = {
        "float": 0.37,
        "BT": torch.full((3, 5), 0.37, dtype=torch.float64),
        "BT1": torch.full((3, 5, 1), 0.37, dtype=torch.float64),
        "tensor0d": torch.tensor(0.37, dtype=torch.float64),
    }[shape]
    y, _ = layer(x, timespans=ts)
    torch.testing.assert_close(y, ref, atol=0, rtol=0)


def test_default_timespan_is_one() -> None:
    layer = make_layer("ltc-fc")
    x, _, _ = random_batch(2, 4)
    torch.testing.assert_close(layer(x)[0], layer(x, timespans=1.0)[0], atol=0, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name: str) -> None:
    layer = make_layer(name)
    x, dt, mask = random_batch(2, 3, seed=4, masked=True)
    x.requires_grad_(True)
    dt = dt.clamp_min(0.1).requires_grad_(True)
    params = [p for p in layer.parameters() if p.requires_grad]

    def f(x, dt, *ps):
        return layer(x, timespans=dt, mask=mask)[0]

    assert torch.autograd.gradcheck(f, (x, dt, *params), eps=1e-6, atol=1e-5, fast_mode=True)


def test_gradients_reach_every_parameter() -> None:
    for name in NAMES:
        layer = make_layer(name)
        x, dt, _ = random_batch(2, 4)
        y, _ = layer(x, timespans=dt)
        y.pow(2).sum().backward()
        for pname, p in layer.named_parameters():
            if name.startswith("wcfc") and pname.endswith("erev"):
                continue
            assert p.grad is not None, f"{name}: no gradient for {pname}"


def test_config_round_trip_and_state_dict() -> None:
    for name in NAMES:
        layer = make_layer(name)
        cfg = layer.get_config()
        clone = type(layer).from_config(cfg).double()
        clone.load_state_dict(layer.state_dict())
        x, dt, _ = random_batch(2, 4)
        torch.testing.assert_close(clone(x, timespans=dt)[0], layer(x, timespans=dt)[0], atol=0, rtol=0)


def test_parameter_initial_ranges() -> None:
    torch.manual_seed(0)
    cell = LTC(20, AutoNCP(32, 10)).cell
    p = cell.effective_parameters()
    for name, (lo, hi) in {
        "gleak": (0.001, 1),
        "cm": (0.4, 0.6),
        "w": (0.001, 1),
        "sensory_w": (0.001, 1),
        "vleak": (-0.2, 0.2),
        "sigma": (3, 8),
        "mu": (0.3, 0.8),
    }.items():
        v = p[name]
        assert v.min().item() >= lo - 1e-6 and v.max().item() <= hi + 1e-6, name
        assert v.max().item() - v.min().item() > 0.5 * (hi - lo), name  # spread over the range
    torch.testing.assert_close(p["erev"], torch.tensor(cell.wiring.adjacency_matrix, dtype=torch.float32))


def test_ltc_stays_finite_for_extreme_dt() -> None:
    layer = LTC(INPUT_SIZE, AutoNCP(12, 3))
    x = torch.randn(2, 50, INPUT_SIZE) * 3
    for dt in (1e-3, 1e-1, 1e1, 1e3):
        y, h = layer(x, timespans=dt)
        assert torch.isfinite(y).all() and torch.isfinite(h).all()
        # the semi-implicit step is a convex combination: the state stays within the reversal range
        assert h.abs().max().item() <= 1.0 + 0.2 + 1e-5


def test_cfc_wired_output_is_motor_layer() -> None:
    layer = CfC(3, AutoNCP(12, 4))
    y, h = layer(torch.randn(2, 5, 3))
    assert y.shape == (2, 5, 4) and h.shape == (2, 12)
    torch.testing.assert_close(y[:, -1], h[:, -4:])


def test_backbone_dropout_acts_with_one_backbone_layer() -> None:
    """Dropout follows every backbone layer in training mode (it was skipped for a single layer, and the
    fused kernels ran without it); in eval mode the layer equals the same weights without dropout."""
    torch.manual_seed(0)
    layer = CfC(3, 5, backbone_units=16, backbone_dropout=0.5)
    plain = CfC(3, 5, backbone_units=16)
    plain.load_state_dict(layer.state_dict())
    x, dt = torch.randn(4, 7, 3), torch.rand(4, 7) + 0.1
    assert layer.cell.fused_why_not() == "backbone_dropout in training mode"
    a, _ = layer(x, timespans=dt)
    b, _ = layer(x, timespans=dt)
    assert not torch.allclose(a, b)
    layer.eval()
    assert layer.cell.fused_why_not() is None
    torch.testing.assert_close(layer(x, timespans=dt)[0], plain(x, timespans=dt)[0])


def test_head_activation_and_forget_bias_checks() -> None:
    with pytest.raises(ValueError, match="head_activation must be one of"):
        CfC(3, 5, head_activation="relu")
    with pytest.raises(ValueError, match="forget_bias applies to the mixed-memory LSTM only"):
        CfC(3, 5, forget_bias=2.0)
    with pytest.raises(ValueError, match="needs a dense CfC"):
        CfC(3, AutoNCP(8, 2), head_activation="lecun_tanh")
    torch.manual_seed(0)
    a = CfC(3, 5, mixed_memory=True)
    torch.manual_seed(0)
    b = CfC(3, 5, mixed_memory=True, forget_bias=2.5)
    diff = (b.lstm.input_map.bias - a.lstm.input_map.bias).detach()  # type: ignore[union-attr]
    torch.testing.assert_close(diff[10:15], torch.full((5,), 1.5))
    assert float(diff[:10].abs().max()) == 0.0 and float(diff[15:].abs().max()) == 0.0
    assert CfC.from_config(b.get_config()).get_config() == b.get_config()
