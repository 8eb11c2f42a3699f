"""Every layer option side by side: the ``configs`` and ``batch`` sections of the benchmark.

``configs`` times forward + backward (batch 32, T = 100, 20 inputs by default) of each configuration
the papers' recipes use — backbone activations and depths, the CfC modes, mixed memory, dropout,
``proj_size``, LTC's explicit solvers, float64 — against the same configuration in ncps 1.0.1 (where
ncps has it) and nn.LSTM(20, 64), interleaved in one group so that all see the same load. Each row
also names the path :func:`liquidflow.torch.explain` chose, and checks the goals of issue 19:

* ≥ 4x ncps where ncps has the configuration;
* within 2x of the default configuration of the same size and wiring (explicit LTC solvers: 2x per
  solver stage of ``semi_implicit``; float64: 3x of float32).

``batch`` times forward + backward of the four default models for batch 1 to 1024 (T = 100).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._core import (
    Result,
    Settings,
    _fmt,
    _peak_rss_during,
    _time_group,
    _train_fn,
    build_model,
    sweep_skip,
    sweep_table,
)

NCPS_GOAL = 4.0  # speed-up over ncps for every configuration ncps also has
BATCHES = (1, 8, 32, 128, 1024)
DOC_BEGIN, DOC_END = "<!-- bench:configs -->", "<!-- /bench:configs -->"


@dataclass(frozen=True)
class Config:
    """One row: how liquidflow (and ncps, if it has the option) build it, and what it is compared to."""

    key: str
    title: str
    kind: str  # "cfc" or "ltc"
    units: int | tuple[int, int]  # hidden units, or AutoNCP(units, motors)
    kwargs: dict[str, Any] = field(default_factory=dict)
    ncps: bool = True  # ncps 1.0.1 has this configuration
    base: str | None = None  # the key of the default configuration of the same size and wiring
    goal_x_base: float = 2.0  # allowed slowdown against ``base``
    float64: bool = False


def _stages(solver: str) -> int:
    from liquidflow._spec import TABLEAUX

    return len(TABLEAUX[solver].c) if solver in TABLEAUX else 1


CONFIGS: tuple[Config, ...] = (
    Config("cfc64", "CfC(20, 64) default (lecun_tanh backbone)", "cfc", 64),
    Config("cfc64_tanh", "CfC(20, 64, activation='tanh')", "cfc", 64, {"activation": "tanh"}, base="cfc64"),
    Config("cfc64_relu128", "CfC(20, 64, activation='relu', backbone_units=128)", "cfc", 64,
           {"activation": "relu", "backbone_units": 128}, base="cfc64"),
    Config("cfc64_silu", "CfC(20, 64, activation='silu')", "cfc", 64, {"activation": "silu"}, base="cfc64"),
    Config("cfc64_gelu", "CfC(20, 64, activation='gelu')", "cfc", 64, {"activation": "gelu"}, base="cfc64"),
    Config("cfc64_0layers", "CfC(20, 64, backbone_layers=0)", "cfc", 64, {"backbone_layers": 0}, base="cfc64"),
    Config("cfc64_2layers", "CfC(20, 64, backbone_layers=2)", "cfc", 64, {"backbone_layers": 2}, base="cfc64"),
    Config("cfc64_4layers", "CfC(20, 64, backbone_layers=4)", "cfc", 64, {"backbone_layers": 4}, base="cfc64"),
    Config("cfc64_nogate", "CfC(20, 64, mode='no_gate')", "cfc", 64, {"mode": "no_gate"}, base="cfc64"),
    Config("cfc64_pure", "CfC(20, 64, mode='pure')", "cfc", 64, {"mode": "pure"}, base="cfc64"),
    Config("cfc64_dropout", "CfC(20, 64, backbone_dropout=0.1), training", "cfc", 64,
           {"backbone_dropout": 0.1}, base="cfc64"),
    Config("cfc64_lecun_heads", "CfC(20, 64, head_activation='lecun_tanh')", "cfc", 64,
           {"head_activation": "lecun_tanh"}, ncps=False, base="cfc64"),
    Config("cfc64_proj", "CfC(20, 64, proj_size=8)", "cfc", 64, {"proj_size": 8}, base="cfc64"),
    Config("cfc64_mixed", "CfC(20, 64, mixed_memory=True)", "cfc", 64, {"mixed_memory": True}, base="cfc64"),
    Config("cfc64_f64", "CfC(20, 64) float64", "cfc", 64, ncps=False, base="cfc64", goal_x_base=3.0, float64=True),
    Config("cfc192", "CfC(20, 192) default", "cfc", 192),
    Config("cfc192_relu128", "CfC(20, 192, activation='relu', backbone_units=128): the CfC paper's XOR recipe",
           "cfc", 192, {"activation": "relu", "backbone_units": 128}, base="cfc192"),
    Config("cfc_ncp64", "CfC(20, AutoNCP(64, 10))", "cfc", (64, 10)),
    Config("cfc_ncp64_mixed", "CfC(20, AutoNCP(64, 10), mixed_memory=True)", "cfc", (64, 10),
           {"mixed_memory": True}, base="cfc_ncp64"),
    Config("ltc64", "LTC(20, 64) (6 unfolds)", "ltc", 64),
    Config("ltc64_mixed", "LTC(20, 64, mixed_memory=True)", "ltc", 64, {"mixed_memory": True}, base="ltc64"),
    Config("ltc64_f64", "LTC(20, 64) float64", "ltc", 64, ncps=False, base="ltc64", goal_x_base=3.0, float64=True),
    Config("ltc_ncp", "LTC(20, AutoNCP(32, 10)) semi_implicit", "ltc", (32, 10)),
    *(
        Config(f"ltc_ncp_{s}", f"LTC(20, AutoNCP(32, 10), solver='{s}')", "ltc", (32, 10), {"solver": s},
               ncps=False, base="ltc_ncp", goal_x_base=2.0 * _stages(s))
        for s in ("euler", "midpoint", "heun", "rk4")
    ),
)  # fmt: skip
BY_KEY = {c.key: c for c in CONFIGS}


def build(config: Config, impl: str, features: int, seed: int = 0) -> Any:
    """The layer of ``config`` from liquidflow (``impl="liquidflow"``) or ncps (``"ncps"``)."""
    import torch

    torch.manual_seed(seed)
    if impl == "ncps":
        from ncps import wirings
        from ncps.torch import LTC, CfC
    else:
        from liquidflow import wirings  # type: ignore[no-redef]
        from liquidflow.torch import LTC, CfC  # type: ignore[no-redef]
    units: Any = wirings.AutoNCP(*config.units) if isinstance(config.units, tuple) else config.units
    cls = CfC if config.kind == "cfc" else LTC
    model = cls(features, units, **config.kwargs)
    return model.double() if config.float64 else model


def path_of(model: Any, x: Any) -> str:
    """The path liquidflow's dispatcher takes for a training call (``explain``)."""
    from liquidflow.torch import explain

    try:
        return explain(model, x).path
    except Exception as e:  # a layer the dispatcher cannot explain is reported, not fatal
        return f"? ({type(e).__name__})"


