"""The benchmark's environment record, ratios and markdown report."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ._core import LSTM_TARGET, MODEL_TITLES, MODELS, TARGETS, TORCH_IMPL, Settings, sweep_table
from .configs import markdown_configs


def _native_summary() -> str:
    from liquidflow import _native

    st = _native.status()
    bad = {k: v for k, v in st.items() if not v.startswith("ok")}
    return "on" if not bad else "; ".join(f"{k} {v.splitlines()[0]}" for k, v in bad.items())


def environment(settings: Settings) -> dict[str, Any]:
    from importlib import metadata

    import torch

    try:
        ncps_version: str | None = metadata.version("ncps")
    except metadata.PackageNotFoundError:
        ncps_version = None
    import liquidflow

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "liquidflow": liquidflow.__version__,
        "torch": torch.__version__,
        "ncps": ncps_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "native": _native_summary(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "settings": asdict(settings),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _lookup(
    results: list[dict[str, Any]], section: str, model: str, impl: str, T: int | None = None, group: str | None = None
) -> Any:
    for r in results:
        if r["section"] == section and r["model"] == model and r["impl"] == impl:
            if (T is None or r["seq_len"] == T) and (group is None or r["extra"].get("group") == group):
                return r["peak_rss_mb"] if section == "memory" else r["median_ms"]
    return None


def summarize(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Ratios: speed-up over ncps, and slowdown against nn.LSTM(20, 64), per section and model."""
    res = data["results"]
    rows = []
    for section in ("train", "infer", "stream"):
        for model in MODELS:
            lstm = _lookup(res, section, "lstm", "torch", group=model)
            lf = _lookup(res, section, model, "liquidflow")
            nc = _lookup(res, section, model, "ncps")
            lt = _lookup(res, section, model, TORCH_IMPL)
            if lf is None:
                continue
            row: dict[str, Any] = {
                "section": section,
                "model": model,
                "liquidflow_ms": lf,
                "ncps_ms": nc,
                "lstm_ms": lstm,
                "torch_kernels_ms": lt,
                "native_gain": (lt / lf) if lt else None,
                "speedup_vs_ncps": (nc / lf) if nc else None,
                "x_lstm": (lf / lstm) if lstm else None,
                "target_vs_ncps": TARGETS.get((section, model)),
            }
            if (section, model) == LSTM_TARGET[:2]:
                row["target_x_lstm"] = LSTM_TARGET[2]
            rows.append(row)
    return rows


def _num(v: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def markdown(data: dict[str, Any]) -> str:
    """The report as markdown tables."""
    env = data["environment"]
    res = data["results"]
    out = [
        "# liquidflow benchmark",
        "",
        f"{env['date_utc']} · torch {env['torch']} · ncps {env['ncps']} · liquidflow {env['liquidflow']} · "
        f"{env['cpu']} ({env['cpu_count']} CPUs) · **{env['torch_threads']} torch threads** · "
        f"load average at start {_num(env['loadavg_start'][0] if env['loadavg_start'] else None)}, "
        f"at end {_num(env['loadavg_end'][0] if env.get('loadavg_end') else None)}"
        + (" · **quick run (sanity only)**" if env["settings"]["quick"] else ""),
        "",
        "Median times in ms (warm-up runs first). ncps runs with `timespans=None` (its fastest path).",
        "Speed-up = ncps time / liquidflow time; × LSTM = liquidflow time / nn.LSTM(20, 64) time.",
        f"liquidflow native C kernels: {env.get('native', '?')}; the last column is liquidflow with them "
        "switched off (its torch kernels).",
        "",
    ]
    titles = {
        "train": "Forward + backward, batch {B}, T = {T}, 20 inputs",
        "infer": "Forward only (no grad), batch {B}, T = {T}",
        "stream": "Streaming, one step at batch 1 (ms per step)",
    }
    for section in ("train", "infer", "stream"):
        rows = [r for r in data["summary"] if r["section"] == section]
        if not rows:
            continue
        one = next(r for r in res if r["section"] == section)
        out += [f"## {titles[section].format(B=one['batch'], T=one['seq_len'])}", ""]
        out += [
            "| model | liquidflow | ncps 1.0.1 | speed-up vs ncps | target | × nn.LSTM | torch kernels (C off) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            tgt = r["target_vs_ncps"]
            status = ""
            if tgt and r["speedup_vs_ncps"]:
                status = " ✓" if r["speedup_vs_ncps"] >= tgt else " ✗"
            xl = _num(r["x_lstm"])
            if r.get("target_x_lstm"):
                xl += f" (target ≤ {r['target_x_lstm']})" + (
                    " ✓" if (r["x_lstm"] or 99) <= r["target_x_lstm"] else " ✗"
                )
            out.append(
                f"| {MODEL_TITLES[r['model']]} | {_num(r['liquidflow_ms'], '{:.3f}')} | "
                f"{_num(r['ncps_ms'], '{:.3f}')} | {_num(r['speedup_vs_ncps'])}×{status} | "
                f"{'≥ ' + _num(tgt, '{:g}') + '×' if tgt else ''} | {xl} | "
                f"{_num(r.get('torch_kernels_ms'), '{:.3f}')} |"
            )
        for peer in ("lstm", "gru"):
            vs = [r["median_ms"] for r in res if r["section"] == section and r["model"] == peer and r["median_ms"]]
            if vs:
                out.append(
                    f"| {MODEL_TITLES[peer]} (torch; median over groups) | {statistics.median(vs):.3f} | | | | |"
                )
        out.append("")
    rows = [(MODEL_TITLES[m], m, i) for m in [*MODELS, "lstm"] for i in ("liquidflow", "ncps", "torch")]
    scal = [r for r in res if r["section"] == "scaling"]
    if scal:

        def per_step(model: str, impl: str, t: int) -> str:
            v = _lookup(res, "scaling", model, impl, t)
            return "—" if v is None else f"{v:.1f} ({v / t:.3f})"

        title = (
            f"## Sequence-length scaling (forward + backward, batch {scal[0]['batch']}, ms; ms per step in brackets)"
        )
        out += sweep_table(title, "T", sorted({r["seq_len"] for r in scal}), rows, per_step)
    mem = [r for r in res if r["section"] == "memory"]
    if mem:
        title = f"## Peak memory of one training step (MB above the idle process, batch {mem[0]['batch']})"
        out += sweep_table(title, "T", sorted({r["seq_len"] for r in mem}), rows,
                           lambda m, i, t: _num(_lookup(res, "memory", m, i, t), "{:.1f}"))  # fmt: skip
    out += markdown_configs(res)
    errors = [r for r in res if r["error"]]
    if errors:
        out += ["## Errors", ""]
        out += [f"- {r['section']} {r['model']} {r['impl']} T={r['seq_len']}: {r['error']}" for r in errors]
        out.append("")
    return "\n".join(out)


def write(data: dict[str, Any], out_dir: str | Path, name: str = "latest") -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jp, mp = out / f"{name}.json", out / f"{name}.md"
    jp.write_text(json.dumps(data, indent=1) + "\n")
    mp.write_text(markdown(data))
    return jp, mp
