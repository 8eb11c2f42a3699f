"""Host C step vs the ncps PyTorch module called step by step (the streaming use on a gateway).

For each model, ncps 1.0.1 builds it, ``liquidflow.compat.ncps.from_ncps`` copies its weights, and
``liquidflow.export.to_c`` generates C from the copy. The benchmark checks that the C outputs equal
ncps' outputs over the timed sequence, then times one step of each side by side, single-threaded:

* ncps: ``module(x[:, t:t+1], hx, timespans=dt[:, t:t+1])`` per step, under ``torch.no_grad``;
* liquidflow PyTorch: ``layer.step(x[:, t], hx, dt[:, t])``;
* C: ``<prefix>_step`` in a loop compiled with ``gcc -O2`` (the strict export flags), timed with
  ``clock_gettime`` inside the program.

Results go to benchmarks/results/c_step.json and .md.

    .venv/bin/python benchmarks/c_step.py [--steps 2000]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from liquidflow.compat.ncps import from_ncps
from liquidflow.export import reference_outputs, run_c, to_c
from liquidflow.export._c import _array
from liquidflow.export._toolchain import build_host

RESULTS = Path(__file__).parent / "results"

BENCH_MAIN = """#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>
#include "bm.h"
{data}
int main(void)
{{
    static bm_state_t st;
    float y[BM_OUTPUT_SIZE];
    float sink = 0.0f;
    struct timespec a, b;
    int t, rep;
    double best = 1e30;
    for (rep = 0; rep < 5; ++rep) {{
        bm_init(&st);
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (t = 0; t < {steps}; ++t) {{
            bm_step(&st, &bx[t * BM_INPUT_SIZE], bdt[t], y);
            sink += y[0];
        }}
        clock_gettime(CLOCK_MONOTONIC, &b);
        {{
            double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
            if (ns < best) best = ns;
        }}
    }}
    printf("%.3f %g\\n", best / {steps}, (double)sink);
    return 0;
}}
"""


def time_c(model: torch.nn.Module, x: np.ndarray, dt: np.ndarray, dtype: str) -> float:
    """Nanoseconds per step of the generated C (best of 5 runs over the sequence)."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gen = to_c(model, d, prefix="bm", dtype=dtype)
        data = _array("float", "bx", x) + _array("float", "bdt", dt)
        main = d / "main.c"
        main.write_text(BENCH_MAIN.format(data=data, steps=len(dt)))
        exe = build_host([main, gen.source], d / "bench", include=[d])
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return float(out.split()[0])


def time_torch_steps(step_fn, x: torch.Tensor, dt: torch.Tensor, steps: int) -> float:  # type: ignore[no-untyped-def]
    """Nanoseconds per step of a Python step loop (best of 3)."""
    best = float("inf")
    for _ in range(3):
        hx = None
        t0 = time.perf_counter()
        with torch.no_grad():
            for t in range(steps):
                hx = step_fn(x, dt, t, hx)
        best = min(best, (time.perf_counter() - t0) / steps * 1e9)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description="host C step vs ncps PyTorch step by step")
    ap.add_argument("--steps", type=int, default=2000, help="steps of the C loop")
    ap.add_argument("--torch-steps", type=int, default=300, help="steps of each PyTorch loop")
    args = ap.parse_args()
    import ncps.torch as nt
    import ncps.wirings as nw

    torch.set_num_threads(1)
    models = {
        "LTC AutoNCP(32,10), 20 inputs": lambda: nt.LTC(20, nw.AutoNCP(32, 10)),
        "CfC AutoNCP(32,10), 20 inputs": lambda: nt.CfC(20, nw.AutoNCP(32, 10)),
        "CfC 32 units (backbone 128), 20 inputs": lambda: nt.CfC(20, 32),
    }
    rows = []
    for name, make in models.items():
        torch.manual_seed(0)
        theirs = make().eval()
        ours = from_ncps(theirs).eval()
        g = torch.Generator().manual_seed(1)
        x = torch.randn(1, args.steps, 20, generator=g)
        dt = torch.rand(1, args.steps, generator=g) * 0.9 + 0.1

        # the same numbers: C (our copy of the weights) vs ncps, over the timed sequence
        n_check = min(args.steps, 300)
        with torch.no_grad():
            y_ncps, _ = theirs(x[:, :n_check], timespans=dt[:, :n_check])
        y_c = run_c(ours, x[0, :n_check].numpy(), dt[0, :n_check].numpy())
        err = float(np.abs(y_c - y_ncps[0].numpy()).max())
        err_torch = float((reference_outputs(ours, x[:, :n_check], dt[:, :n_check]) - y_ncps).abs().max())

        def ncps_step(x, dt, t, hx, m=theirs):  # type: ignore[no-untyped-def]
            _, hx = m(x[:, t : t + 1], hx, timespans=dt[:, t : t + 1])
            return hx

        def lf_step(x, dt, t, hx, m=ours):  # type: ignore[no-untyped-def]
            _, hx = m.step(x[:, t], hx, dt[:, t])
            return hx

        n = min(args.torch_steps, args.steps)
        ns_ncps = time_torch_steps(ncps_step, x, dt, n)
        ns_lf = time_torch_steps(lf_step, x, dt, n)
        ns_c = time_c(ours, x[0].numpy(), dt[0].numpy(), "float32")
        ns_c8 = time_c(ours, x[0].numpy(), dt[0].numpy(), "int8")
        rows.append(
            {
                "model": name,
                "ncps_torch_us_per_step": ns_ncps / 1e3,
                "liquidflow_torch_us_per_step": ns_lf / 1e3,
                "c_float32_us_per_step": ns_c / 1e3,
                "c_int8_us_per_step": ns_c8 / 1e3,
                "speedup_c_vs_ncps": ns_ncps / ns_c,
                "max_abs_diff_c_vs_ncps": err,
                "max_abs_diff_liquidflow_torch_vs_ncps": err_torch,
            }
        )
        r = rows[-1]
        print(
            f"{name}: ncps {r['ncps_torch_us_per_step']:.1f} us, liquidflow torch "
            f"{r['liquidflow_torch_us_per_step']:.1f} us, C {r['c_float32_us_per_step']:.2f} us "
            f"(int8 {r['c_int8_us_per_step']:.2f} us): {r['speedup_c_vs_ncps']:.0f}x; |C - ncps| {err:.1e}"
        )
    meta = {
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": 1,
        "c_flags": "gcc -std=c99 -O2 -ffp-contract=off",
        "steps": args.steps,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "c_step.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "# Host C step vs PyTorch step by step (batch 1, one thread)",
        "",
        f"`{' '.join(['.venv/bin/python', 'benchmarks/c_step.py', '--steps', str(args.steps)])}` — "
        f"torch {meta['torch']}, {meta['c_flags']}.",
        "",
        "| model | ncps torch (µs/step) | liquidflow torch (µs/step) | C float32 (µs/step) | C int8 (µs/step) "
        "| C vs ncps | max abs diff C vs ncps |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['ncps_torch_us_per_step']:.1f} | {r['liquidflow_torch_us_per_step']:.1f} "
            f"| {r['c_float32_us_per_step']:.2f} | {r['c_int8_us_per_step']:.2f} | {r['speedup_c_vs_ncps']:.0f}x "
            f"| {r['max_abs_diff_c_vs_ncps']:.1e} |"
        )
    (RESULTS / "c_step.md").write_text("\n".join(lines) + "\n")
    print(f"\nwrote {RESULTS / 'c_step.json'} and {RESULTS / 'c_step.md'}")


if __name__ == "__main__":
    main()
