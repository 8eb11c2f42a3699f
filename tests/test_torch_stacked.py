"""nn.LSTM-style options of the torch LTC and CfC: num_layers, dropout, bidirectional, device, dtype.

Each is checked against the same computation done by hand with single layers sharing the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from liquidflow import wirings as lw
from liquidflow.torch import LTC, CfC

I, B, T = 4, 3, 9
Layer = Any

# name -> builder taking (input_size, **nn.LSTM-style options)
KINDS: dict[str, Callable[..., Layer]] = {
    "cfc": lambda i, **kw: CfC(i, 6, **kw),
    "cfc-proj-mixed": lambda i, **kw: CfC(i, 6, proj_size=3, mixed_memory=True, **kw),
    "ltc": lambda i, **kw: LTC(i, 5, ode_unfolds=3, **kw),
    "ltc-mixed": lambda i, **kw: LTC(i, 5, ode_unfolds=3, mixed_memory=True, **kw),
}


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, I, generator=g)
    ts = torch.rand(B, T, generator=g) * 2 + 0.1
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 6:] = False  # unequal lengths: 9, 6, 4 (with a gap inside the last)
    mask[2, 4:] = False
    mask[2, 1] = False
    return x, ts, mask


def _single(kind: str, stacked: Layer, k: int, input_size: int, **kw: Any) -> Layer:
    """A plain single layer with the weights of sub-layer k of ``stacked``."""
    layer = KINDS[kind](input_size, **kw)
    layer.load_state_dict(stacked.layers[k].state_dict())
    return layer


def _reverse(v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Each sample's steps up to its last observed one in reverse order, the padding after it in place."""
    out = v.clone()
    for b in range(v.shape[0]):
        n = v.shape[1] if mask is None else int(mask[b].nonzero().max()) + 1
        out[b, :n] = v[b, :n].flip(0)
    return out


