"""Batch-1 streaming, one thread: ncps step by step vs liquidflow ``layer.step`` vs ``CompiledStepper``.

For each model, ncps 1.0.1 builds it and ``liquidflow.compat.ncps.from_ncps`` copies its weights, so
all contenders compute the same function (the script checks the compiled outputs against ncps'
over the timed sequence). Timed per step, at batch 1, with irregular elapsed times:

* ncps: ``module(x[:, t:t+1], hx, timespans=dt[:, t:t+1])`` on a (1, 1, F) tensor, as a user
  streams with the layer (``torch.no_grad``);
* liquidflow: ``layer.step(x_t, hx, dt_t)`` on a (1, F) tensor (``torch.no_grad``);
* compiled: ``CompiledStepper.step(x_t, dt_t)`` on a (F,) float32 numpy array (returns a new array);
* compiled run: ``CompiledStepper.run(x, dt)`` over the whole sequence (the loop in C), per step;
* compiled fast: ``CompiledStepper(..., fast_math=True).step`` (``-O3 -march=native -ffast-math``).

Repeats of the contenders are interleaved and the median is reported; the compile time of each
stepper (gcc, no cache) is recorded too. Results: benchmarks/results/stream_compiled.{json,md}.

    .venv/bin/python benchmarks/stream_compiled.py [--steps 300] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from liquidflow.compat.ncps import from_ncps
from liquidflow.export import CompiledStepper

RESULTS = Path(__file__).parent / "results"
FEATURES = 20


def _models() -> dict[str, Callable[[], Any]]:
    import ncps.torch as nt
    import ncps.wirings as nw

    return {
        "CfC 64 units": lambda: nt.CfC(FEATURES, 64),
        "LTC 64 units": lambda: nt.LTC(FEATURES, 64),
        "CfC AutoNCP(32,10)": lambda: nt.CfC(FEATURES, nw.AutoNCP(32, 10)),
        "LTC AutoNCP(32,10)": lambda: nt.LTC(FEATURES, nw.AutoNCP(32, 10)),
    }


def _time_interleaved(fns: dict[str, Callable[[], None]], repeats: int, steps: int) -> dict[str, float]:
    """Median µs per step of each function (each runs ``steps`` steps); repeats interleaved."""
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) / steps * 1e6)
    return {k: statistics.median(v) for k, v in times.items()}


def _bench_one(name: str, make: Callable[[], Any], steps: int, repeats: int) -> dict[str, Any]:
    """Time one model's contenders; returns its result row."""
    torch.manual_seed(0)
    theirs = make().eval()
    ours = from_ncps(theirs).eval()
    g = torch.Generator().manual_seed(1)
    T = steps
    x = torch.randn(1, T, FEATURES, generator=g)
    dt = torch.rand(1, T, generator=g) * 0.9 + 0.1
    xn, dtn = x[0].numpy().copy(), dt[0].numpy().copy()
    dts = [float(v) for v in dtn]
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        stepper = CompiledStepper(ours, cache_dir=cache)
        compile_s = time.perf_counter() - t0
        fast = CompiledStepper(ours, cache_dir=cache, fast_math=True)

        with torch.no_grad():
            y_ncps, _ = theirs(x, timespans=dt)
        err = float(np.abs(stepper.run(xn, dtn, stepper.init_state()) - y_ncps[0].numpy()).max())
        err_fast = float(np.abs(fast.run(xn, dtn, fast.init_state()) - y_ncps[0].numpy()).max())

        def run_ncps(m: Any = theirs) -> None:
            with torch.no_grad():
                hx = None
                for t in range(T):
                    _, hx = m(x[:, t : t + 1], hx, timespans=dt[:, t : t + 1])

        def run_lf(m: Any = ours) -> None:
            with torch.no_grad():
                hx = None
                for t in range(T):
                    _, hx = m.step(x[:, t], hx, dts[t])

        def run_compiled(s: CompiledStepper = stepper) -> None:
            s.reset()
            for t in range(T):
                s.step(xn[t], dts[t])

        def run_fast(s: CompiledStepper = fast) -> None:
            s.reset()
            for t in range(T):
                s.step(xn[t], dts[t])

        def run_compiled_loop(s: CompiledStepper = stepper) -> None:
            s.reset()
            s.run(xn, dtn)

        us = _time_interleaved(
            {
                "ncps": run_ncps,
                "liquidflow": run_lf,
                "compiled": run_compiled,
                "compiled_run": run_compiled_loop,
                "compiled_fast": run_fast,
            },
            repeats,
            T,
        )
    row = {
        "model": name,
        "ncps_us": us["ncps"],
        "liquidflow_step_us": us["liquidflow"],
        "compiled_step_us": us["compiled"],
        "compiled_run_us": us["compiled_run"],
        "compiled_fast_step_us": us["compiled_fast"],
        "liquidflow_vs_ncps": us["ncps"] / us["liquidflow"],
        "compiled_step_vs_ncps": us["ncps"] / us["compiled"],
        "compiled_run_vs_ncps": us["ncps"] / us["compiled_run"],
        "compiled_fast_step_vs_ncps": us["ncps"] / us["compiled_fast"],
        "compile_s": compile_s,
        "max_abs_diff_compiled_vs_ncps": err,
        "max_abs_diff_compiled_fast_vs_ncps": err_fast,
    }
    print(
        f"{name}: ncps {us['ncps']:.1f} µs, layer.step {us['liquidflow']:.1f} µs, "
        f"CompiledStepper.step {us['compiled']:.2f} µs ({row['compiled_step_vs_ncps']:.0f}x), "
        f"run {us['compiled_run']:.2f} µs/step, fast_math step {us['compiled_fast']:.2f} µs "
        f"({row['compiled_fast_step_vs_ncps']:.0f}x); compile {compile_s:.2f} s; |compiled - ncps| {err:.1e}"
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description="batch-1 streaming: ncps vs liquidflow layer.step vs CompiledStepper")
    ap.add_argument("--steps", type=int, default=300, help="steps per timed loop")
    ap.add_argument("--repeats", type=int, default=7, help="timed loops per contender (median reported)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, make in _models().items():
        rows.append(_bench_one(name, make, args.steps, args.repeats))
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    meta = {
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "compiler": gcc,
        "threads": 1,
        "batch": 1,
        "steps": args.steps,
        "repeats": args.repeats,
        "features": FEATURES,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stream_compiled.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    cmd = f"python benchmarks/stream_compiled.py --steps {args.steps} --repeats {args.repeats}"
    lines = [
        "# Batch-1 streaming, one thread: ncps vs liquidflow `layer.step` vs `CompiledStepper`",
        "",
        f"`{cmd}` — torch {meta['torch']}, {gcc}; µs per step (median of {args.repeats} loops of "
        f"{args.steps} steps, {FEATURES} inputs, irregular dt).",
        "",
        "| model | ncps | liquidflow `layer.step` | `CompiledStepper.step` | `.run` (per step) "
        "| `.step`, `fast_math=True` | step vs ncps | fast step vs ncps | compile (s) "
        "| max abs diff vs ncps (exact / fast) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['ncps_us']:.1f} | {r['liquidflow_step_us']:.1f} ({r['liquidflow_vs_ncps']:.2f}x) "
            f"| {r['compiled_step_us']:.2f} | {r['compiled_run_us']:.2f} | {r['compiled_fast_step_us']:.2f} "
            f"| {r['compiled_step_vs_ncps']:.1f}x | {r['compiled_fast_step_vs_ncps']:.1f}x | {r['compile_s']:.2f} "
            f"| {r['max_abs_diff_compiled_vs_ncps']:.1e} / {r['max_abs_diff_compiled_fast_vs_ncps']:.1e} |"
        )
    (RESULTS / "stream_compiled.md").write_text("\n".join(lines) + "\n")
    print(f"\nwrote {RESULTS / 'stream_compiled.json'} and {RESULTS / 'stream_compiled.md'}")


if __name__ == "__main__":
    main()
