"""The wiring drawing, figures as PNG, the HTML report and `liquidflow inspect`."""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from liquidflow import NCP, AutoNCP, FullyConnected, Random
from liquidflow.interpret import (
    figure_to_png,
    inspect_model,
    integrated_gradients,
    path_contributions,
    plot_dynamics,
    plot_influence,
    plot_wiring,
    summary,
    synapse_strengths,
    trace,
)
from liquidflow.torch import LTC, CfC


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (and check the signature)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return width, height


def check_png(data: bytes) -> None:
    w, h = png_size(data)
    assert 200 <= w <= 3000 and 150 <= h <= 3000, (w, h)
    assert 5_000 < len(data) < 1_500_000


def edge_patches(fig) -> list:
    return [p for ax in fig.axes for p in ax.patches if (p.get_gid() or "").startswith("edge:")]


WIRINGS = {
    "ncp": lambda: NCP(5, 4, 2, 3, 2, 3, 2, seed=3),
    "autoncp": lambda: AutoNCP(12, 3, seed=1),
    "fully_connected": lambda: FullyConnected(5, output_dim=2),
    "random": lambda: Random(6, output_dim=2, sparsity_level=0.6),
}


@pytest.mark.parametrize("name", list(WIRINGS))
@pytest.mark.parametrize("cell", ["ltc", "cfc"])
def test_wiring_drawing_counts_equal_the_wiring(name: str, cell: str) -> None:
    wiring = WIRINGS[name]()
    torch.manual_seed(0)
    model = LTC(4, wiring) if cell == "ltc" else CfC(4, wiring)
    w = model.wiring
    fig, graph = plot_wiring(model, input_names=["a", "b", "c", "d"])
    assert graph.number_of_nodes() == w.units + w.input_dim
    assert graph.number_of_edges() == w.synapse_count + w.sensory_synapse_count
    assert len(edge_patches(fig)) == graph.number_of_edges()
    types = [d["neuron_type"] for _, d in graph.nodes(data=True)]
    assert types.count("sensory") == 4 and types.count("motor") == w.output_dim
    if w.num_layers == 3:
        assert types.count("inter") == len(w.get_neurons_of_layer(0))
        assert types.count("command") == len(w.get_neurons_of_layer(1))
    else:
        assert types.count("hidden") == w.units - w.output_dim
    assert graph.nodes["sensory_1"]["label"] == "b"
    check_png(figure_to_png(fig))


def test_ltc_edges_carry_trained_strength_and_sign() -> None:
    torch.manual_seed(0)
    model = LTC(3, NCP(4, 3, 2, 2, 2, 2, 2, seed=1))
    cell = model.cell
    with torch.no_grad():
        i, j = map(int, np.argwhere(cell.wiring.adjacency_matrix != 0)[0])
        cell.erev[i, j] = -0.7 * float(np.sign(cell.wiring.adjacency_matrix[i, j]))  # training flipped it
    strength, sign, _, _ = synapse_strengths(model)
    assert sign[i, j] == -np.sign(cell.wiring.adjacency_matrix[i, j])
    want = torch.nn.functional.softplus(cell.w_raw).detach().numpy() * np.abs(cell.wiring.adjacency_matrix)
    np.testing.assert_allclose(strength, want, rtol=1e-6)
    fig, graph = plot_wiring(model, output_names=["left", "right"])
    edge = graph.edges[f"neuron_{i}", f"neuron_{j}"]
    assert edge["polarity"] == -int(cell.wiring.adjacency_matrix[i, j])
    assert edge["strength"] == pytest.approx(float(want[i, j]), rel=1e-6)
    patch = next(p for p in edge_patches(fig) if p.get_gid() == f"edge:neuron_{i}->neuron_{j}")
    dashed = patch.get_linestyle() not in ("-", "solid")
    assert dashed == (edge["polarity"] < 0)
    assert graph.nodes["neuron_0"]["label"] == "left"
    # line widths grow with the strength
    widths = {p.get_gid(): p.get_linewidth() for p in edge_patches(fig)}
    strongest = max(graph.edges(data=True), key=lambda e: e[2]["strength"])
    weakest = min(graph.edges(data=True), key=lambda e: e[2]["strength"])
    assert widths[f"edge:{strongest[0]}->{strongest[1]}"] > widths[f"edge:{weakest[0]}->{weakest[1]}"]