def _h(state: Any) -> torch.Tensor:
    return state[0] if isinstance(state, tuple) else state


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stacked_equals_single_layers_by_hand(kind: str) -> None:
    torch.manual_seed(0)
    stacked = KINDS[kind](I, num_layers=3).eval()
    x, ts, mask = _inputs()
    y, h = stacked(x, timespans=ts, mask=mask)
    width = stacked.layers[0].out_features
    out, finals = x, []
    for k in range(3):
        single = _single(kind, stacked, k, I if k == 0 else width)
        out, hk = single(out, timespans=ts, mask=mask)
        finals.append(hk)
    torch.testing.assert_close(y, out, atol=0, rtol=0)
    torch.testing.assert_close(_h(h), torch.stack([_h(s) for s in finals]), atol=0, rtol=0)
    if isinstance(h, tuple):  # mixed memory: the LSTM cells' states too, nn.LSTM's (h, c) layout
        torch.testing.assert_close(h[1], torch.stack([s[1] for s in finals]), atol=0, rtol=0)
    assert y.abs().max() > 1e-3
    # a given initial state goes to each layer in order; the final one feeds the next chunk
    y1, h1 = stacked(x[:, :5], timespans=ts[:, :5])
    y2, _ = stacked(x[:, 5:], h1, timespans=ts[:, 5:])
    torch.testing.assert_close(torch.cat([y1, y2], 1), stacked(x, timespans=ts)[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_equals_forward_and_reversed_layers(kind: str, return_sequences: bool) -> None:
    torch.manual_seed(1)
    bi = KINDS[kind](I, bidirectional=True, return_sequences=return_sequences).eval()
    x, ts, mask = _inputs(1)
    y, h = bi(x, timespans=ts, mask=mask)
    fwd = _single(kind, bi, 0, I, return_sequences=return_sequences)
    bwd = _single(kind, bi, 1, I, return_sequences=return_sequences)
    y_f, h_f = fwd(x, timespans=ts, mask=mask)
    y_b, h_b = bwd(_reverse(x, mask), timespans=_reverse(ts, mask), mask=_reverse(mask, mask))
    if return_sequences:
        y_b = _reverse(y_b, mask)
    n = fwd.out_features
    assert y.shape[-1] == 2 * n
    torch.testing.assert_close(y[..., :n], y_f, atol=0, rtol=0)
    torch.testing.assert_close(y[..., n:], y_b, atol=0, rtol=0)
    torch.testing.assert_close(_h(h), torch.stack([_h(h_f), _h(h_b)]), atol=0, rtol=0)
    if return_sequences:  # padding stays zero in both halves
        assert (y[~mask] == 0).all()
    # without a mask the whole sequence is reversed
    y_nomask, _ = bi(x)
    y_b2, _ = bwd(x.flip(1))
    torch.testing.assert_close(y_nomask[..., n:], y_b2.flip(1) if return_sequences else y_b2, atol=0, rtol=0)


def test_two_bidirectional_layers_by_hand() -> None:
    torch.manual_seed(2)
    bi = CfC(I, 5, bidirectional=True, num_layers=2).eval()
    x, ts, mask = _inputs(2)
    y, h = bi(x, timespans=ts, mask=mask)
    out, finals = x, []
    for layer in range(2):
        width = I if layer == 0 else 10
        f = CfC(width, 5)
        f.load_state_dict(bi.layers[2 * layer].state_dict())
        b = CfC(width, 5)
        b.load_state_dict(bi.layers[2 * layer + 1].state_dict())
        y_f, h_f = f(out, timespans=ts, mask=mask)
        y_b, h_b = b(_reverse(out, mask), timespans=_reverse(ts, mask), mask=_reverse(mask, mask))
        out = torch.cat([y_f, _reverse(y_b, mask)], -1)
        finals += [h_f, h_b]
    torch.testing.assert_close(y, out, atol=0, rtol=0)
    torch.testing.assert_close(h, torch.stack(finals), atol=0, rtol=0)  # (num_layers * 2, B, H)


def test_bidirectional_with_a_wiring() -> None:
    torch.manual_seed(3)
    bi = LTC(I, lw.NCP(4, 3, 2, 2, 2, 2, 2), bidirectional=True, ode_unfolds=2).eval()
    assert bi.out_features == 4 and bi.wiring.output_dim == 2
    x, _, mask = _inputs(3)
    y, h = bi(x, mask=mask)
    bwd = LTC(I, lw.NCP(4, 3, 2, 2, 2, 2, 2), ode_unfolds=2)
    bwd.load_state_dict(bi.layers[1].state_dict())
    torch.testing.assert_close(y[..., 2:], _reverse(bwd(_reverse(x, mask), mask=_reverse(mask, mask))[0], mask))
    assert h.shape == (2, B, 9)


def test_dropout_between_layers() -> None:
    torch.manual_seed(4)
    x, ts, _ = _inputs(4)
    plain = CfC(I, 6, num_layers=2)
    zero = CfC(I, 6, num_layers=2, dropout=0.0)
    half = CfC(I, 6, num_layers=2, dropout=0.5)
    zero.load_state_dict(plain.state_dict())
    half.load_state_dict(plain.state_dict())
    plain.train(), zero.train(), half.train()
    torch.testing.assert_close(zero(x, timespans=ts)[0], plain(x, timespans=ts)[0], atol=0, rtol=0)
    # training: dropout on layer 0's outputs only, drawn as F.dropout draws it
    torch.manual_seed(10)
    y_train = half(x, timespans=ts)[0]
    a, b = _single("cfc", half, 0, I), _single("cfc", half, 1, 6)
    torch.manual_seed(10)
    expected = b(F.dropout(a(x, timespans=ts)[0], 0.5, training=True), timespans=ts)[0]
    torch.testing.assert_close(y_train, expected, atol=0, rtol=0)
    assert not torch.allclose(y_train, plain(x, timespans=ts)[0])
    # eval: no dropout
    half.eval(), plain.eval()
    torch.testing.assert_close(half(x, timespans=ts)[0], plain(x, timespans=ts)[0], atol=0, rtol=0)


def test_dropout_with_one_layer_warns_as_nn_lstm() -> None:
    with pytest.warns(UserWarning, match=r"dropout acts between stacked layers.*num_layers=1"):
        CfC(I, 6, dropout=0.2)


@pytest.mark.parametrize("cls", [LTC, CfC])
def test_dtype_and_device(cls: type) -> None:
    layer = cls(I, 5, dtype=torch.float64, device="cpu")
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in layer.parameters())
    assert all(b.dtype == torch.float64 for b in layer.buffers() if b.is_floating_point())
    x = torch.randn(2, 6, I, dtype=torch.float64)
    y, h = layer(x)
    assert y.dtype == h.dtype == torch.float64
    stacked = cls(I, 5, num_layers=2, bidirectional=True, dtype=torch.float64, device=torch.device("cpu"))
    assert all(p.dtype == torch.float64 for p in stacked.parameters())
    assert stacked(x)[0].dtype == torch.float64
    # float64 layers pass gradcheck through both directions and layers
    small = cls(2, 3, num_layers=2, bidirectional=True, dtype=torch.float64)
    xs = torch.randn(1, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: small(v)[0], (xs,))


def test_dtype_must_be_floating() -> None:
    with pytest.raises(ValueError, match=r"dtype must be a floating torch.dtype; got torch.int64"):
        CfC(I, 5, dtype=torch.int64)


def test_defaults_keep_the_plain_layer() -> None:
    layer = CfC(I, 6)
    assert layer.layers is None and layer.num_layers == 1 and not layer.bidirectional
    assert "num_layers" not in layer.get_config() and "bidirectional" not in layer.get_config()
    assert not any(k.startswith("layers.") for k in layer.state_dict())


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_config_round_trip(kind: str) -> None:
    torch.manual_seed(5)
    layer = KINDS[kind](I, num_layers=2, bidirectional=True, dropout=0.25).eval()
    config = layer.get_config()
    assert config["num_layers"] == 2 and config["bidirectional"] and config["dropout"] == 0.25
    again = type(layer).from_config(config).eval()
    again.load_state_dict(layer.state_dict())
    x, ts, mask = _inputs(5)
    torch.testing.assert_close(again(x, timespans=ts, mask=mask)[0], layer(x, timespans=ts, mask=mask)[0])


def test_unbatched_and_time_major() -> None:
    torch.manual_seed(6)
    layer = LTC(I, 5, num_layers=2, bidirectional=True, mixed_memory=True, ode_unfolds=2).eval()
    x, ts, mask = _inputs(6)
    y, (h, _) = layer(x, timespans=ts, mask=mask)
    y0, (h0, _) = layer(x[1], timespans=ts[1], mask=mask[1])
    torch.testing.assert_close(y0, y[1])
    torch.testing.assert_close(h0, h[:, 1])
    tm = LTC(I, 5, num_layers=2, bidirectional=True, mixed_memory=True, ode_unfolds=2, batch_first=False).eval()
    tm.load_state_dict(layer.state_dict())
    y_t, (h_t, _) = tm(x.transpose(0, 1), timespans=ts.t(), mask=mask.t())
    torch.testing.assert_close(y_t, y.transpose(0, 1))
    torch.testing.assert_close(h_t, h)


def test_step_of_a_stack_streams_the_sequence() -> None:
    torch.manual_seed(7)
    layer = CfC(I, 6, num_layers=2, mixed_memory=True).eval()
    x, _, _ = _inputs(7)
    y, (h, c) = layer(x)
    state = None
    for t in range(T):
        y_t, state = layer.step(x[:, t], state)
    torch.testing.assert_close(y_t, y[:, -1], atol=1e-6, rtol=0)
    torch.testing.assert_close(state[0], h, atol=1e-6, rtol=0)
    torch.testing.assert_close(state[1], c, atol=1e-6, rtol=0)
    y_u, s_u = layer.step(x[0, 0])  # unbatched
    assert y_u.shape == (6,) and s_u[0].shape == (2, 6)


def test_refusals_say_what_to_use() -> None:
    with pytest.raises(ValueError, match=r"num_layers=2 with a Wiring is not defined.*inter_neurons"):
        CfC(I, lw.AutoNCP(8, 2), num_layers=2)
    with pytest.raises(ValueError, match=r"num_layers must be an integer >= 1; got 0"):
        LTC(I, 5, num_layers=0)
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\]; got 1.5"):
        CfC(I, 5, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match=r"bidirectional layer needs the whole sequence.*bidirectional=False"):
        CfC(I, 5, bidirectional=True).step(torch.randn(2, I))
    layer = CfC(I, 5, num_layers=2)
    with pytest.raises(ValueError, match=r"hx must have shape \(2, 3, 5\) \(num_layers \* num_directions"):
        layer(torch.randn(3, 4, I), torch.zeros(3, 5))


def test_ncps_checkpoint_into_a_stack_is_refused() -> None:
    plain = CfC(I, 6)
    sd = {k.replace("cell.", "rnn_cell.", 1): v for k, v in plain.state_dict().items()}  # ncps-style names
    with pytest.raises(RuntimeError, match=r"ncps checkpoint holds one unidirectional layer.*num_layers=2"):
        CfC(I, 6, num_layers=2).load_state_dict(sd)


def test_explain_points_to_the_single_layers() -> None:
    from liquidflow.torch import PATHS, explain

    layer = CfC(I, 5, num_layers=2)
    x = torch.randn(2, 4, I)
    with pytest.raises(ValueError, match=r"num_layers=2, bidirectional=False runs its single layers.*layer\.layers"):
        explain(layer, x)
    assert explain(layer.layers[0], x).path in PATHS
