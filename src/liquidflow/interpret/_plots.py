"""Figures: the wiring drawn layer by layer, neuron dynamics, and the influence heatmap.

matplotlib (Agg backend) and networkx are imported inside the functions: ``pip install liquidflow[plot]``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..torch import CfCCell, LTCCell, WiredCfCCell
from ..wirings import Wiring
from ._model import Trace, get_core, get_wiring

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ._influence import Influence, PathContributions

EXCITATORY = "#c0392b"  # red, solid
INHIBITORY = "#2471a3"  # blue, dashed
TYPE_COLORS = {
    "sensory": "#7f8c8d",
    "inter": "#27ae60",
    "command": "#8e44ad",
    "motor": "#e67e22",
    "hidden": "#16a085",
}
TYPE_ORDER = ["sensory", "inter", "command", "hidden", "motor"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("liquidflow.interpret figures need matplotlib: pip install 'liquidflow[plot]'") from e
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def figure_to_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (and the figure is closed)."""
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ graph
def synapse_strengths(model: nn.Module | Wiring) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trained strength (>= 0) and sign (+1 excitatory / -1 inhibitory) of every synapse.

    Returns ``(strength (N, N), sign (N, N), sensory_strength (I, N), sensory_sign (I, N))`` in
    neuron-id order, zero where the wiring has no synapse.

    * LTC: strength ``softplus(w_raw) * mask`` (the maximum conductance), sign of the trained reversal
      potential ``E`` (a synapse is excitatory when it pulls the neuron up, E > 0).
    * Wired CfC: strength ``(|W1| + |W2|) / 2`` of the masked head weights; sign of ``(W1 + W2) / 2`` (the
      new state is ``g f1 + (1 - g) f2``, so both heads carry the synapse). The wiring's polarity is not
      used by the CfC equations, so the trained weights decide. Synapses inside one layer (recurrent
      command synapses, or every synapse of a one-layer wiring) read the weights on the layer's own
      state.
    * A bare wiring: strength 1, sign = the wiring's polarity.
    """
    wiring = get_wiring(model)
    if wiring is None:
        raise ValueError("this CfC has a backbone and no wiring: there are no synapses to draw")
    if not wiring.is_built() or wiring.sensory_adjacency_matrix is None:
        raise ValueError("the wiring is not built: call wiring.build(input_dim) first")
    adj = wiring.adjacency_matrix.astype(np.float64)
    sadj = wiring.sensory_adjacency_matrix.astype(np.float64)
    strength, sign = np.abs(adj), np.sign(adj)
    sstrength, ssign = np.abs(sadj), np.sign(sadj)
    if isinstance(model, Wiring):
        return strength, sign, sstrength, ssign
    cell = get_core(model).cell
    with torch.no_grad():
        if isinstance(cell, LTCCell):
            p = {k: v.detach().cpu().double().numpy() for k, v in cell.effective_parameters().items()}
            strength = p["w"] * p["sparsity_mask"]
            sstrength = p["sensory_w"] * p["sensory_sparsity_mask"]
            sign = np.where(p["erev"] != 0, np.sign(p["erev"]), sign) * (strength > 0)
            ssign = np.where(p["sensory_erev"] != 0, np.sign(p["sensory_erev"]), ssign) * (sstrength > 0)
        elif isinstance(cell, WiredCfCCell):
            ids = [wiring.get_neurons_of_layer(layer) for layer in range(wiring.num_layers)]
            for layer_id, sub in enumerate(cell.layers):
                assert isinstance(sub, CfCCell)
                n_in = sub.input_size
                mask = sub.sparsity_mask if sub.sparsity_mask is not None else torch.ones_like(sub.f1.weight)
                w1_all = (sub.f1.weight * mask).T.double().cpu().numpy()  # (in + H, H)
                w2_all = (sub.f2.weight * mask).T.double().cpu().numpy() if sub.f2 is not None else w1_all
                s_all = (np.abs(w1_all) + np.abs(w2_all)) / 2
                sg_all = np.sign(w1_all + w2_all)
                s, sg = s_all[:n_in], sg_all[:n_in]
                # synapses inside the layer (e.g. recurrent command synapses) use the own-state columns
                own = np.ix_(ids[layer_id], ids[layer_id])
                strength[own] = s_all[n_in:] * (adj[own] != 0)
                sign[own] = np.where(sg_all[n_in:] != 0, sg_all[n_in:], sign[own]) * (adj[own] != 0)
                if layer_id == 0:
                    sstrength[:, ids[0]] = s * (sadj[:, ids[0]] != 0)
                    ssign[:, ids[0]] = np.where(sg != 0, sg, ssign[:, ids[0]]) * (sadj[:, ids[0]] != 0)
                else:
                    block = np.ix_(ids[layer_id - 1], ids[layer_id])
                    strength[block] = s * (adj[block] != 0)
                    sign[block] = np.where(sg != 0, sg, sign[block]) * (adj[block] != 0)
    return strength, sign, sstrength, ssign


def _columns(wiring: Wiring) -> dict[str, int]:
    if wiring.num_layers == 3:
        return {"sensory": 0, "inter": 1, "command": 2, "motor": 3}
    return {"sensory": 0, "inter": 1, "hidden": 1, "command": 1, "motor": 2}


def wiring_graph(
    model: nn.Module | Wiring,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
) -> Any:
    """A ``networkx.DiGraph`` of the (trained) wiring.

    Nodes ``sensory_k`` and ``neuron_i`` (as ``Wiring.get_graph``) with attributes ``neuron_type``
    ('sensory', 'inter', 'command', 'motor'; non-NCP wirings: 'hidden' for non-motor neurons),
    ``column`` (drawing layer) and ``label``. One edge per synapse with ``polarity`` (+1 / -1, the
    trained sign, see :func:`synapse_strengths`), ``strength`` (>= 0) and ``sensory`` (bool).
    """
    try:
        import networkx as nx
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("wiring_graph needs networkx: pip install 'liquidflow[plot]'") from e
    wiring = get_wiring(model)
    strength, sign, sstrength, ssign = synapse_strengths(model)
    assert wiring is not None and wiring.input_dim is not None
    ncp = wiring.num_layers == 3
    cols = _columns(wiring)
    M = wiring.output_dim if wiring.output_dim is not None else wiring.units
    if input_names is not None and len(input_names) != wiring.input_dim:
        raise ValueError(f"input_names has {len(input_names)} names; the wiring has {wiring.input_dim} inputs")
    graph = nx.DiGraph()
    for k in range(wiring.input_dim):
        label = input_names[k] if input_names else f"s{k}"
        graph.add_node(f"sensory_{k}", neuron_type="sensory", column=0, label=label)
    for i in range(wiring.units):
        t = wiring.get_type_of_neuron(i)
        if not ncp and t != "motor":
            t = "hidden"
        label = f"{t[0]}{i}"
        if t == "motor" and output_names is not None and len(output_names) == M:
            label = output_names[i]
        graph.add_node(f"neuron_{i}", neuron_type=t, column=cols[t], label=label)
    for k, j in zip(*np.nonzero(sstrength > 0), strict=True):
        graph.add_edge(
            f"sensory_{k}", f"neuron_{j}", polarity=int(ssign[k, j]), strength=float(sstrength[k, j]), sensory=True
        )
    for i, j in zip(*np.nonzero(strength > 0), strict=True):
        graph.add_edge(
            f"neuron_{i}", f"neuron_{j}", polarity=int(sign[i, j]), strength=float(strength[i, j]), sensory=False
        )
    return graph


def _positions(graph: Any) -> dict[str, tuple[float, float]]:
    columns: dict[int, list[str]] = {}
    for node, data in graph.nodes(data=True):
        columns.setdefault(data["column"], []).append(node)
    pos = {}
    for col, nodes in columns.items():
        n = len(nodes)
        for r, node in enumerate(nodes):
            pos[node] = (float(col), (n - 1) / 2.0 - r if n > 1 else 0.0)
    return pos


def plot_wiring(
    model: nn.Module | Wiring,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    title: str | None = None,
    max_width: float = 3.0,
) -> tuple[Figure, Any]:
    """Draw the wiring layer by layer: sensory -> inter -> command -> motor (NCP) or
    sensory -> hidden -> motor (other wirings).

    Excitatory synapses are red and solid, inhibitory ones blue and dashed; line width grows with the
    trained strength (:func:`synapse_strengths`). Each synapse is one ``FancyArrowPatch`` whose gid is
    ``"edge:<src>-><dst>"``.

    Returns:
        ``(figure, graph)``: the matplotlib figure and the ``networkx.DiGraph`` it draws
        (:func:`wiring_graph`).
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    graph = wiring_graph(model, input_names, output_names)
    pos = _positions(graph)
    n_cols = 1 + max(d["column"] for _, d in graph.nodes(data=True))
    height = max(len([n for n, d in graph.nodes(data=True) if d["column"] == c]) for c in range(n_cols))
    fig, ax = plt.subplots(figsize=(2.2 + 2.0 * n_cols, 1.5 + 0.32 * height))
    top = max((e[2]["strength"] for e in graph.edges(data=True)), default=1.0) or 1.0
    for src, dst, data in graph.edges(data=True):
        width = 0.3 + (max_width - 0.3) * data["strength"] / top
        exc = data["polarity"] >= 0
        same_col = graph.nodes[src]["column"] == graph.nodes[dst]["column"]
        if src == dst:  # self-loop: a small loop beside the node
            x, y = pos[src]
            posA, posB, style = (x + 0.02, y + 0.08), (x + 0.02, y - 0.08), "arc3,rad=-2.5"
        else:
            posA, posB = pos[src], pos[dst]
            style = "arc3,rad=0.35" if same_col else "arc3,rad=0.0"
        patch = FancyArrowPatch(
            posA,
            posB,
            connectionstyle=style,
            arrowstyle="-|>",
            mutation_scale=7,
            lw=width,
            color=EXCITATORY if exc else INHIBITORY,
            linestyle="-" if exc else "--",
            alpha=0.75,
            shrinkA=7,
            shrinkB=7,
            zorder=1,
        )
        patch.set_gid(f"edge:{src}->{dst}")
        ax.add_patch(patch)
    for t in TYPE_ORDER:
        nodes = [n for n, d in graph.nodes(data=True) if d["neuron_type"] == t]
        if not nodes:
            continue
        xy = np.array([pos[n] for n in nodes])
        ax.scatter(xy[:, 0], xy[:, 1], s=160, c=TYPE_COLORS[t], edgecolors="black", linewidths=0.6, zorder=3, label=t)
        for n, (x, y) in zip(nodes, xy, strict=True):
            label = graph.nodes[n]["label"]
            if t == "sensory":
                ax.text(x - 0.12, y, label, ha="right", va="center", fontsize=8)
            elif t == "motor":
                ax.text(x + 0.12, y, label, ha="left", va="center", fontsize=8)
            else:
                ax.text(x, y, label, ha="center", va="center", fontsize=6, color="white", zorder=4)
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D([0], [0], color=EXCITATORY, lw=2, label="excitatory"),
        Line2D([0], [0], color=INHIBITORY, lw=2, linestyle="--", label="inhibitory"),
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        ncol=min(len(handles), 7),
        fontsize=7,
        frameon=False,
    )
    ax.set_xlim(-0.9, n_cols - 0.1)
    ax.set_ylim(-height / 2 - 0.5, height / 2 + 0.5)
    ax.axis("off")
    ax.set_title(
        title
        or f"wiring: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} synapses (width: trained strength)",
        fontsize=9,
    )
    return fig, graph