def test_wired_cfc_strength_is_the_masked_head_weight() -> None:
    torch.manual_seed(0)
    model = CfC(3, NCP(4, 3, 2, 2, 2, 2, 2, seed=1))
    strength, _, sstrength, _ = synapse_strengths(model)
    wiring = model.wiring
    inter = wiring.get_neurons_of_layer(0)
    layer0 = model.cell.layers[0]
    w1 = layer0.f1.weight.detach().numpy()[:, :3].T
    w2 = layer0.f2.weight.detach().numpy()[:, :3].T
    want = (np.abs(w1) + np.abs(w2)) / 2 * np.abs(wiring.sensory_adjacency_matrix[:, inter])
    np.testing.assert_allclose(sstrength[:, inter], want, rtol=1e-6)
    command = wiring.get_neurons_of_layer(1)
    layer1 = model.cell.layers[1]
    w1 = layer1.f1.weight.detach().numpy().T  # (inter + command, command)
    w2 = layer1.f2.weight.detach().numpy().T
    want = (np.abs(w1) + np.abs(w2)) / 2
    adj = np.abs(wiring.adjacency_matrix)
    np.testing.assert_allclose(strength[np.ix_(inter, command)], want[:4] * adj[np.ix_(inter, command)], rtol=1e-6)
    np.testing.assert_allclose(strength[np.ix_(command, command)], want[4:] * adj[np.ix_(command, command)], rtol=1e-6)
    assert np.count_nonzero(strength) == wiring.synapse_count
    with pytest.raises(ValueError, match="has a backbone and no wiring"):
        plot_wiring(CfC(3, 4))


def test_dynamics_and_influence_figures_are_pngs() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 10, 3)
    for model in (LTC(3, AutoNCP(8, 2, seed=2)), CfC(3, AutoNCP(8, 2, seed=2))):
        tr = trace(model, x)
        check_png(figure_to_png(plot_dynamics(tr, input_names=["p", "q", "r"])))
        inf = integrated_gradients(model, x, steps=4)
        check_png(figure_to_png(plot_influence(inf, path_contributions(model, x))))


def test_inspect_model_writes_figures_and_one_self_contained_html(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LTC(3, AutoNCP(8, 2, seed=2))
    x = torch.randn(6, 12, 3)
    path = inspect_model(
        model, tmp_path, x, timespans=0.5, steps=4, input_names=["a", "b", "c"], metadata={"note": "unit test"}
    )
    html = path.read_text()
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["dynamics.png", "influence.png", "probe_dynamics.png", "wiring.png"]
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(embedded) == 4
    files = {(tmp_path / name).read_bytes() for name in pngs}
    assert {base64.b64decode(e) for e in embedded} == files
    for data in files:
        check_png(data)
    assert 'src="http' not in html and "<script" not in html  # nothing to fetch
    info = summary(model)
    assert info["synapses"] == model.wiring.synapse_count
    assert info["state_size"] == 8 and info["parameters"] == sum(p.numel() for p in model.parameters())
    for fact in (f"<td>{info['parameters']}</td>", f"<td>{info['synapses']}</td>", "unit test"):
        assert fact in html
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert np.asarray(saved["influence"]).shape == (2, 3) and saved["input_names"] == ["a", "b", "c"]


def test_cli_inspect_a_checkpoint(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from liquidflow.checkpoint import save_model
    from liquidflow.cli import build_app
    from liquidflow.training import SequenceModel

    torch.manual_seed(0)
    core = CfC(4, AutoNCP(8, 2, seed=2), return_sequences=False)
    model = SequenceModel(
        core,
        torch.nn.Linear(2, 3),
        task="classification",
        input_mean=torch.arange(4.0),
        input_std=torch.full((4,), 2.0),
    )
    ckpt = save_model(model, tmp_path / "model.lf", {"input_names": ["w", "x", "y", "z"], "classes": [0, 1, 2]})
    data = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    np.savez(
        data,
        x=rng.normal(size=(5, 9, 4)).astype(np.float32),
        timespans=rng.uniform(0.5, 1.5, size=(5, 9)).astype(np.float32),
    )
    out = tmp_path / "report"
    result = CliRunner().invoke(
        build_app(), ["inspect", str(ckpt), "--data", str(data), "--out", str(out), "--steps", "4", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert "SequenceModel" in html and "class 2" in html and "w" in html
    saved = json.loads((out / "summary.json").read_text())
    assert np.asarray(saved["influence"]).shape == (3, 4)  # the head's 3 logits x 4 inputs
    bad = CliRunner().invoke(
        build_app(), ["inspect", str(tmp_path / "missing.lf"), "--out", str(out)], env={"COLUMNS": "400"}
    )
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", bad.output).split())  # rich may box and wrap the message
    assert bad.exit_code == 2 and "does not exist" in text


def test_inspect_model_without_wiring_or_data(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CfC(3, 5, backbone_units=8, mixed_memory=True)
    path = inspect_model(model, tmp_path, steps=2)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["dynamics.png", "influence.png", "probe_dynamics.png"]
    html = path.read_text()
    assert html.count("data:image/png;base64,") == 3 and "noise" in html
    assert "synapses" not in summary(model)
