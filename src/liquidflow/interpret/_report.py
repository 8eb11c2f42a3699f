"""Model summary and a self-contained HTML report (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._model import get_core, get_wiring, kind

Tensor = torch.Tensor


def summary(model: nn.Module) -> dict[str, Any]:
    """Facts about a model: kind, sizes, parameter counts, synapses, wiring, solver or mode."""
    core = get_core(model)
    k = kind(model)
    wiring = get_wiring(model)
    info: dict[str, Any] = {
        "model": type(model).__name__,
        "layer": f"{type(core).__name__} ({type(core.cell).__name__})",
        "kind": k,
        "input_size": int(core.input_size),
        "state_size": int(core.state_size),
        "motor_neurons": int(core.motor_size),
        "outputs": int(core.out_features),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "trainable_parameters": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "layer_parameters": int(sum(p.numel() for p in core.parameters())),
        "mixed_memory": bool(core.mixed_memory),
    }
    if wiring is not None:
        info["wiring"] = type(wiring).__name__
        info["synapses"] = int(wiring.synapse_count)
        info["sensory_synapses"] = int(wiring.sensory_synapse_count)
        types = [wiring.get_type_of_neuron(i) for i in range(wiring.units)]
        info["neurons"] = {t: types.count(t) for t in ("inter", "command", "motor") if types.count(t)}
    cfg = core.cell.get_config()  # type: ignore[operator]
    if k == "ltc":
        info["solver"] = cfg["solver"]
        info["ode_unfolds"] = cfg["ode_unfolds"]
    else:
        info["mode"] = cfg.get("mode")
    head = getattr(model, "head", None)
    if isinstance(head, nn.Module):
        info["head"] = type(head).__name__
    return info


@dataclass
class Report:
    """Sections of an HTML report: a title, key/value tables, figures (PNG bytes) and notes."""

    title: str
    tables: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    figures: list[tuple[str, bytes, str]] = field(default_factory=list)  # (caption, png, file name)
    html_tables: list[tuple[str, str]] = field(default_factory=list)  # (heading, raw <table> html)

    def to_html(self) -> str:
        """One self-contained HTML page: every figure is embedded as a data: URI."""
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
            "font-size:0.9em;text-align:left}figure{margin:1em 0 2em}img{max-width:100%}"
            "figcaption{font-size:0.9em;color:#555}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for heading, table in self.tables:
            parts.append(f"<h2>{html.escape(heading)}</h2><table>")
            for key, value in table.items():
                shown = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
                parts.append(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(shown)}</td></tr>")
            parts.append("</table>")
        for heading, raw in self.html_tables:
            parts.append(f"<h2>{html.escape(heading)}</h2>{raw}")
        for caption, png, _ in self.figures:
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        parts.append("</body></html>")
        return "\n".join(parts)


def matrix_table(values: np.ndarray, rows: list[str], cols: list[str], fmt: str = "{:+.3g}") -> str:
    """An HTML table of a matrix with row and column labels."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        f"<tr><th>{html.escape(r)}</th>" + "".join(f"<td>{fmt.format(v)}</td>" for v in row) + "</tr>"
        for r, row in zip(rows, values, strict=True)
    )
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def inspect_model(
    model: nn.Module,
    out_dir: str | Path,
    x: Tensor | np.ndarray | None = None,
    timespans: Tensor | np.ndarray | float | None = None,
    mask: Any = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    steps: int = 32,
    reduce: str = "last",
    max_samples: int = 256,
    progress: bool = False,
    seed: int = 0,
) -> Path:
    """Write every figure (PNG) and ``report.html`` (figures embedded) for ``model`` into ``out_dir``.

    Args:
        model: an LTC/CfC layer or a model holding one in ``.core``.
        x, timespans, mask: data to analyse (raw inputs, (B, T, I)); at most ``max_samples`` sequences
            are used. Without data a probe is used: standard-normal noise whose level steps up half-way
            (in the model's normalized units for a SequenceModel).
        input_names, output_names: axis labels; default from ``metadata`` keys ``input_names`` /
            ``output_names`` when present.
        steps, reduce: integrated-gradient settings (:func:`integrated_gradients`).

    Returns:
        The path of ``report.html``. Files: ``wiring.png`` (wired models), ``dynamics.png``,
        ``probe_dynamics.png``, ``influence.png``, ``summary.json``, ``report.html``.
    """
    from ._dynamics import step_probe, timescale_shift, trace
    from ._influence import integrated_gradients, path_contributions
    from ._plots import figure_to_png, plot_dynamics, plot_influence, plot_wiring

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metadata = dict(metadata or {})
    core = get_core(model)
    input_names = input_names or metadata.get("input_names") or None
    output_names = output_names or metadata.get("output_names") or None
    if input_names is not None and len(input_names) != core.input_size:
        input_names = None
    info = summary(model)
    report = Report(title=f"liquidflow model report: {info['layer']}")
    report.tables.append(("Model", info))
    if metadata:
        shown = {
            k: v
            for k, v in metadata.items()
            if isinstance(v, (str, int, float, bool, list, dict)) and k not in ("input_names", "output_names")
        }
        if shown:
            report.tables.append(("Checkpoint metadata", shown))

    def add(name: str, caption: str, fig: Any) -> None:
        png = figure_to_png(fig)
        (out / name).write_bytes(png)
        report.figures.append((caption, png, name))

    wiring = get_wiring(model)
    if wiring is not None:
        fig, _ = plot_wiring(model, input_names, output_names)
        add(
            "wiring.png",
            "Wiring: sensory -> inter -> command -> motor, red excitatory / blue inhibitory, "
            "width = trained synaptic strength.",
            fig,
        )

    param = next(core.parameters())
    if x is None:
        gen = torch.Generator().manual_seed(seed)
        T = 64
        noise = torch.randn(16, T, core.input_size, generator=gen)
        noise[:, T // 2 :] *= 2.0
        noise[:, T // 2 :] += 1.0
        mean = getattr(model, "input_mean", None) if model is not core else None
        std = getattr(model, "input_std", None) if model is not core else None
        if std is not None:
            noise = noise * torch.as_tensor(std, dtype=noise.dtype).detach().cpu()
        if mean is not None:
            noise = noise + torch.as_tensor(mean, dtype=noise.dtype).detach().cpu()
        x = noise
        data_note = "probe: 16 sequences of standard-normal noise (normalized units), shifted up and doubled half-way"
    else:
        data_note = "user data"
    xt = torch.as_tensor(x, dtype=param.dtype)[:max_samples]
    ts = timespans
    if isinstance(ts, (torch.Tensor, np.ndarray)):
        ts = torch.as_tensor(ts, dtype=param.dtype)[:max_samples]
    mk = torch.as_tensor(mask, dtype=torch.bool)[:max_samples] if mask is not None else None

    tr = trace(model, xt, ts, mk)
    add(
        "dynamics.png",
        f"Neuron activity and time scales on the first sequence of the data ({data_note}).",
        plot_dynamics(tr, 0, input_names),
    )
    probe = step_probe(core.input_size, steps=80)
    mean = getattr(model, "input_mean", None) if model is not core else None
    std = getattr(model, "input_std", None) if model is not core else None
    probe_t = torch.as_tensor(probe, dtype=param.dtype)
    if std is not None:
        probe_t = probe_t * torch.as_tensor(std, dtype=param.dtype).detach().cpu()
    if mean is not None:
        probe_t = probe_t + torch.as_tensor(mean, dtype=param.dtype).detach().cpu()
    # the probe is sampled at the data's typical interval (the median timespan), 1.0 without data
    probe_dt = 1.0
    if isinstance(ts, (int, float)):
        probe_dt = float(ts)
    elif isinstance(ts, torch.Tensor):
        observed = ts.reshape(ts.shape[0], -1) if mk is None else ts.reshape(mk.shape)[mk]
        probe_dt = float(observed.median())
    ptr = trace(model, probe_t, probe_dt)
    add(
        "probe_dynamics.png",
        "The liquid part: every input steps from -1 to +1 (normalized units) half-way, sampled every "
        f"{probe_dt:.3g} time units; the time scales move with the input.",
        plot_dynamics(ptr, 0, input_names, title="response to an input step"),
    )
    shift = timescale_shift(ptr, 40)
    medians = np.nanmedian(tr.timescale.reshape(-1, tr.timescale.shape[-1]), 0)  # per neuron
    name = "tau_sys = C_m / (g_leak + sum of conductances)" if tr.kind == "ltc" else "1 / |Wa z + ba|"
    dyn = {
        "time scale": name,
        "median time scale per neuron (min..max over neurons)": f"{np.min(medians):.3g} .. {np.max(medians):.3g}",
        "time scale after / before the input step (min..max over neurons)": (
            f"{np.nanmin(shift):.3g} .. {np.nanmax(shift):.3g}"
        ),
    }
    report.tables.append(("Dynamics", dyn))

    inf = integrated_gradients(
        model,
        xt,
        ts,
        mk,
        steps=steps,
        reduce=reduce,
        input_names=input_names,
        output_names=output_names,
        progress=progress,
    )
    paths = None
    if wiring is not None and wiring.num_layers == 3 and not core.mixed_memory:
        paths = path_contributions(model, xt, ts, mk)
    add(
        "influence.png",
        "Signed influence of each input on each output (integrated gradients over the data, "
        f"baseline: {inf.baseline}, {inf.steps} steps, output reduced by '{inf.reduce}')"
        + ("; right: the sum of path gains through the NCP." if paths is not None else "."),
        plot_influence(inf, paths, motor_names=output_names if model is core and core.fc is None else None),
    )
    report.html_tables.append(
        ("Influence matrix (outputs x inputs)", matrix_table(inf.matrix, inf.output_names, inf.input_names))
    )
    if paths is not None:
        rows = []
        names = inf.input_names
        for m_idx in range(len(paths.motor)):
            for value, (k, a, c, mm) in paths.top(m_idx, n=3):
                rows.append(
                    f"<tr><td>{html.escape(names[k] if k < len(names) else str(k))} -> inter {a} -> "
                    f"command {c} -> motor {mm}</td><td>{value:+.3g}</td></tr>"
                )
        report.html_tables.append(
            (
                "Strongest paths per motor neuron (product of synapse gains)",
                "<table><tr><th>path</th><th>contribution</th></tr>" + "".join(rows) + "</table>",
            )
        )
    info_json = {
        "summary": info,
        "influence": inf.matrix.tolist(),
        "input_names": inf.input_names,
        "output_names": inf.output_names,
        "completeness_gap": inf.completeness_gap,
        "timescale_shift": [float(s) for s in shift],
    }
    (out / "summary.json").write_text(json.dumps(info_json, indent=2))
    path = out / "report.html"
    path.write_text(report.to_html(), encoding="utf-8")
    return path
