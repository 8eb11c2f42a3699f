"""Figures of a benchmark: risk over time per machine (failure and alarms marked) and the wiring.

Each function returns the data it draws as a JSON-safe dict as well, so a run folder holds the
numbers behind every figure (figures.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._benchmark import NAMES, Benchmark
from ._metrics import alarm_frame, alarm_threshold


def pick_machines(bench: Benchmark, n: int = 4) -> list[int]:
    """Test machines to show: failing ones of each fault type first, then a healthy one."""
    test = bench.test
    assert test.y is not None
    failing = [i for i in range(len(test.ids)) if test.y[i, : test.lengths[i]].any()]
    healthy = [i for i in range(len(test.ids)) if i not in failing]
    chosen = failing[: max(n - 1, 1)] + healthy[:1]
    return chosen[:n] if len(chosen) >= n else (chosen + failing[len(chosen) :])[:n]


def risk_figure_data(bench: Benchmark, machines: list[int]) -> dict[str, Any]:
    test = bench.test
    assert test.y is not None and test.rul is not None
    flat_ids = np.repeat(np.arange(len(test.ids)), test.lengths)
    frame = alarm_frame(flat_ids, test.flat(test.t_days), test.flat(test.y), test.flat(test.rul))
    thresholds = {k: alarm_threshold(frame, test.flat(r), bench.budget) for k, r in bench.risk.items()}
    data: dict[str, Any] = {
        "horizon_days": bench.horizon_days,
        "budget": bench.budget,
        "thresholds": thresholds,
        "machines": [],
    }
    for i in machines:
        n = int(test.lengths[i])
        t = test.t_days[i, :n]
        t0 = float(t[0])
        rul = test.rul[i, :n]
        fail = float(t[-1] + rul[-1] - t0) if np.isfinite(rul[-1]) else None
        entry: dict[str, Any] = {
            "machine_id": test.ids[i],
            "t_days": (t - t0).round(4).tolist(),
            "failure_day": fail,
            "scores": {},
            "first_alarm_day": {},
        }
        for k, r in bench.risk.items():
            s = r[i, :n]
            entry["scores"][k] = np.round(s, 5).tolist()
            on = np.flatnonzero(s > thresholds[k])
            entry["first_alarm_day"][k] = float(t[on[0]] - t0) if len(on) else None
        data["machines"].append(entry)
    return data


def plot_risk(data: dict[str, Any], liquid: str, path: str | Path) -> None:
    """Risk of the liquid model and the best-known baselines over time, threshold-normalised."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = data["machines"]
    fig, axes = plt.subplots(len(ms), 1, figsize=(9, 2.2 * len(ms)), sharex=False, squeeze=False)
    colors = {
        "threshold": "tab:gray",
        liquid: "tab:green",
        "lstm": "tab:blue",
        "gru": "tab:purple",
        "transformer": "tab:orange",
    }
    for ax, m in zip(axes[:, 0], ms):
        t = np.asarray(m["t_days"])
        for k, s in m["scores"].items():
            s = np.asarray(s)
            thr = data["thresholds"][k]
            # scores are on different scales (probability vs amplitude): show them over their own alarm threshold
            ax.plot(
                t,
                s / thr if thr > 0 else s,
                lw=1.6 if k == liquid else 0.9,
                color=colors.get(k),
                alpha=1.0 if k == liquid else 0.7,
                label=NAMES.get(k, k),
            )
            a = m["first_alarm_day"][k]
            if a is not None:
                ax.plot([a], [1.0], marker="v", ms=8, color=colors.get(k))
        ax.axhline(1.0, color="k", lw=0.6, ls=":")
        if m["failure_day"] is not None:
            f = m["failure_day"]
            ax.axvline(f, color="red", lw=1.5)
            ax.axvspan(f - data["horizon_days"], f, color="red", alpha=0.06)
            title = f"{m['machine_id']}: fails at day {f:.1f} (shaded: last {data['horizon_days']:g} days)"
        else:
            title = f"{m['machine_id']}: no failure"
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("score / alarm thr.", fontsize=8)
        ax.set_yscale("log")
    axes[-1, 0].set_xlabel("days since first reading (triangles: first alarm at the false-alarm budget)")
    axes[0, 0].legend(fontsize=7, ncol=5, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def wiring_figure(bench: Benchmark, liquid: str, path: str | Path) -> dict[str, Any]:
    """Draw the liquid model's wiring (liquidflow.interpret when present) and return its graph."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = bench.models[liquid]
    core: Any = model.core
    wiring = core.wiring
    names = list(bench.features)
    # the motor neurons feed a 2-output projection (risk logit, RUL)
    outputs = ["risk", "RUL"] if model.motors == 2 else [f"motor {i}" for i in range(model.motors)]
    try:
        from ..interpret import plot_wiring

        fig, graph = plot_wiring(
            model.core,
            input_names=names,
            output_names=outputs,
            title=f"{NAMES.get(liquid, liquid)} wiring (trained synapse strengths)",
        )
        fig.savefig(path, dpi=110)
        plt.close(fig)
        nodes = [
            {"id": str(n), **{k: v for k, v in d.items() if isinstance(v, (int, float, str))}}
            for n, d in graph.nodes(data=True)
        ]
        edges = [
            {"source": str(a), "target": str(b), **{k: v for k, v in d.items() if isinstance(v, (int, float, str))}}
            for a, b, d in graph.edges(data=True)
        ]
        return {"nodes": nodes, "edges": edges, "drawn_by": "liquidflow.interpret.plot_wiring"}
    except ImportError:
        pass
    # fallback: a plain layered drawing
    adj, sens = wiring.adjacency_matrix, wiring.sensory_adjacency_matrix
    fig, ax = plt.subplots(figsize=(8, 5))
    layers = [list(range(len(names)))] + [list(wiring.get_neurons_of_layer(i)) for i in range(wiring.num_layers)]
    pos = {}
    for c, layer in enumerate(layers):
        for r, n in enumerate(layer):
            pos[("s" if c == 0 else "n", n)] = (c, r - len(layer) / 2)
    edge_list: list[tuple[tuple[str, int], tuple[str, int], int]] = []
    for k, j in zip(*np.nonzero(sens)):
        edge_list.append((("s", int(k)), ("n", int(j)), int(sens[k, j])))
    for i, j in zip(*np.nonzero(adj)):
        edge_list.append((("n", int(i)), ("n", int(j)), int(adj[i, j])))
    for a, b, sgn in edge_list:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.plot([x0, x1], [y0, y1], color="tab:red" if sgn > 0 else "tab:blue", lw=0.6, alpha=0.6)
    for (kind, n), (x, y) in pos.items():
        ax.plot([x], [y], "o", color="k" if kind == "s" else "tab:green")
        ax.text(x, y + 0.2, names[n] if kind == "s" else str(n), fontsize=6, ha="center")
    ax.set_axis_off()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return {
        "nodes": [f"{k}{n}" for k, n in pos],
        "edges": [[f"{a[0]}{a[1]}", f"{b[0]}{b[1]}", s] for a, b, s in edge_list],
        "drawn_by": "liquidflow.maintenance (fallback)",
    }
