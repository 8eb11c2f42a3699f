"""Streaming the ncps way: ``y, h = rnn(x_t.unsqueeze(1), h)`` against ``layer.step`` and ncps.

    python benchmarks/stream_calls.py

CfC on an AutoNCP(32, 10) wiring, 20 inputs, batch 1, 200 steps, gradients off, 2 threads; prints
the median over 5 passes of µs per step for liquidflow's one-step call, liquidflow's ``layer.step``
and ncps 1.0.1's one-step call (skipped with a note when ncps is not installed).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from liquidflow.torch import CfC
from liquidflow.wirings import AutoNCP

Step = Callable[[torch.Tensor, Any], Any]


def per_step_us(fn: Step, xs: torch.Tensor, passes: int = 5) -> float:
    times = []
    for _ in range(passes):
        h = None
        t0 = time.perf_counter()
        with torch.no_grad():
            for t in range(xs.shape[0]):
                h = fn(xs[t], h)
        times.append((time.perf_counter() - t0) / xs.shape[0] * 1e6)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    ours = CfC(20, AutoNCP(32, 10, seed=0)).eval()
    xs = torch.randn(200, 1, 1, 20)  # (T, B, 1, F): one-step sequences
    runs: dict[str, Step] = {
        "liquidflow rnn(x_t, h)": lambda x, h: ours(x, h if h is not None else torch.zeros(1, 32))[1],
        "liquidflow layer.step": lambda x, h: ours.step(x[:, 0], h, 1.0)[1],
    }
    try:
        import ncps.torch
        import ncps.wirings

        theirs = ncps.torch.CfC(20, ncps.wirings.AutoNCP(32, 10)).eval()
        runs["ncps rnn(x_t, h)"] = lambda x, h: theirs(x, h)[1]
    except ImportError:
        print("ncps is not installed: its row is skipped")
    for name, fn in runs.items():
        per_step_us(fn, xs[:20], passes=1)  # warm up
        print(f"{name:26s} {per_step_us(fn, xs):7.1f} µs per step")


if __name__ == "__main__":
    main()