def run_configs(settings: Settings, log: Callable[[str], None], keys: tuple[str, ...] | None = None) -> list[Result]:
    """The ``configs`` section: each configuration timed interleaved with its ncps twin and nn.LSTM."""
    import torch

    results: list[Result] = []
    B, T, F = settings.batch, settings.steps, settings.features
    x32 = torch.randn(B, T, F, generator=torch.Generator().manual_seed(1))
    for config in (BY_KEY[k] for k in keys) if keys else CONFIGS:
        x = x32.double() if config.float64 else x32
        impls = ("liquidflow", "ncps") if config.ncps else ("liquidflow",)
        fns: dict[str, Callable[[], None]] = {}
        pending: list[Result] = []
        for impl in (*impls, "lstm"):
            res = Result("configs", config.key, impl if impl != "lstm" else "torch", T, B)
            try:
                model = build_model("lstm", "torch", F) if impl == "lstm" else build(config, impl, F)
                if impl == "lstm" and config.float64:
                    model = model.double()
                if impl == "liquidflow":
                    res.extra["path"] = path_of(model, x)
                fns[impl] = _train_fn(model, x)
                fns[impl]()  # fail here, not inside the timing loop
            except Exception as e:  # a failing peer is reported, not fatal
                res.error = f"{type(e).__name__}: {e}"
                fns.pop(impl, None)
            pending.append(res)
        stats = _time_group(fns, settings)
        for res, impl in zip(pending, (*impls, "lstm"), strict=True):
            st = stats.get(impl)
            if st is not None:
                res.median_ms, res.iqr_ms, res.repeats = st["median_ms"], st["iqr_ms"], st["repeats"]
                res.extra.update(min_ms=st["min_ms"], group=config.key)
            if impl == "lstm":
                res.model, res.extra["group"] = "lstm", config.key
            results.append(res)
            log(_fmt(res))
    return results


def run_batch(settings: Settings, log: Callable[[str], None]) -> list[Result]:
    """The ``batch`` section: forward + backward for batch 1..1024 (T = settings.steps)."""
    import torch

    results: list[Result] = []
    T, F = settings.steps, settings.features
    batches = (1, 8) if settings.quick else BATCHES
    for model_name in [*settings.models, "lstm"]:
        impls = ("torch",) if model_name == "lstm" else (("liquidflow", "ncps") if settings.scaling_peers else
                                                          ("liquidflow",))  # fmt: skip
        models = {impl: build_model(model_name, impl, F) for impl in impls}
        per_sample_mb = dict.fromkeys(impls, 0.0)
        per_sample_s = dict.fromkeys(impls, 0.0)
        for B in batches:
            x = torch.randn(B, T, F, generator=torch.Generator().manual_seed(1))
            fns = {}
            for impl, m in models.items():
                # ncps' LTC 64 would need ~40 GB at B = 1024: skip what will not fit (or, with
                # settings.max_call_s, take too long), extrapolating linearly from the smaller batch
                why = sweep_skip(per_sample_mb[impl] * B, per_sample_s[impl] * B, settings, "B")
                if why:
                    res = Result("batch", model_name, impl, T, B)
                    res.error = why
                    results.append(res)
                    log(_fmt(res))
                    continue
                fn = _train_fn(m, x)
                per_sample_mb[impl] = _peak_rss_during(fn) / B  # the last batch's (a first warm-up run)
                fns[impl] = fn
            stats = _time_group(fns, settings)
            for impl, st in stats.items():
                per_sample_s[impl] = st["median_ms"] / 1e3 / B
                res = Result("batch", model_name, impl, T, B, st["median_ms"], st["iqr_ms"], st["repeats"],
                             extra={"min_ms": st["min_ms"], "per_sample_ms": st["median_ms"] / B})  # fmt: skip
                results.append(res)
                log(_fmt(res))
    return results


