"""SequenceModel, build_model and the dt-aware baselines: values against hand-computed references."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from liquidflow.training import DtGRU, DtLSTM, DtTransformer, SequenceModel, build_model
from liquidflow.wirings import AutoNCP

KINDS = ["cfc", "ltc", "lstm", "gru", "transformer"]


def _kw(kind: str) -> dict:
    return {"num_heads": 2} if kind == "transformer" else {}


def _data(B=3, T=6, F=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    ts = torch.rand(B, T, generator=g) + 0.1
    return x, ts


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("task", ["classification", "forecast"])
def test_normalisation_core_head_compose(kind: str, task: str) -> None:
    torch.manual_seed(0)
    mean, std = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 0.5, 1.0])
    model = build_model(kind, 3, 2, units=8, task=task, input_mean=mean, input_std=std, **_kw(kind)).eval()
    x, ts = _data()
    with torch.no_grad():
        expected = model.head(model.core((x - mean) / std, timespans=ts)[0])
        got = model(x, ts)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert got.shape == ((3, 2) if task == "classification" else (3, 6, 2))


@pytest.mark.parametrize("kind", KINDS)
def test_config_round_trip_gives_identical_outputs(kind: str) -> None:
    torch.manual_seed(1)
    model = build_model(kind, 3, 4, units=8, task="step_classification", **_kw(kind)).eval()
    model.set_normalization([0.1, 0.2, 0.3], [1.0, 2.0, 0.0])
    assert model.input_std.tolist() == [1.0, 2.0, 1.0]  # a zero std becomes 1
    clone = SequenceModel.from_config(model.get_config())
    clone.load_state_dict(model.state_dict())
    clone.eval()
    x, ts = _data()
    torch.testing.assert_close(clone(x, ts), model(x, ts), rtol=0, atol=0)
    assert clone.get_config() == model.get_config()


def test_autoncp_wiring_uses_motor_neurons_as_outputs() -> None:
    model = build_model("cfc", 3, 2, units=12, wiring="autoncp")
    assert model.head is None
    assert model.core.wiring.output_dim == 2
    assert model(torch.randn(2, 4, 3)).shape == (2, 2)
    model = build_model("ltc", 3, 2, units=AutoNCP(10, 2).units, wiring=AutoNCP(10, 2))
    assert model.head is None and model.output_size == 2


@pytest.mark.parametrize("cls", [DtLSTM, DtGRU])
def test_recurrent_baseline_equals_torch_rnn_on_features_plus_dt(cls) -> None:
    torch.manual_seed(2)
    layer = cls(3, 5, return_sequences=True)
    x, ts = _data()
    ref, _ = layer.rnn(torch.cat([x, ts.unsqueeze(-1)], dim=-1))
    out, _ = layer(x, timespans=ts)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("cls", [DtLSTM, DtGRU])
@pytest.mark.parametrize("prefix", [True, False])
def test_recurrent_baseline_mask_equals_dropping_steps(cls, prefix: bool) -> None:
    torch.manual_seed(3)
    layer = cls(3, 5, return_sequences=False)
    x, ts = _data(B=1, T=7)
    keep = [True] * 4 + [False] * 3 if prefix else [True, False, True, True, False, True, False]
    m = torch.tensor([keep])
    out, state = layer(x, timespans=ts, mask=m)
    idx = torch.tensor([i for i, k in enumerate(keep) if k])
    ref_out, ref_state = layer(x[:, idx], timespans=ts[:, idx])
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(state, ref_state)
    seq = cls(3, 5, return_sequences=True)
    seq.load_state_dict(layer.state_dict())
    y, _ = seq(x, timespans=ts, mask=m)
    assert (y[0, ~m[0]] == 0).all()


def test_transformer_is_causal_and_ignores_masked_steps() -> None:
    torch.manual_seed(4)
    layer = DtTransformer(3, 8, num_layers=2, num_heads=2).eval()
    x, ts = _data(B=1, T=7)
    out, _ = layer(x, timespans=ts)
    x2 = x.clone()
    x2[:, 4:] += 5.0
    out2, _ = layer(x2, timespans=ts)
    torch.testing.assert_close(out2[:, :4], out[:, :4])
    assert not torch.allclose(out2[:, 4:], out[:, 4:])
    keep = torch.tensor([[True, False, True, True, False, True, True]])
    masked, _ = layer(x2, timespans=ts, mask=keep)
    idx = keep[0].nonzero()[:, 0]
    dropped, _ = layer(x2[:, idx], timespans=ts[:, idx])
    torch.testing.assert_close(masked[:, idx], dropped, atol=1e-5, rtol=1e-5)


def test_build_model_errors() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        build_model("rnn", 3, 2)
    with pytest.raises(ValueError, match="task must be one of"):
        build_model("cfc", 3, 2, task="ranking")
    with pytest.raises(ValueError, match="wiring applies to cfc/ltc only"):
        build_model("lstm", 3, 2, wiring="autoncp")
    with pytest.raises(ValueError, match="units >= output_size"):
        build_model("cfc", 3, 2, units=4, wiring="autoncp")
    with pytest.raises(ValueError, match="input_size must be an integer"):
        build_model("gru", 0, 2)
    with pytest.raises(ValueError, match="needs a core with return_sequences=True"):
        SequenceModel(DtGRU(3, 4, return_sequences=False), nn.Linear(4, 2), task="forecast")
    with pytest.raises(ValueError, match="std must hold 3"):
        build_model("cfc", 3, 2).set_normalization(None, [1.0, 1.0])
    with pytest.raises(ValueError, match="input has 2 features"):
        build_model("lstm", 3, 2)(torch.randn(1, 4, 2))
