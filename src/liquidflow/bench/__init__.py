"""Speed and memory of liquidflow side by side with ncps 1.0.1 and torch's fused LSTM / GRU.

One run measures, on the same machine and with the same thread count:

* ``train``: forward + backward of one batch (B=32, T=100, 20 inputs) for CfC 64 units, LTC 64 units
  (6 unfolds), CfC AutoNCP(32, 10) and LTC AutoNCP(32, 10), plus ``nn.LSTM(20, 64)`` / ``nn.GRU``;
* ``infer``: the forward pass alone under ``torch.no_grad()``;
* ``stream``: one streaming step at batch 1 (liquidflow ``layer.step``; ncps calls its cell, which is
  the fastest per-step path it has; torch ``nn.LSTMCell``);
* ``configs``: forward + backward of every layer option (activations, backbone depth, modes, mixed
  memory, dropout, proj_size, LTC solvers, float64) against ncps and nn.LSTM (:mod:`.configs`);
* ``batch``: forward + backward for batch 1 to 1024;
* ``scaling``: forward + backward for T = 10, 100, 1000, 10000 (cost must grow linearly in T);
* ``memory``: peak resident memory of one training step at T = 250 and 1000, each case in a fresh
  subprocess (``resource.getrusage`` max RSS minus the RSS after building model and data).

ncps is run with ``timespans=None``: its regular path and its fastest. (Its per-sample timespans
of shape (B, T) broadcast against the hidden axis and fail or go wrong at batch > 1.)

Times are medians over repeats after warm-up runs; each repeat is timed with ``time.perf_counter``.
``python benchmarks/bench.py`` and ``liquidflow bench`` run this module; ``--quick`` is a sanity run.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ._core import (
    BATCH,
    FEATURES,
    IMPLS,
    LSTM_TARGET,
    MEMORY_T,
    MODEL_TITLES,
    MODELS,
    SCALING_T,
    SECTIONS,
    STEPS,
    TARGETS,
    TORCH_IMPL,
    Result,
    Settings,
    _fmt,
    _run_memory,
    _run_scaling,
    _run_timed,
    _time,
    _time_group,
    build_model,
    measure_memory,
)
from ._report import environment, markdown, summarize, write
from .configs import CONFIGS, markdown_configs, run_batch, run_configs, write_doc

__all__ = [
    "BATCH",
    "FEATURES",
    "IMPLS",
    "LSTM_TARGET",
    "MEMORY_T",
    "MODELS",
    "MODEL_TITLES",
    "SCALING_T",
    "STEPS",
    "TARGETS",
    "TORCH_IMPL",
    "Result",
    "Settings",
    "_fmt",
    "_time",
    "_time_group",
    "build_model",
    "environment",
    "main",
    "markdown",
    "measure_memory",
    "run",
    "summarize",
    "write",
]  # fmt: skip


def run(
    settings: Settings,
    log: Callable[[str], None] | None = None,
    checkpoint: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]:
    """Run the selected sections; returns ``{"environment": ..., "results": [...], "summary": ...}``.

    ``checkpoint`` receives the partial result after each section (so a crash loses one section)."""
    import torch

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    torch.set_num_threads(settings.threads)
    env = environment(settings)
    results: list[Result] = []
    for section in settings.sections:
        if section in ("train", "infer", "stream"):
            results += _run_timed(section, settings, log)
        elif section == "scaling":
            results += _run_scaling(settings, log)
        elif section == "configs":
            results += run_configs(settings, log, settings.configs or None)
        elif section == "batch":
            results += run_batch(settings, log)
        elif section == "memory":
            results += _run_memory(settings, log)
        else:
            raise ValueError(f"unknown section {section!r}; valid: {', '.join(SECTIONS)}")
        if checkpoint is not None:
            partial = {"environment": env, "results": [asdict(r) for r in results]}
            partial["summary"] = summarize(partial)
            checkpoint(partial)
    env["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    data = {"environment": env, "results": [asdict(r) for r in results]}
    data["summary"] = summarize(data)
    return data


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m liquidflow.bench [--quick] [--threads N] [--out DIR] [--sections ...]``."""
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--memory-case":  # internal: one memory measurement in this fresh process
        model, impl, T, B, F, threads = argv[1:7]
        print(json.dumps(measure_memory(model, impl, int(T), int(B), int(F), int(threads))))
        return 0
    p = argparse.ArgumentParser(prog="liquidflow-bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes and few repeats: a sanity run")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2; try 1)")
    p.add_argument("--out", default="benchmarks/results", help="folder for <name>.json and <name>.md")
    p.add_argument("--name", default=None, help="file stem (default: latest, or quick with --quick)")
    p.add_argument("--sections", nargs="+", default=None, help=f"subset of: {' '.join(SECTIONS)}")
    p.add_argument("--models", nargs="+", default=None, help=f"subset of: {' '.join(MODELS)}")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per case (median)")
    p.add_argument("--configs", nargs="+", default=None, help="subset of the configs section's rows (keys)")
    p.add_argument(
        "--doc",
        default=None,
        help="also write the configs/batch tables into this markdown file, "
        "between <!-- bench:configs --> and <!-- /bench:configs -->",
    )
    p.add_argument(
        "--max-call-s",
        type=float,
        default=0.0,
        help="skip a T or batch sweep case whose call would take longer (extrapolated; 0: no limit)",
    )
    p.add_argument("--no-scaling-peers", action="store_true", help="time only liquidflow and LSTM in the T sweep")
    a = p.parse_args(argv)
    s = Settings.quick_settings(a.threads) if a.quick else Settings(threads=a.threads)
    if a.sections:
        s.sections = tuple(a.sections)
    if a.models:
        bad = [m for m in a.models if m not in MODELS]
        if bad:
            p.error(f"unknown models {bad}; valid: {list(MODELS)}")
        s.models = tuple(a.models)
    if a.configs:
        bad = [c for c in a.configs if c not in {c.key for c in CONFIGS}]
        if bad:
            p.error(f"unknown configs {bad}; valid: {[c.key for c in CONFIGS]}")
        s.configs = tuple(a.configs)
    if a.repeats:
        s.repeats = a.repeats
    s.scaling_peers = not a.no_scaling_peers
    s.max_call_s = a.max_call_s
    name = a.name or ("quick" if a.quick else "latest")
    data = run(s, checkpoint=lambda partial: write(partial, a.out, name))
    jp, mp = write(data, a.out, name)
    if a.doc:
        if not write_doc(markdown_configs(data["results"]), a.doc):
            p.error(f"{a.doc} has no <!-- bench:configs --> ... <!-- /bench:configs --> block to replace")
        print(f"updated {a.doc}", file=sys.stderr)
    print(markdown(data))
    print(f"wrote {jp} and {mp}", file=sys.stderr)
    return 0
