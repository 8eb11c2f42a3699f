"""Traces, LTC time constants and CfC gates against hand computations from the parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from liquidflow import AutoNCP, Wiring
from liquidflow.interpret import ltc_conductances, ltc_time_constants, step_probe, timescale_shift, trace
from liquidflow.torch import LTC, CfC


def softplus(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(x))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def tiny_ltc() -> LTC:
    """3 neurons, 2 inputs, hand-placed synapses and parameters (float64)."""
    w = Wiring(3)
    w.set_output_dim(1)
    w.build(2)
    w.add_synapse(0, 1, 1)
    w.add_synapse(1, 2, -1)
    w.add_synapse(2, 0, 1)
    w.add_synapse(2, 2, -1)
    w.add_sensory_synapse(0, 0, 1)
    w.add_sensory_synapse(1, 2, -1)
    w.add_sensory_synapse(1, 1, 1)
    layer = LTC(2, w).double()
    cell = layer.cell
    with torch.no_grad():
        cell.gleak_raw.copy_(torch.tensor([0.1, -0.5, 0.7]))
        cell.cm_raw.copy_(torch.tensor([0.2, 0.4, -0.3]))
        cell.w_raw.copy_(torch.linspace(-1.0, 1.0, 9).reshape(3, 3))
        cell.sigma.copy_(torch.linspace(3.0, 7.0, 9).reshape(3, 3))
        cell.mu.copy_(torch.linspace(0.2, 0.6, 9).reshape(3, 3))
        cell.sensory_w_raw.copy_(torch.tensor([[0.3, -0.2, 0.1], [0.5, 0.0, -0.4]]))
        cell.sensory_sigma.copy_(torch.tensor([[4.0, 5.0, 6.0], [3.0, 3.5, 7.5]]))
        cell.sensory_mu.copy_(torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]))
        cell.input_w.copy_(torch.tensor([1.5, -0.5]))
        cell.input_b.copy_(torch.tensor([0.1, 0.2]))
    return layer


def hand_tau(layer: LTC, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """tau_sys = C_m / (g_leak + sum_i a_ij + sum_k s_kj), written out from the raw parameters."""
    c = layer.cell
    P = {k: t.detach().numpy() for k, t in c.named_parameters()}
    mask = np.abs(c.wiring.adjacency_matrix)
    smask = np.abs(c.wiring.sensory_adjacency_matrix)
    xm = x * P["input_w"] + P["input_b"]
    tau = np.zeros(3)
    for j in range(3):
        g = softplus(P["gleak_raw"][j])
        for i in range(3):
            g += softplus(P["w_raw"][i, j]) * mask[i, j] * sigmoid(P["sigma"][i, j] * (v[i] - P["mu"][i, j]))
        for k in range(2):
            g += (
                softplus(P["sensory_w_raw"][k, j])
                * smask[k, j]
                * sigmoid(P["sensory_sigma"][k, j] * (xm[k] - P["sensory_mu"][k, j]))
            )
        tau[j] = softplus(P["cm_raw"][j]) / g
    return tau


def test_tau_sys_equals_hand_computation() -> None:
    layer = tiny_ltc()
    x = np.array([[0.3, -0.8], [1.2, 0.4]])
    v = np.array([[0.1, 0.5, -0.3], [-0.7, 0.9, 0.2]])
    got = ltc_time_constants(layer, torch.tensor(x), torch.tensor(v)).detach().numpy()
    want = np.stack([hand_tau(layer, x[b], v[b]) for b in range(2)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    parts = ltc_conductances(layer, torch.tensor(x), torch.tensor(v))
    np.testing.assert_allclose(parts["tau"].detach().numpy(), want, rtol=1e-12)
    # the values are not trivially equal across neurons or samples
    assert np.ptp(want) > 0.05


def test_trace_tau_uses_the_state_entering_each_step() -> None:
    layer = tiny_ltc()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 7, 2))
    ts = rng.uniform(0.2, 1.5, size=(1, 7))
    out, _ = layer(torch.tensor(x), timespans=torch.tensor(ts))
    tr = trace(layer, x, ts)
    # states equal the layer's own: its motor output is output_w * v0 + output_b
    c = layer.cell
    motor = tr.states[0, :, 0] * c.output_w.item() + c.output_b.item()
    np.testing.assert_allclose(motor, out[0, :, 0].detach().numpy(), rtol=1e-10, atol=1e-12)
    v_before = np.concatenate([np.zeros((1, 3)), tr.states[0, :-1]])
    want = np.stack([hand_tau(layer, x[0, t], v_before[t]) for t in range(7)])
    np.testing.assert_allclose(tr.tau[0], want, rtol=1e-10)
    assert tr.gate is None and tr.rate is None
    np.testing.assert_allclose(tr.timescale, tr.tau)


def _layers() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "ltc": LTC(3, AutoNCP(8, 2, seed=3)).double(),
        "ltc_mixed": LTC(3, 6, mixed_memory=True).double(),
        "cfc": CfC(3, 5, backbone_units=7).double(),
        "cfc_pure": CfC(3, 5, mode="pure", backbone_units=7).double(),
        "cfc_no_gate": CfC(3, AutoNCP(8, 2, seed=3), mode="no_gate").double(),
        "wired_cfc": CfC(3, AutoNCP(9, 2, seed=4)).double(),
    }


@pytest.mark.parametrize("name", list(_layers()))
def test_trace_states_match_the_layer_forward(name: str) -> None:
    layer = _layers()[name]
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal(size=(3, 6, 3)))
    ts = torch.tensor(rng.uniform(0.3, 2.0, size=(3, 6)))
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, 2] = False
    _, state = layer(x, timespans=ts, mask=mask)
    h = state[0] if isinstance(state, tuple) else state
    tr = trace(layer, x, ts, mask)
    # the trace is in neuron-id order; wired CfC keeps its state layer by layer (inter, command, motor)
    wiring = layer.wiring
    order = np.arange(h.shape[1])
    if isinstance(layer, CfC) and wiring is not None:
        order = np.concatenate([wiring.get_neurons_of_layer(k) for k in range(wiring.num_layers)])
    np.testing.assert_allclose(tr.states[:, -1, order], h.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert np.isnan(tr.timescale[2, 2]).all() and np.isfinite(tr.timescale[0]).all()


def test_cfc_gate_and_rate_equal_numpy() -> None:
    torch.manual_seed(2)
    layer = CfC(2, 3, backbone_layers=0).double()
    c = layer.cell
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 4, 2))
    ts = rng.uniform(0.1, 3.0, size=(1, 4))
    tr = trace(layer, x, ts)
    W = {k: (getattr(c, k).weight.detach().numpy(), getattr(c, k).bias.detach().numpy()) for k in ("time_a", "time_b")}
    h = np.zeros(3)
    for t in range(4):
        z = np.concatenate([x[0, t], h])
        rate = W["time_a"][0] @ z + W["time_a"][1]
        g = sigmoid(-rate * ts[0, t] + W["time_b"][0] @ z + W["time_b"][1])
        np.testing.assert_allclose(tr.rate[0, t], rate, rtol=1e-10)
        np.testing.assert_allclose(tr.gate[0, t], g, rtol=1e-10)
        np.testing.assert_allclose(tr.timescale[0, t], 1 / np.abs(rate), rtol=1e-10)
        h = tr.states[0, t]


def test_time_constants_follow_the_input() -> None:
    layer = tiny_ltc()
    probe = step_probe(2, steps=40)
    assert probe.shape == (1, 40, 2) and probe[0, 19, 0] == -1.0 and probe[0, 20, 1] == 1.0
    tr = trace(layer, probe)
    shift = timescale_shift(tr, 20)
    # input 0 drives neuron 0 and input 1 neurons 1 and 2 through sensory synapses: all taus move
    assert shift.shape == (3,)
    assert np.all(np.abs(np.log(shift)) > 1e-3)
    with pytest.raises(ValueError, match="switch must be in"):
        step_probe(2, steps=10, switch=10)


def test_errors_name_the_problem() -> None:
    with pytest.raises(TypeError, match="time constants tau_sys are defined for LTC"):
        ltc_time_constants(CfC(2, 3), torch.zeros(1, 2), torch.zeros(1, 3))
    with pytest.raises(TypeError, match="LTC/CfC layer or have one in `.core`"):
        trace(torch.nn.GRU(2, 3), np.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match="x has 5 features"):
        trace(LTC(2, 4), np.zeros((1, 3, 5)))