# --------------------------------------------------------------------------------------------- dynamics
def plot_dynamics(
    tr: Trace,
    sample: int = 0,
    input_names: list[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Inputs, neuron activity and each neuron's time scale over one sequence of a :class:`Trace`.

    The x axis is the elapsed time (cumulative timespans), so irregular sampling shows. LTC: the time
    scale is tau_sys = C_m / (g_leak + synaptic conductances); CfC: 1 / |Wa z + ba|, and the gate g
    is drawn in a fourth panel.
    """
    plt = _pyplot()
    time = np.cumsum(tr.timespans[sample])
    panels = 4 if tr.gate is not None else 3
    fig, axes = plt.subplots(panels, 1, figsize=(7.5, 1.9 * panels + 0.4), sharex=True)
    x = tr.inputs[sample]
    for i in range(x.shape[1]):
        name = input_names[i] if input_names and i < len(input_names) else f"input {i}"
        axes[0].plot(time, x[:, i], lw=1, label=name)
    axes[0].set_ylabel("input")
    if x.shape[1] <= 10:
        axes[0].legend(fontsize=6, ncol=min(x.shape[1], 5), loc="upper left", frameon=False)
    seen: set[str] = set()

    def lines(ax: Any, values: np.ndarray, log: bool = False) -> None:
        for n in range(values.shape[1]):
            t = tr.neuron_types[n]
            label = t if t not in seen else None
            seen.add(t)
            ax.plot(
                time,
                values[:, n],
                lw=0.9 if t == "motor" else 0.6,
                color=TYPE_COLORS.get(t, "gray"),
                alpha=0.95 if t == "motor" else 0.55,
                label=label,
            )
        if log:
            ax.set_yscale("log")

    lines(axes[1], tr.states[sample])
    axes[1].set_ylabel("state")
    axes[1].legend(fontsize=6, loc="upper left", frameon=False, ncol=4)
    seen.clear()
    if tr.tau is not None:
        lines(axes[2], tr.tau[sample], log=True)
        axes[2].set_ylabel("tau_sys")
    else:
        lines(axes[2], tr.timescale[sample], log=True)
        axes[2].set_ylabel("1/|Wa z+ba|")
    if tr.gate is not None:
        seen.add("__")
        lines(axes[3], tr.gate[sample])
        axes[3].set_ylabel("gate g")
        axes[3].set_ylim(-0.02, 1.02)
    axes[-1].set_xlabel("time")
    fig.suptitle(
        title
        or ("LTC: activity and liquid time constants" if tr.kind == "ltc" else "CfC: activity and gate time scales"),
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- influence
def _heatmap(ax: Any, values: np.ndarray, rows: list[str], cols: list[str], title: str) -> Any:
    vmax = float(np.max(np.abs(values))) or 1.0
    im = ax.imshow(values, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    if values.size <= 200:
        for (r, c), v in np.ndenumerate(values):
            ax.text(
                c,
                r,
                f"{v:.2g}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if abs(v) > 0.6 * vmax else "black",
            )
    ax.set_title(title, fontsize=9)
    return im


def plot_influence(
    influence: Influence,
    paths: PathContributions | None = None,
    title: str | None = None,
    motor_names: list[str] | None = None,
) -> Figure:
    """Heatmap of the signed influence matrix (outputs x inputs), red = excitatory, blue = inhibitory;
    with ``paths``, a second heatmap of the summed path contributions (motor neurons x inputs), whose
    rows are labelled ``motor_names`` when given."""
    plt = _pyplot()
    n = 2 if paths is not None else 1
    O, I = influence.matrix.shape
    fig, axes = plt.subplots(1, n, figsize=(1.8 + n * (0.45 * I + 1.6), 1.4 + 0.4 * O), squeeze=False)
    im = _heatmap(
        axes[0, 0],
        influence.matrix,
        influence.output_names,
        influence.input_names,
        f"influence (integrated gradients, {influence.steps} steps, baseline {influence.baseline})",
    )
    fig.colorbar(im, ax=axes[0, 0], shrink=0.8)
    if paths is not None:
        total = paths.total
        rows = [f"motor {m}" for m in paths.motor]
        if motor_names is not None and len(motor_names) == len(rows):
            rows = [f"{r} ({name})" for r, name in zip(rows, motor_names, strict=True)]
        im2 = _heatmap(
            axes[0, 1],
            total,
            rows,
            influence.input_names
            if len(influence.input_names) == total.shape[1]
            else [f"input {i}" for i in range(total.shape[1])],
            "sum of path gains (sensory->motor)",
        )
        fig.colorbar(im2, ax=axes[0, 1], shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
