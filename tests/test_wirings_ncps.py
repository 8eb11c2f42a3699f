"""Wirings as ncps users use them (issue 15): built in place by the layer, several inter layers,
custom ``Wiring`` subclasses in every front end, export and inspection, and clear errors for
inconsistent layers.

Written from ncps's documented behaviour (README, docs): ``wiring = NCP(...); rnn = LTC(n, wiring)``
then ``wiring.synapse_count`` etc. describe the layer's graph; a ``Wiring`` subclass defines its
neurons' layers through ``num_layers`` / ``get_neurons_of_layer`` and draws its sensory synapses when
built. Kept small: tiny wirings, short sequences.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from helpers import reference_run
from liquidflow.torch import LTC, CfC
from liquidflow.torch._cells import LTCCell, WiredCfCCell
from liquidflow.wirings import NCP, AutoNCP, Wiring, wiring_from_config

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ custom wirings
class ChainWiring(Wiring):
    """A user-defined wiring with its own layers: inputs -> a (4) -> b (3, recurrent) -> motor (2).

    Neuron ids: motor 0-1, b 2-4, a 5-8. Synapses are drawn from ``seed``; the sensory ones when the
    wiring is built (the ncps pattern), the others in the constructor.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__(9)
        self.set_output_dim(2)
        self.seed = seed
        self._layers = [[5, 6, 7, 8], [2, 3, 4], [0, 1]]
        self._rng = np.random.default_rng(seed)
        for src_layer, dest_layer in itertools.pairwise(self._layers):
            for dest in dest_layer:
                for src in self._rng.choice(src_layer, size=2, replace=False):
                    self.add_synapse(int(src), dest, int(self._rng.choice([-1, 1])))
        self.add_synapse(2, 3, 1)  # recurrent inside layer b
        self.add_synapse(4, 4, -1)

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        return list(self._layers[layer_id])

    def get_type_of_neuron(self, neuron_id: int) -> str:
        return "motor" if neuron_id < 2 else ("command" if neuron_id < 5 else "inter")

    def _init_args(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _build_sensory(self) -> None:
        assert self.input_dim is not None
        for src in range(self.input_dim):
            for dest in self._rng.choice(self._layers[0], size=2, replace=False):
                self.add_sensory_synapse(src, int(dest), int(self._rng.choice([-1, 1])))


class Layered(Wiring):
    """A wiring with the layers it is given, to make inconsistent ones on purpose."""

    def __init__(self, units: int, layers: list[list[int]], output_dim: int) -> None:
        super().__init__(units)
        self.set_output_dim(output_dim)
        self._layers = layers
        for i in range(units):
            self.add_synapse(i, (i + 1) % units, 1)

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        return list(self._layers[layer_id])

    def _build_sensory(self) -> None:
        assert self.input_dim is not None
        for src in range(self.input_dim):
            self.add_sensory_synapse(src, self.units - 1, 1)


def two_inter_ncp(seed: int = 22222) -> NCP:
    """The issue's example: two inter layers (16, 8), 8 command, 4 motor neurons."""
    return NCP(
        inter_neurons=[16, 8],
        command_neurons=8,
        motor_neurons=4,
        sensory_fanout=4,
        inter_fanout=4,
        recurrent_command_synapses=4,
        motor_fanin=4,
        seed=seed,
    )


# ------------------------------------------------------------------------------ built in place
@pytest.mark.parametrize("make", [lambda w: LTC(8, w), lambda w: CfC(8, w)], ids=["LTC", "CfC"])
def test_layer_builds_the_users_wiring_in_place(make: Any) -> None:
    """ncps README: ``wiring = NCP(10, 10, 8, 6, 6, 4, 6); rnn = LTC(8, wiring)``; the user's object
    then has its input size and synapses (ncps builds it), and it is the layer's wiring."""
    wiring = NCP(10, 10, 8, 6, 6, 4, 6)
    assert not wiring.is_built() and wiring.sensory_synapse_count == 0
    rnn = make(wiring)
    assert wiring.is_built() and wiring.input_dim == 8
    assert rnn.wiring is wiring
    fresh = NCP(10, 10, 8, 6, 6, 4, 6)
    fresh.build(8)
    assert wiring == fresh
    assert wiring.synapse_count == fresh.synapse_count > 0
    assert wiring.sensory_synapse_count == fresh.sensory_synapse_count > 0


def test_in_place_counts_equal_ncps() -> None:
    """The counts read on the user's object after making the layer are the ones ncps reports."""
    ncps_torch = pytest.importorskip("ncps.torch")
    ncps_wirings = pytest.importorskip("ncps.wirings")
    theirs = ncps_wirings.NCP(10, 10, 8, 6, 6, 4, 6)
    ncps_torch.LTC(8, theirs)
    ours = NCP(10, 10, 8, 6, 6, 4, 6)
    LTC(8, ours)
    assert ours.synapse_count == int(theirs.synapse_count)
    assert ours.sensory_synapse_count == int(theirs.sensory_synapse_count)
    np.testing.assert_array_equal(ours.sensory_adjacency_matrix, theirs.sensory_adjacency_matrix)


@pytest.mark.parametrize("cell", [LTCCell, WiredCfCCell])
def test_cells_build_in_place(cell: Any) -> None:
    wiring = AutoNCP(12, 3, seed=4)
    c = cell(wiring, 5) if cell is LTCCell else cell(5, wiring)
    assert c.wiring is wiring and wiring.input_dim == 5


def test_one_wiring_many_input_sizes_copies_only_when_built_for_another() -> None:
    """ncps#75: one wiring for two layers of different input sizes. The first layer builds the
    user's object; a layer of another input size gets a copy built for it (the graph a new wiring
    with the same arguments gets); a layer of the same size shares the user's object."""
    wiring = AutoNCP(16, 4, seed=3)
    first = LTC(20, wiring)
    adjacency = wiring.adjacency_matrix.copy()
    second = LTC(4, wiring)
    third = CfC(20, wiring)
    assert first.wiring is wiring and third.wiring is wiring
    assert second.wiring is not wiring and second.wiring.input_dim == 4
    assert wiring.input_dim == 20
    np.testing.assert_array_equal(wiring.adjacency_matrix, adjacency)  # untouched by the copy
    fresh = AutoNCP(16, 4, seed=3)
    fresh.build(4)
    assert second.wiring == fresh
    y, _ = second(first(torch.randn(2, 3, 20))[0])
    assert y.shape == (2, 3, 4) and torch.isfinite(y).all()


@pytest.mark.parametrize("make", [lambda: AutoNCP(12, 3), lambda: two_inter_ncp(), lambda: ChainWiring(seed=2)])
def test_a_restored_wiring_serves_another_input_size(make: Any) -> None:
    """A wiring restored from its config (Keras load_model, checkpoints) whose graph its arguments
    draw can still be copied for a layer of another input size."""
    w = make()
    w.build(4)
    restored = wiring_from_config(json.loads(json.dumps(w.get_config())))
    assert restored.built_for(4) is restored
    layer = LTC(5, restored)
    fresh = make()
    fresh.build(5)
    assert layer.wiring == fresh and restored.input_dim == 4


def test_built_for_a_hand_made_wiring_of_another_size_says_what_to_do() -> None:
    w = Wiring(3)
    w.add_synapse(0, 1, 1)
    w.build(4)
    w.add_sensory_synapse(3, 2, -1)
    restored = wiring_from_config(w.get_config())
    for wiring in (w, restored):
        assert wiring.built_for(4) is wiring
        # its sensory synapse was added by hand: a copy for 5 inputs would silently lose it
        with pytest.raises(ValueError, match=r"built for input_dim=4 and its graph is not one its arguments draw"):
            LTC(5, wiring)
    drawn = Wiring(3)  # no hand-made sensory synapses: copying is exact
    drawn.add_synapse(0, 1, 1)
    drawn.build(4)
    assert LTC(5, drawn).wiring.input_dim == 5 and drawn.input_dim == 4
    with pytest.raises(ValueError, match="the wiring is not built"):
        LTCCell(AutoNCP(8, 2))


# ------------------------------------------------------------------------------ several inter layers
def test_ncp_with_two_inter_layers() -> None:
    w = two_inter_ncp()
    assert w.num_layers == 4 and w.units == 36 and w.output_dim == 4
    w.build(6)
    layers = [w.get_neurons_of_layer(i) for i in range(4)]
    assert [len(layer) for layer in layers] == [16, 8, 8, 4]
    inter0, inter1, command, motor = layers
    assert motor == [0, 1, 2, 3] and command == list(range(4, 12))
    assert inter0 == list(range(12, 28)) and inter1 == list(range(28, 36))
    assert {w.get_type_of_neuron(i) for i in inter0 + inter1} == {"inter"}
    A, S = w.adjacency_matrix, w.sensory_adjacency_matrix
    assert S is not None
    # inputs reach only the first inter layer, each with sensory_fanout synapses at least
    assert np.count_nonzero(S[:, inter1 + command + motor]) == 0
    assert (np.count_nonzero(S[:, inter0], axis=1) >= 4).all()
    # feed-forward between consecutive layers only; recurrence only among command neurons
    allowed = np.zeros_like(A, dtype=bool)
    for src, dest in [(inter0, inter1), (inter1, command), (command, command), (command, motor)]:
        allowed[np.ix_(src, dest)] = True
    assert np.count_nonzero(A[~allowed]) == 0
    assert (np.count_nonzero(A[np.ix_(inter0, inter1)], axis=1) >= 4).all()  # inter_fanout
    # every neuron of layers 1.. is reached from the previous layer, every motor has motor_fanin
    for prev, layer in itertools.pairwise(layers):
        assert (np.count_nonzero(A[np.ix_(prev, layer)], axis=0) >= 1).all()
    assert (np.count_nonzero(A[np.ix_(command, motor)], axis=0) >= 4).all()
    assert (np.count_nonzero(S[:, inter0], axis=0) >= 1).all()
    w.check_layers()


@pytest.mark.parametrize("seed", [22222, 7])
def test_int_and_one_element_list_give_the_ncps_graph(seed: int) -> None:
    ncps_wirings = pytest.importorskip("ncps.wirings")
    theirs = ncps_wirings.NCP(10, 10, 8, 6, 6, 4, 6, seed=seed)
    theirs.build(5)
    for inter in (10, [10]):
        ours = NCP(inter, 10, 8, 6, 6, 4, 6, seed=seed)  # type: ignore[arg-type]
        ours.build(5)
        assert ours.num_layers == 3
        np.testing.assert_array_equal(ours.adjacency_matrix, theirs.adjacency_matrix)
        np.testing.assert_array_equal(ours.sensory_adjacency_matrix, theirs.sensory_adjacency_matrix)


def test_autoncp_inter_layers() -> None:
    ncps_wirings = pytest.importorskip("ncps.wirings")
    default, theirs = AutoNCP(32, 4, seed=5), ncps_wirings.AutoNCP(32, 4, seed=5)
    default.build(6)
    theirs.build(6)
    np.testing.assert_array_equal(default.adjacency_matrix, theirs.adjacency_matrix)  # default: ncps's graph
    assert "inter_layers" not in default.get_config()
    two = AutoNCP(32, 4, seed=5, inter_layers=2)
    assert two.num_layers == 4 and two.units == 32 and two.output_dim == 4
    # 28 inter + command: 11 command, 17 inter spread as 9 + 8
    assert [len(two.get_neurons_of_layer(i)) for i in range(4)] == [9, 8, 11, 4]
    two.build(6)
    two.check_layers()
    three = AutoNCP(40, 2, sparsity_level=0.3, inter_layers=3)
    assert [len(three.get_neurons_of_layer(i)) for i in range(3)] == [8, 8, 7]


@pytest.mark.parametrize(
    "make", [two_inter_ncp, lambda: AutoNCP(20, 3, inter_layers=2, seed=2), lambda: ChainWiring(seed=3)]
)
@pytest.mark.parametrize("built", [False, True])
def test_config_round_trip(make: Any, built: bool) -> None:
    w = make()
    if built:
        w.build(5)
    w2 = wiring_from_config(json.loads(json.dumps(w.get_config())))
    assert type(w2) is type(w) and w2 == w and w2.num_layers == w.num_layers
    if not built:
        w.build(5)
        w2.build(5)
        assert w2 == w


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: NCP([], 4, 2, 2, 2, 2, 2), "non-empty list"),
        (lambda: NCP([4, 0], 4, 2, 2, 2, 2, 2), r"inter_neurons\[1\] must be >= 1"),
        (lambda: NCP([4, 2], 4, 2, 2, 3, 2, 2), r"inter_fanout=3 exceeds inter_neurons\[1\]=2"),
        (lambda: NCP([2, 4], 4, 2, 3, 2, 2, 2), r"sensory_fanout=3 exceeds inter_neurons\[0\]=2"),
        (lambda: NCP(4, 2, 2, 5, 1, 1, 1), "sensory_fanout=5 exceeds inter_neurons=4"),
        (lambda: AutoNCP(10, 2, inter_layers=6), "inter_layers=6 needs at least 6 inter neurons"),
        (lambda: NCP(4, 2, 2, 2, 1, 1, 1).get_neurons_of_layer(3), r"layer_id must be 0 \(inter\), 1"),
        (lambda: two_inter_ncp().get_neurons_of_layer(4), r"layer_id must be 0..1 \(inter\), 2 \(command\)"),
    ],
)
def test_bad_inter_layers(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


# ------------------------------------------------------------------------------ inconsistent layers
def _bad_shape() -> Wiring:
    w = Layered(3, [[2], [0, 1]], 2)
    w.adjacency_matrix = np.zeros((3, 4), dtype=np.int32)
    return w


def _bad_polarity() -> Wiring:
    w = Layered(3, [[2], [0, 1]], 2)
    w.adjacency_matrix[0, 1] = 3
    return w


INCONSISTENT = {
    "no-layer": (lambda: Layered(4, [[3], [0, 1]], 2), r"neurons \[2\] are in no layer"),
    "two-layers": (lambda: Layered(3, [[2, 1], [0, 1]], 2), "neuron 1 is in layer 1 and also in layer 0"),
    "repeated": (lambda: Layered(3, [[2, 2], [0, 1]], 2), "neuron 2 is in layer 0 and twice in that layer"),
    "empty": (lambda: Layered(3, [[2, 1, 0], []], 3), "layer 1 of 2 has no neurons"),
    "motor-not-last": (lambda: Layered(3, [[0, 1], [2]], 2), "the motor layer must be last"),
    "motor-order": (lambda: Layered(3, [[2], [1, 0]], 2), r"list the motor neurons first, in id order 0 .. 1"),
    "outside": (lambda: Layered(3, [[2, 5], [0, 1]], 2), r"lists neuron 5, outside \[0, 3\)"),
    "shape": (_bad_shape, r"adjacency_matrix must have shape \(3, 3\) for units=3; got \(3, 4\)"),
    "polarity": (_bad_polarity, r"entries must be -1, 0 or \+1 \(polarities\); got \[3\]"),
}


@pytest.mark.parametrize("name", sorted(INCONSISTENT))
@pytest.mark.parametrize("use", ["built_for", "LTC", "CfC"])
def test_inconsistent_layers_are_refused_with_the_reason(name: str, use: str) -> None:
    make, match = INCONSISTENT[name]
    with pytest.raises(ValueError, match=match):
        if use == "built_for":
            make().built_for(2)
        elif use == "LTC":
            LTC(2, make())
        else:
            CfC(2, make())


def test_consistent_layered_wiring_passes() -> None:
    Layered(3, [[2], [0, 1]], 2).built_for(2)
    ChainWiring().built_for(3)


# ------------------------------------------------------------------------------ torch layers
def _perturbed(layer: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.endswith(("input_b", "output_b", "bias")) or "vleak" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return layer


WIRED = {
    "ltc-ncp-2inter": lambda: LTC(3, two_inter_ncp(seed=1)),
    "ltc-autoncp-2inter": lambda: LTC(3, AutoNCP(14, 2, inter_layers=2, seed=2)),
    "ltc-chain": lambda: LTC(3, ChainWiring(seed=3)),
    "wcfc-ncp-2inter": lambda: CfC(3, two_inter_ncp(seed=1)),
    "wcfc-autoncp-2inter-no_gate": lambda: CfC(3, AutoNCP(14, 2, inter_layers=2, seed=2), mode="no_gate"),
    "wcfc-chain": lambda: CfC(3, ChainWiring(seed=3)),
}


@pytest.mark.parametrize("name", sorted(WIRED))
def test_torch_layers_match_the_reference(name: str) -> None:
    torch.manual_seed(0)
    layer = _perturbed(WIRED[name]().double(), 1)
    if isinstance(layer.cell, WiredCfCCell):
        assert layer.cell.num_layers == layer.wiring.num_layers
        sizes = [len(layer.wiring.get_neurons_of_layer(i)) for i in range(layer.wiring.num_layers)]
        assert layer.cell.layer_sizes == sizes
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    dt = torch.rand(2, 5, generator=g, dtype=torch.float64) + 0.1
    y, h = layer(x, timespans=dt)
    y_ref, h_ref, _ = reference_run(layer, x, dt)
    np.testing.assert_allclose(y.detach().numpy(), y_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(h.detach().numpy(), h_ref, rtol=0, atol=1e-10)
    assert y.shape[-1] == layer.wiring.output_dim


@pytest.mark.parametrize("name", ["ltc-ncp-2inter", "wcfc-chain"])
def test_torch_layers_train(name: str) -> None:
    torch.manual_seed(0)
    layer = WIRED[name]()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 6, 3, generator=g)
    target = torch.tanh(x[..., :1]).expand(-1, -1, layer.wiring.output_dim)
    opt = torch.optim.Adam(layer.parameters(), lr=0.02)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(layer(x)[0], target)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses


# ------------------------------------------------------------------------------ export and inspect
@pytest.mark.parametrize("name", ["ltc-ncp-2inter", "ltc-chain", "wcfc-ncp-2inter", "wcfc-chain"])
def test_export_to_c_matches_python(name: str, tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    from liquidflow.export import _toolchain as tc
    from liquidflow.export import reference_outputs, to_c

    torch.manual_seed(0)
    model = _perturbed(WIRED[name](), 4).float().eval()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 60, 3, generator=g)
    dt = torch.rand(1, 60, generator=g) + 0.05
    y = reference_outputs(model, x, dt)[0].numpy()
    prefix = "m_" + name.replace("-", "_")
    source = to_c(model, tmp_path, prefix=prefix).source
    harness = tc.write_harness([tc.HarnessCase(prefix, x[0].numpy(), dt[0].numpy())], tmp_path / "harness.c")
    exe = tc.build_host([harness, source], tmp_path / "harness", include=[tmp_path])
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, check=True)
    got = tc.parse_harness_output(out.stdout)[prefix]
    assert got.shape == y.shape
    assert float(np.abs(got - y).max()) <= 1e-4


@pytest.mark.parametrize("name", ["ltc-ncp-2inter", "wcfc-chain"])
def test_inspect_reports_the_wiring(name: str) -> None:
    from liquidflow.interpret import summary, synapse_strengths

    torch.manual_seed(0)
    model = WIRED[name]()
    info = summary(model)
    wiring = model.wiring
    assert info["synapses"] == wiring.synapse_count and info["sensory_synapses"] == wiring.sensory_synapse_count
    types = [wiring.get_type_of_neuron(i) for i in range(wiring.units)]
    assert info["neurons"] == {t: types.count(t) for t in ("inter", "command", "motor")}
    strength, sign, sstrength, _ = synapse_strengths(model)
    # a synapse has a strength exactly where the wiring has one
    if isinstance(model.cell, LTCCell):
        np.testing.assert_array_equal(strength > 0, wiring.adjacency_matrix != 0)
    np.testing.assert_array_equal(sstrength > 0, wiring.sensory_adjacency_matrix != 0)
    assert sign.shape == (wiring.units, wiring.units)


# ------------------------------------------------------------------------------ keras
KERAS_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    import keras
    sys.path.insert(0, "tests")
    import liquidflow.keras as lk
    from liquidflow.compat.keras_torch import torch_from_keras
    from test_wirings_ncps import ChainWiring, two_inter_ncp
    from liquidflow.wirings import AutoNCP

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5, 3)).astype("float32")
    for kind in ("LTC", "CfC"):
        for make in (two_inter_ncp, lambda: AutoNCP(14, 2, inter_layers=2), ChainWiring):
            wiring = make()
            layer = getattr(lk, kind)(wiring, return_sequences=True)
            y = layer(x)
            # built in place, as ncps.keras does
            assert wiring.is_built() and wiring.input_dim == 3 and layer.wiring is wiring, kind
            assert tuple(y.shape) == (8, 5, wiring.output_dim), (kind, y.shape)
            # same values as the torch layer with the same weights (itself checked against the reference)
            t = torch_from_keras(layer)
            err = float(np.abs(keras.ops.convert_to_numpy(y) - t(torch.from_numpy(x))[0].detach().numpy()).max())
            assert err < 1e-5, (kind, type(wiring).__name__, err)
            # the config rebuilds an equal wiring
            again = type(layer).from_config(layer.get_config())
            assert again.wiring == wiring
        # one wiring, two layers of different input sizes (ncps#75): the second takes a built copy
        shared = AutoNCP(12, 3, seed=1)
        first, second = getattr(lk, kind)(shared), getattr(lk, kind)(shared)
        first(x)
        second(rng.normal(size=(2, 4, 5)).astype("float32"))
        assert first.wiring is shared and shared.input_dim == 3, kind
        assert second.wiring is not shared and second.wiring.input_dim == 5, kind
        model = keras.Sequential([keras.Input((None, 3)), getattr(lk, kind)(two_inter_ncp(), return_sequences=True)])
        model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
        target = np.tanh(x[..., :1]).repeat(4, axis=-1)
        before = float(model.evaluate(x, target, verbose=0))
        model.fit(x, target, epochs=10, batch_size=8, verbose=0)
        after = float(model.evaluate(x, target, verbose=0))
        assert after < 0.9 * before, (kind, before, after)
    print("OK")
    """
)


def test_keras_layers_with_inter_layers_and_custom_wirings() -> None:
    pytest.importorskip("keras")
    env = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", KERAS_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-5000:]


# ------------------------------------------------------------------------------ docs
def test_porting_doc_examples_run() -> None:
    """Every python block of docs/porting.md runs as written (the worked wiring examples)."""
    text = (ROOT / "docs" / "porting.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    assert len(blocks) >= 5
    for i, block in enumerate(blocks):
        torch.manual_seed(0)
        exec(compile(block, f"docs/porting.md[python block {i}]", "exec"), {"__name__": f"porting_doc_{i}"})


def test_draw_graph_as_ncps() -> None:
    """ncps README: ``wiring.draw_graph(draw_labels=True, neuron_colors={...})`` then ``plt.legend``."""
    pytest.importorskip("networkx")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wiring = two_inter_ncp()
    LTC(3, wiring)
    fig = plt.figure()
    try:
        handles = wiring.draw_graph(layout="spiral", neuron_colors={"command": "tab:cyan"}, draw_labels=True)
        assert [h.get_label() for h in handles] == [
            "sensory neurons",
            "inter neurons",
            "command neurons",
            "motor neurons",
        ]
        drawn = sum(len(c.get_offsets()) for c in fig.axes[0].collections if hasattr(c, "get_offsets"))
        assert drawn == wiring.units + 3  # every neuron and input once
        with pytest.raises(ValueError, match="unknown layout 'grid'; valid names"):
            wiring.draw_graph(layout="grid")
        with pytest.raises(ValueError, match="not built"):
            NCP(4, 3, 2, 2, 2, 2, 2).draw_graph()
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", ["ltc-ncp-2inter", "wcfc-chain", "wcfc-autoncp-2inter-no_gate"])
def test_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    """liquidflow checkpoints keep several inter layers and custom wirings (class, layers, graph)."""
    from liquidflow.checkpoint import load_model, save_model

    torch.manual_seed(0)
    model = _perturbed(WIRED[name](), 6).eval()
    loaded, _ = load_model(save_model(model, tmp_path / "m.lf"))
    assert type(loaded.wiring) is type(model.wiring) and loaded.wiring == model.wiring
    assert loaded.wiring.num_layers == model.wiring.num_layers
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(loaded(x)[0], model(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["ltc-ncp-2inter", "wcfc-chain"])
def test_inspect_model_report(name: str, tmp_path: Path) -> None:
    """``liquidflow.interpret.inspect_model`` writes its report for 4-layer NCPs and custom wirings."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("networkx")
    from liquidflow.interpret import inspect_model

    torch.manual_seed(0)
    model = WIRED[name]().eval()
    report = inspect_model(model, tmp_path, x=torch.randn(3, 8, 3), steps=4)
    assert report.exists() and report.stat().st_size > 0
    assert len(list(tmp_path.glob("*.png"))) >= 2


