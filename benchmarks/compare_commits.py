"""Old commit against new: forward + backward of a few layers, the two sources alternated in one run.

Two modes:

* ``python benchmarks/compare_commits.py time --src PATH [--repeats N]`` imports liquidflow from
  ``PATH`` (a checkout's ``src`` folder) and prints, as one JSON object, the median ms of one training
  step (forward + backward) of each configuration below, at batch 32, T = 100, 20 inputs, 2 torch
  threads (``--threads``), after warm-up; the configurations run interleaved, and the repeats shrink
  (to at least 3) when they would take more than ``--budget`` seconds.
* ``python benchmarks/compare_commits.py compare --old OLD_SRC --new NEW_SRC [--rounds 7]`` runs the
  ``time`` mode in a fresh subprocess for the old and the new source in turn (old first in odd rounds,
  new first in even ones), ``--rounds`` times, and writes per-configuration new/old ratios: the median
  of the paired ratios with min and max, plus each side's median of medians.

Typical use (old = the commit before a refactor; both checked out as worktrees, so that edits in
the working tree during the run cannot leak into "new"; both use the same venv, and each builds
its own native kernels into the cache, keyed by their sources, on first use)::

    git worktree add /tmp/lf_old <old-sha>; git worktree add /tmp/lf_new HEAD
    python benchmarks/compare_commits.py compare --old /tmp/lf_old/src --new /tmp/lf_new/src \\
        --rounds 7 --threads 1 --out /tmp/compare
    git worktree remove --force /tmp/lf_old; git worktree remove --force /tmp/lf_new

On a busy machine use ``--threads 1``: with 2 threads the OpenMP kernels wait for each other
whenever one thread is descheduled, and the per-round times swing by up to 10x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    "cfc64": "CfC(20, 64)",
    "cfc_ncp": "CfC(20, AutoNCP(32, 10))",
    "ltc64": "LTC(20, 64) (6 unfolds, semi-implicit)",
    "ltc_ncp": "LTC(20, AutoNCP(32, 10))",
    "cfc64_mixed": "CfC(20, 64, mixed_memory=True)",
    "ltc64_unfolds6": "LTC(20, 64, ode_unfolds=6, solver='semi_implicit')",
}
B, T, F, THREADS = 32, 100, 20, 2


def _build(key: str):
    import torch

    from liquidflow import wirings
    from liquidflow.torch import LTC, CfC

    torch.manual_seed(0)
    if key == "cfc64":
        return CfC(F, 64)
    if key == "cfc_ncp":
        return CfC(F, wirings.AutoNCP(32, 10))
    if key == "ltc64":
        return LTC(F, 64)
    if key == "ltc_ncp":
        return LTC(F, wirings.AutoNCP(32, 10))
    if key == "cfc64_mixed":
        return CfC(F, 64, mixed_memory=True)
    if key == "ltc64_unfolds6":
        return LTC(F, 64, ode_unfolds=6, solver="semi_implicit")
    raise KeyError(key)


def time_src(
    src: str, repeats: int, warmup: int, threads: int = THREADS, budget_s: float = 20.0, only: tuple[str, ...] = ()
) -> dict:
    sys.path.insert(0, os.path.abspath(src))
    import torch

    torch.set_num_threads(threads)
    import liquidflow
    from liquidflow import _native

    loaded = Path(liquidflow.__file__).resolve()
    if Path(os.path.abspath(src)).resolve() not in loaded.parents:
        raise SystemExit(f"liquidflow came from {loaded}, not from {src}")
    x = torch.randn(B, T, F, generator=torch.Generator().manual_seed(1))
    models = {k: _build(k) for k in (only or CONFIGS)}

    def step(m) -> None:
        for p in m.parameters():
            p.grad = None
        m(x)[0].square().mean().backward()

    once = 0.0
    for m in models.values():
        t0 = time.perf_counter()
        for _ in range(warmup):
            step(m)
        once += (time.perf_counter() - t0) / max(warmup, 1)
    if once * repeats > budget_s:  # a slow machine (or a slow old path): fewer repeats, at least 3
        repeats = max(3, int(budget_s / once))
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(repeats):  # configs interleaved so that a load burst spreads over all of them
        for k, m in models.items():
            t0 = time.perf_counter()
            step(m)
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {
        "src": str(loaded.parent.parent),
        "native": {k: v.split(":")[0] for k, v in _native.status().items()},
        "median_ms": {k: statistics.median(v) for k, v in times.items()},
        "min_ms": {k: min(v) for k, v in times.items()},
        "repeats": repeats,
        "threads": torch.get_num_threads(),
    }


def _run_child(src: str, repeats: int, warmup: int, threads: int, budget_s: float) -> dict:
    cmd = [sys.executable, __file__, "time", "--src", src, "--repeats", str(repeats), "--warmup", str(warmup),
           "--threads", str(threads), "--budget", str(budget_s)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.path.abspath(src)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(old: str, new: str, rounds: int, repeats: int, warmup: int, threads: int, budget_s: float) -> dict:
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    srcs = {"old": old, "new": new}
    for r in range(rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for side in order:
            res = _run_child(srcs[side], repeats, warmup, threads, budget_s)
            runs[side].append(res)
            print(f"round {r + 1}/{rounds} {side}: " + ", ".join(f"{k} {v:.2f}" for k, v in res["median_ms"].items()),
                  file=sys.stderr, flush=True)  # fmt: skip
    table = {}
    for k in CONFIGS:
        o = [x["median_ms"][k] for x in runs["old"]]
        n = [x["median_ms"][k] for x in runs["new"]]
        ratios = [b / a for a, b in zip(o, n)]
        table[k] = {
            "title": CONFIGS[k],
            "old_ms": statistics.median(o),
            "new_ms": statistics.median(n),
            "old_ms_min_max": [min(o), max(o)],
            "new_ms_min_max": [min(n), max(n)],
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "ratios": ratios,
            "rounds_new_slower": sum(x > 1 for x in ratios),
        }
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_end": os.getloadavg(),
        },
        "settings": {
            "batch": B,
            "seq_len": T,
            "features": F,
            "threads": threads,
            "rounds": rounds,
            "repeats_per_run": repeats,
            "warmup": warmup,
            "budget_s": budget_s,
            "repeats_used": sorted({x["repeats"] for v in runs.values() for x in v}),
        },
        "old_src": old,
        "new_src": new,
        "native_old": runs["old"][0]["native"],
        "native_new": runs["new"][0]["native"],
        "configs": table,
        "runs": runs,
    }


def markdown(data: dict) -> str:
    s = data["settings"]
    lines = [
        f"Forward + backward, batch {s['batch']}, T = {s['seq_len']}, {s['features']} inputs, {s['threads']} "
        f"thread{'s' if s['threads'] != 1 else ''}; "
        f"{s['rounds']} rounds, old and new alternated (order swapped each round), median of "
        f"{'/'.join(map(str, s.get('repeats_used', [s['repeats_per_run']])))} steps per run; "
        f"ratio = new / old per round ({data['date_utc']} UTC).",
        "",
        "| layer | old ms (min–max) | new ms (min–max) | new/old median | min | max | rounds new slower |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for v in data["configs"].values():
        lines.append(
            f"| {v['title']} | {v['old_ms']:.2f} ({v['old_ms_min_max'][0]:.2f}–{v['old_ms_min_max'][1]:.2f}) "
            f"| {v['new_ms']:.2f} ({v['new_ms_min_max'][0]:.2f}–{v['new_ms_min_max'][1]:.2f}) "
            f"| {v['ratio_median']:.3f} | {v['ratio_min']:.3f} | {v['ratio_max']:.3f} "
            f"| {v['rounds_new_slower']}/{s['rounds']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("time")
    t.add_argument("--src", required=True)
    t.add_argument("--only", default="", help=f"comma-separated subset of {','.join(CONFIGS)}")
    t.add_argument("--repeats", type=int, default=15)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--threads", type=int, default=THREADS)
    t.add_argument("--budget", type=float, default=20.0, help="seconds of timed steps per run (repeats shrink)")
    c = sub.add_parser("compare")
    c.add_argument("--old", required=True)
    c.add_argument("--new", required=True)
    c.add_argument("--rounds", type=int, default=7)
    c.add_argument("--repeats", type=int, default=15)
    c.add_argument("--warmup", type=int, default=3)
    c.add_argument("--threads", type=int, default=THREADS)
    c.add_argument("--budget", type=float, default=20.0, help="seconds of timed steps per run (repeats shrink)")
    c.add_argument("--out", default="", help="write <out>.json and <out>.md")
    a = p.parse_args()
    if a.mode == "time":
        only = tuple(k for k in a.only.split(",") if k)
        if set(only) - set(CONFIGS):
            p.error(f"unknown configurations {sorted(set(only) - set(CONFIGS))}; valid: {list(CONFIGS)}")
        print(json.dumps(time_src(a.src, a.repeats, a.warmup, a.threads, a.budget, only)))
        return
    data = compare(a.old, a.new, a.rounds, a.repeats, a.warmup, a.threads, a.budget)
    md = markdown(data)
    print(md)
    if a.out:
        Path(a.out + ".json").write_text(json.dumps(data, indent=1) + "\n")
        Path(a.out + ".md").write_text("# Old vs new commit\n\n" + md)


if __name__ == "__main__":
    main()
