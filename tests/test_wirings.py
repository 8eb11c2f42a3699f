"""Wirings: ncps-identical graphs, config round-trips, NCP invariants, sharing by layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from liquidflow.torch import LTC, CfC
from liquidflow.wirings import NCP, AutoNCP, FullyConnected, Random, Wiring, wiring_from_config

FACTORIES = {
    "wiring": lambda: _custom(),
    "fc": lambda: FullyConnected(6, 2),
    "fc-noself": lambda: FullyConnected(5, self_connections=False, erev_init_seed=7),
    "random": lambda: Random(8, 3, sparsity_level=0.6, random_seed=4),
    "ncp": lambda: NCP(6, 4, 2, 3, 2, 3, 2, seed=9),
    "autoncp": lambda: AutoNCP(32, 10),
    "autoncp-sparse": lambda: AutoNCP(19, 4, sparsity_level=0.8, seed=1),
}


def _custom() -> Wiring:
    w = Wiring(3)
    w.add_synapse(0, 1, 1)
    w.add_synapse(2, 0, -1)
    return w


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("built", [False, True])
def test_config_round_trip_through_json(name: str, built: bool) -> None:
    w = FACTORIES[name]()
    if built:
        w.build(5)
        if name == "wiring":
            w.add_sensory_synapse(4, 2, -1)
    cfg = json.loads(json.dumps(w.get_config()))
    w2 = wiring_from_config(cfg)
    assert type(w2) is type(w)
    assert w2 == w
    np.testing.assert_array_equal(w2.adjacency_matrix, w.adjacency_matrix)
    if built:
        np.testing.assert_array_equal(w2.sensory_adjacency_matrix, w.sensory_adjacency_matrix)
        assert w2.get_neurons_of_layer(0) == w.get_neurons_of_layer(0)
    else:
        # an unbuilt wiring rebuilt from its config draws the same sensory synapses as the original
        w.build(5)
        w2.build(5)
        np.testing.assert_array_equal(w2.sensory_adjacency_matrix, w.sensory_adjacency_matrix)


@pytest.mark.parametrize("name", sorted(set(FACTORIES) - {"wiring"}))
def test_deterministic_from_seed(name: str) -> None:
    a, b = FACTORIES[name](), FACTORIES[name]()
    a.build(7)
    b.build(7)
    assert a == b


def test_different_seeds_differ() -> None:
    a, b = AutoNCP(32, 10, seed=1), AutoNCP(32, 10, seed=2)
    a.build(20)
    b.build(20)
    assert not np.array_equal(a.adjacency_matrix, b.adjacency_matrix)


NCPS_PAIRS = [
    ("AutoNCP", (32, 10), {}),
    ("AutoNCP", (19, 4), {"sparsity_level": 0.3, "seed": 5}),
    ("NCP", (10, 10, 8, 6, 6, 4, 6), {}),
    ("FullyConnected", (8, 3), {}),
    ("FullyConnected", (6,), {"self_connections": False, "erev_init_seed": 3}),
    ("Random", (8, 3, 0.5), {}),
]


@pytest.mark.parametrize(("cls", "args", "kwargs"), NCPS_PAIRS)
def test_same_graph_as_ncps(cls: str, args: tuple, kwargs: dict) -> None:
    ncps_wirings = pytest.importorskip("ncps.wirings")
    import liquidflow.wirings as lw

    ours, theirs = getattr(lw, cls)(*args, **kwargs), getattr(ncps_wirings, cls)(*args, **kwargs)
    ours.build(20)
    theirs.build(20)
    np.testing.assert_array_equal(ours.adjacency_matrix, theirs.adjacency_matrix)
    np.testing.assert_array_equal(ours.sensory_adjacency_matrix, theirs.sensory_adjacency_matrix)
    assert ours.synapse_count == int(np.abs(theirs.adjacency_matrix).sum())


def test_synapse_counts_match_adjacency() -> None:
    w = AutoNCP(32, 10)
    w.build(20)
    assert w.synapse_count == int(np.count_nonzero(w.adjacency_matrix))
    assert w.sensory_synapse_count == int(np.count_nonzero(w.sensory_adjacency_matrix))
    assert set(np.unique(w.adjacency_matrix)) <= {-1, 0, 1}
    fc = FullyConnected(5)
    fc.build(3)
    assert fc.synapse_count == 25 and fc.sensory_synapse_count == 15
    r = Random(10, sparsity_level=0.7)
    assert r.synapse_count == 30


@pytest.mark.parametrize("seed", range(5))
def test_ncp_invariants(seed: int) -> None:
    inter, command, motor = 8, 6, 3
    sensory_fanout, inter_fanout, rec, motor_fanin = 3, 2, 4, 2
    w = NCP(inter, command, motor, sensory_fanout, inter_fanout, rec, motor_fanin, seed=seed)
    w.build(5)
    A, S = w.adjacency_matrix, w.sensory_adjacency_matrix
    motors, commands, inters = w.get_neurons_of_layer(2), w.get_neurons_of_layer(1), w.get_neurons_of_layer(0)
    assert motors == list(range(3)) and commands == list(range(3, 9)) and inters == list(range(9, 17))
    assert [w.get_type_of_neuron(i) for i in (0, 3, 9)] == ["motor", "command", "inter"]
    # every motor neuron has motor_fanin command inputs, and only command inputs
    for m in motors:
        assert np.count_nonzero(A[commands, m]) >= motor_fanin
        assert np.count_nonzero(A[inters, m]) == 0 and np.count_nonzero(S[:, m]) == 0
    # every input reaches sensory_fanout inter neurons, and only inter neurons
    for k in range(5):
        assert np.count_nonzero(S[k, inters]) >= sensory_fanout
        assert np.count_nonzero(S[k, commands + motors]) == 0
    # every inter and command neuron is reached; every command neuron drives a motor neuron
    for i in inters:
        assert np.count_nonzero(S[:, i]) >= 1
    for c in commands:
        assert np.count_nonzero(A[inters, c]) >= 1
        assert np.count_nonzero(A[c, motors]) >= 1
    # no synapse skips a layer backwards or forwards
    assert np.count_nonzero(A[np.ix_(motors, inters + commands)]) == 0
    assert np.count_nonzero(A[np.ix_(inters, inters)]) == 0


def test_autoncp_sizes() -> None:
    w = AutoNCP(32, 10)
    # 22 inter+command: 8 command (int(0.4*22)), 14 inter
    assert len(w.get_neurons_of_layer(0)) == 14 and len(w.get_neurons_of_layer(1)) == 8
    assert w.output_dim == 10 and w.units == 32


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: AutoNCP(10, 8), "output_size must be < units - 2"),
        (lambda: AutoNCP(10, 3, sparsity_level=0.95), "sparsity_level must be in"),
        (lambda: NCP(4, 2, 2, 5, 1, 1, 1), "sensory_fanout=5 exceeds inter_neurons=4"),
        (lambda: NCP(4, 2, 2, 2, 1, 1, 3), "motor_fanin=3 exceeds command_neurons=2"),
        (lambda: Random(4, sparsity_level=1.0), "sparsity_level must be in"),
        (lambda: FullyConnected(0), "units must be >= 1"),
        (lambda: FullyConnected(4, 5), "output_dim must be <= units"),
        (lambda: Wiring(3).add_synapse(0, 3, 1), r"dest must be in \[0, 3\)"),
        (lambda: Wiring(3).add_synapse(0, 1, 2), "polarity must be -1 or"),
        (lambda: Wiring(3).add_sensory_synapse(0, 1, 1), "before build"),
    ],
)
def test_bad_arguments(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_rebuild_with_other_input_dim_raises() -> None:
    w = AutoNCP(12, 3)
    w.build(4)
    with pytest.raises(ValueError, match="built for input_dim=4; got input_dim=5"):
        w.build(5)


def test_one_wiring_serves_many_layers() -> None:
    wiring = AutoNCP(16, 4)
    l1 = LTC(20, wiring)
    l2 = LTC(4, wiring)  # a second layer with another input size gets a copy built for it
    l3 = CfC(4, wiring)
    assert wiring.input_dim == 20 and l1.wiring is wiring  # the first layer built the user's object
    assert l1.wiring.input_dim == 20 and l2.wiring.input_dim == 4 and l3.wiring.input_dim == 4
    stack = torch.nn.Sequential()
    y, _ = l1(torch.randn(2, 5, 20))
    y, _ = l2(y)
    y, _ = l3(y)
    assert y.shape == (2, 5, 4) and torch.isfinite(y).all()
    # the layers' wirings are equal graphs (same seed), but not the same object
    assert l2.wiring == l3.wiring and l2.wiring is not l3.wiring
    del stack


def test_masks_are_buffers_not_parameters() -> None:
    layer = LTC(3, AutoNCP(8, 2))
    names = {n for n, _ in layer.named_parameters()}
    assert not any("mask" in n for n in names)
    buffers = dict(layer.named_buffers())
    assert "cell.sparsity_mask" in buffers and "cell.sensory_sparsity_mask" in buffers
    wired = CfC(3, AutoNCP(8, 2))
    assert not any("mask" in n for n, _ in wired.named_parameters())
    assert any("sparsity_mask" in n for n, _ in wired.named_buffers())


def test_graph_counts() -> None:
    pytest.importorskip("networkx")
    w = AutoNCP(12, 3)
    w.build(4)
    g = w.get_graph()
    assert g.number_of_nodes() == 16
    assert g.number_of_edges() == w.synapse_count + w.sensory_synapse_count