class NcpsStyle(Wiring):
    """A custom wiring written the ncps way: sensory synapses drawn in a ``build`` override."""

    def __init__(self) -> None:
        super().__init__(4)
        self.set_output_dim(1)
        self.rng = np.random.default_rng(0)
        for src, dest in [(3, 2), (2, 1), (1, 0), (2, 2)]:
            self.add_synapse(src, dest, 1)

    @property
    def num_layers(self) -> int:
        return 3

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        return [[3], [1, 2], [0]][layer_id]

    def build(self, input_dim: int) -> None:
        super().build(input_dim)
        for src in range(input_dim):
            self.add_sensory_synapse(src, 3, int(self.rng.choice([-1, 1])))


def test_ncps_style_build_override() -> None:
    wiring = NcpsStyle()
    ltc = LTC(3, wiring)
    assert wiring.sensory_synapse_count == 3 and ltc.wiring is wiring
    cfc = CfC(3, wiring)  # same size: shared, not built again
    assert cfc.wiring is wiring and wiring.sensory_synapse_count == 3
    other = CfC(5, wiring)  # another size: a copy, built by the override
    assert other.wiring is not wiring and other.wiring.sensory_synapse_count == 5
    assert other.cell.layer_sizes == [1, 2, 1]
    y, _ = other(torch.randn(2, 3, 5))
    assert y.shape == (2, 3, 1) and torch.isfinite(y).all()


def test_torch_layers_have_ncps_size_properties():
    """ncps's LTC and WiredCfCCell sizes, same values; sensory_synapse_count is the sensory count
    (ncps 1.0.1's layers return the recurrent count there, a bug we do not copy)."""
    import ncps.torch as nt
    import ncps.wirings as nw

    from liquidflow.torch import LTC, CfC
    from liquidflow.wirings import NCP

    names = ("state_size", "sensory_size", "motor_size", "output_size", "synapse_count")
    pairs = [
        (LTC(8, NCP(10, 10, 8, 6, 6, 4, 6, seed=5)), nt.LTC(8, nw.NCP(10, 10, 8, 6, 6, 4, 6, seed=5))),
        (CfC(8, NCP(10, 10, 8, 6, 6, 4, 6, seed=5)).cell, nt.CfC(8, nw.NCP(10, 10, 8, 6, 6, 4, 6, seed=5)).rnn_cell),
    ]
    for ours, ref in pairs:
        for name in names:
            assert getattr(ours, name) == getattr(ref, name), name
        assert ours.sensory_synapse_count == ref._wiring.sensory_synapse_count == 48
        assert ref.sensory_synapse_count == ref._wiring.synapse_count != 48  # the ncps bug