def _get(res: list[dict[str, Any]], section: str, model: str, impl: str, **match: Any) -> dict[str, Any] | None:
    for r in res:
        if r["section"] == section and r["model"] == model and r["impl"] == impl and r["median_ms"] is not None:
            if all(r.get(k) == v or r["extra"].get(k) == v for k, v in match.items()):
                return r
    return None


def summarize_configs(res: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration: times, ratios and whether each goal is met."""
    rows = []
    for config in CONFIGS:
        lf = _get(res, "configs", config.key, "liquidflow")
        if lf is None:
            continue
        nc = _get(res, "configs", config.key, "ncps")
        lstm = _get(res, "configs", "lstm", "torch", group=config.key)
        base = _get(res, "configs", config.base, "liquidflow") if config.base else None
        ms = lf["median_ms"]
        row: dict[str, Any] = {
            "key": config.key,
            "title": config.title,
            "path": lf["extra"].get("path"),
            "liquidflow_ms": ms,
            "ncps_ms": nc["median_ms"] if nc else None,
            "speedup_vs_ncps": nc["median_ms"] / ms if nc else None,
            "x_base": ms / base["median_ms"] if base else None,
            "goal_x_base": config.goal_x_base if config.base else None,
            "x_lstm": ms / lstm["median_ms"] if lstm else None,
        }
        row["ncps_ok"] = None if row["speedup_vs_ncps"] is None else row["speedup_vs_ncps"] >= NCPS_GOAL
        row["base_ok"] = None if row["x_base"] is None else row["x_base"] <= config.goal_x_base
        rows.append(row)
    return rows


def _n(v: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def markdown_configs(res: list[dict[str, Any]]) -> list[str]:
    """The ``configs`` and ``batch`` tables (empty when neither section ran)."""
    out: list[str] = []
    rows = summarize_configs(res)
    if rows:
        one = next(r for r in res if r["section"] == "configs")
        out += [
            f"## Every configuration: forward + backward, batch {one['batch']}, T = {one['seq_len']}, 20 inputs (ms)",
            "",
            f"Goals: ≥ {NCPS_GOAL:g}x ncps where ncps has the configuration; within 2x of the default "
            "configuration of the same size and wiring (explicit solvers: 2x per stage; float64: 3x of float32).",
            "",
            "| configuration | path | liquidflow | ncps 1.0.1 | × faster than ncps | × its default (goal) "
            "| × nn.LSTM |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            base = "—" if r["x_base"] is None else f"{r['x_base']:.2f} (≤ {r['goal_x_base']:g}){_mark(r['base_ok'])}"
            out.append(
                f"| {r['title']} | {r['path'] or '?'} | {_n(r['liquidflow_ms'], '{:.1f}')} | "
                f"{_n(r['ncps_ms'], '{:.1f}')} | {_n(r['speedup_vs_ncps'])}{_mark(r['ncps_ok'])} | {base} | "
                f"{_n(r['x_lstm'])} |"
            )
        out.append("")
    batch = [r for r in res if r["section"] == "batch"]
    if batch:

        def per_sample(model: str, impl: str, b: int) -> str:
            hit = _get(res, "batch", model, impl, batch=b)
            return "—" if hit is None else f"{hit['median_ms']:.1f} ({1e3 * hit['median_ms'] / b:.0f})"

        title = f"## Batch scaling: forward + backward, T = {batch[0]['seq_len']} (ms; µs per sample in brackets)"
        labels = [(r["model"], r["model"], r["impl"]) for r in batch]
        out += sweep_table(title, "B", sorted({r["batch"] for r in batch}), list(dict.fromkeys(labels)), per_sample)
    return out


def write_doc(markdown_lines: list[str], doc: str | Path) -> bool:
    """Replace the block between ``<!-- bench:configs -->`` and ``<!-- /bench:configs -->`` in ``doc``.

    Returns False (and changes nothing) when the file has no such block."""
    from .._files import atomic_write

    p = Path(doc)
    text = p.read_text()
    if DOC_BEGIN not in text or DOC_END not in text:
        return False
    block = DOC_BEGIN + "\n" + "\n".join(markdown_lines).strip() + "\n" + DOC_END
    new = re.sub(re.escape(DOC_BEGIN) + r".*?" + re.escape(DOC_END), lambda _: block, text, count=1, flags=re.S)
    atomic_write(p, new, mode=0o644)
    return True
