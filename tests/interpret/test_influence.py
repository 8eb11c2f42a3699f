"""Integrated gradients and NCP path contributions.

The headline test trains small NCP models on a task where output 0 = 0.8 * input 2 and
output 1 = -0.8 * input 5 and checks that the influence matrix finds exactly those inputs, with
the right signs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from liquidflow import AutoNCP, Wiring
from liquidflow.interpret import edge_gains, integrated_gradients, path_contributions
from liquidflow.interpret._influence import reduce_outputs
from liquidflow.torch import LTC, CfC


def synthetic(n: int = 128, T: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """6 inputs held for 4 steps at a time; y0 = 0.8 x2, y1 = -0.8 x5 (the other inputs are noise)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, T // 4, 6, generator=g).repeat_interleave(4, dim=1)
    y = torch.stack([x[..., 2], -x[..., 5]], -1) * 0.8
    return x, y


def train(kind: str) -> tuple[torch.nn.Module, torch.Tensor]:
    x, y = synthetic()
    torch.manual_seed(0)
    if kind == "ltc":
        model: torch.nn.Module = LTC(6, AutoNCP(16, 2, sparsity_level=0.5, seed=1), ode_unfolds=3)
        lr, epochs = 0.05, 150
    else:
        model = CfC(6, AutoNCP(16, 2, sparsity_level=0.5, seed=1))
        lr, epochs = 0.03, 40
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        loss = ((model(x)[0] - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.15, f"{kind} did not learn the task (loss {loss.item():.3f}; predicting 0 gives 0.64)"
    return model, x


@pytest.mark.parametrize("kind", ["ltc", "cfc"])
def test_influence_ranks_the_true_inputs_first(kind: str) -> None:
    model, x = train(kind)
    inf = integrated_gradients(model, x[:48], steps=16, output_names=["y0", "y1"])
    M = inf.matrix
    print(f"\n{kind} influence matrix (outputs x inputs):\n{np.array2string(M, precision=4, suppress_small=True)}")
    assert inf.ranking(0)[0] == 2 and inf.ranking(1)[0] == 5
    # signed: input 2 excites output 0, input 5 inhibits output 1
    assert M[0, 2] > 0 and M[1, 5] < 0
    # the true input dominates: at least 5x any other input. For a perfect fit the entry is
    # 0.8 * E|x| = 0.8 * sqrt(2 / pi) = 0.64 (baseline = the data mean, close to 0)
    for o, i in ((0, 2), (1, 5)):
        others = np.delete(np.abs(M[o]), i)
        assert abs(M[o, i]) > 5 * others.max()
        assert 0.3 < abs(M[o, i]) < 1.0
    assert inf.completeness_gap < 0.02
    assert inf.output_names == ["y0", "y1"] and inf.input_names[2] == "input 2"
    # path contributions through the NCP agree on the strongest input of each motor neuron
    paths = path_contributions(model, x[:32])
    total = paths.total
    print(f"{kind} path totals (motor x inputs):\n{np.array2string(total, precision=4, suppress_small=True)}")
    assert int(np.argmax(np.abs(total[0]))) == 2 and int(np.argmax(np.abs(total[1]))) == 5
    assert total[0, 2] > 0 and total[1, 5] < 0
    assert paths.top(0, n=1)[0][1][0] == 2 and paths.top(1, n=1)[0][1][0] == 5


def test_integrated_gradients_are_complete() -> None:
    torch.manual_seed(0)
    model = CfC(3, AutoNCP(8, 2, seed=2)).double()
    x = torch.randn(5, 6, 3, dtype=torch.float64)
    ts = torch.rand(5, 6, dtype=torch.float64) + 0.5
    inf = integrated_gradients(model, x, ts, baseline="zeros", steps=64, batch_size=2)
    # sum over inputs of the attributions = F(x) - F(0) per sample; its mean over samples:
    out_x = model(x, timespans=ts)[0][:, -1]
    out_0 = model(torch.zeros_like(x), timespans=ts)[0][:, -1]
    np.testing.assert_allclose(inf.attribution.sum(1), (out_x - out_0).mean(0).detach().numpy(), atol=2e-4)
    assert inf.completeness_gap < 1e-3
    assert np.all(inf.magnitude >= np.abs(inf.attribution) - 1e-12)


def test_an_unconnected_input_has_zero_influence() -> None:
    w = Wiring(3)
    w.set_output_dim(2)
    w.build(3)
    w.add_sensory_synapse(0, 2, 1)
    w.add_sensory_synapse(2, 2, -1)  # input 1 has no synapse at all
    w.add_synapse(2, 0, 1)
    w.add_synapse(2, 1, -1)
    torch.manual_seed(0)
    model = LTC(3, w).double()
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    inf = integrated_gradients(model, x, steps=8)
    assert np.all(inf.matrix[:, 1] == 0.0) and np.all(inf.attribution[:, 1] == 0.0)
    assert np.all(np.abs(inf.matrix[:, [0, 2]]) > 0)


def test_edge_gains_are_zero_off_the_wiring_and_match_finite_differences() -> None:
    torch.manual_seed(0)
    model = LTC(2, AutoNCP(7, 1, seed=5)).double()
    x = torch.randn(2, 3, 2, dtype=torch.float64)
    gains = edge_gains(model, x)
    wiring = model.wiring
    assert np.all(gains.neuron[wiring.adjacency_matrix == 0] == 0)
    assert np.all(gains.sensory[wiring.sensory_adjacency_matrix == 0] == 0)
    assert np.count_nonzero(gains.neuron) == wiring.synapse_count
    # one step, one sample: the gain is d v*_j / d v_i of v* = numer / denom, by central differences
    cell = model.cell
    p = cell.effective_parameters()
    xs = x[:1, :1]
    g1 = edge_gains(model, xs)
    v = torch.zeros(1, 7, dtype=torch.float64)

    def vstar(v: torch.Tensor) -> torch.Tensor:
        xm = cell.map_inputs(xs[:, 0])
        a = p["w"] * p["sparsity_mask"] * torch.sigmoid(p["sigma"] * (v.unsqueeze(-1) - p["mu"]))
        s = (
            p["sensory_w"]
            * p["sensory_sparsity_mask"]
            * torch.sigmoid(p["sensory_sigma"] * (xm.unsqueeze(-1) - p["sensory_mu"]))
        )
        numer = p["gleak"] * p["vleak"] + (a * p["erev"]).sum(1) + (s * p["sensory_erev"]).sum(1)
        return numer / (p["gleak"] + a.sum(1) + s.sum(1))

    i, j = map(int, np.argwhere(wiring.adjacency_matrix != 0)[0])
    e = torch.zeros_like(v)
    e[0, i] = 1e-6
    fd = ((vstar(v + e) - vstar(v - e)) / 2e-6)[0, j].item()
    assert g1.neuron[i, j] == pytest.approx(fd, rel=1e-5)


def test_reduce_and_argument_errors() -> None:
    out = torch.arange(12.0).reshape(2, 3, 2)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    np.testing.assert_array_equal(reduce_outputs(out, mask, "last").numpy(), [[2.0, 3.0], [6.0, 7.0]])
    np.testing.assert_array_equal(reduce_outputs(out, mask, "mean").numpy(), [[1.0, 2.0], [6.0, 7.0]])
    model = CfC(2, 4)
    x = torch.zeros(1, 3, 2)
    with pytest.raises(ValueError, match="reduce must be one of"):
        integrated_gradients(model, x, reduce="max")
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        integrated_gradients(model, x, steps=0)
    with pytest.raises(ValueError, match="baseline must be 'mean', 'zeros'"):
        integrated_gradients(model, x, baseline="median")
    with pytest.raises(ValueError, match="edge gains need a wired model"):
        edge_gains(model, x)
    with pytest.raises(ValueError, match="path contributions need an NCP wiring"):
        path_contributions(LTC(2, 4), x)
