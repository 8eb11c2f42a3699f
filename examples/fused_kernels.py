"""The sequence kernels: same numbers on every path, in less time.

    python examples/fused_kernels.py

Trains nothing: prints which path each layer takes (``liquidflow.torch.explain``), then times one
forward + backward of an LTC on an AutoNCP(32, 10) wiring and a CfC with 64 units (batch 32, 100
irregular steps) on each path, forced with ``liquidflow.torch.use_path`` — the native C kernels
(the default on CPU), the fused torch kernels (what runs on GPUs, or without a C compiler) and the
plain step loop — checks that outputs and gradients agree, then times a streaming ``layer.step``
at batch 1 on the C step and the torch one-step kernel. See docs/architecture.md,
docs/performance.md and ``python benchmarks/bench.py``.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager

import torch

from liquidflow import _native
from liquidflow.torch import LTC, CfC, explain, use_path
from liquidflow.wirings import AutoNCP

PATHS = {"native C": "native", "torch kernels": "fused", "plain loop": "loop"}


def path(name: str) -> AbstractContextManager[None]:
    return use_path(PATHS[name])


def forward_backward(model: torch.nn.Module, x: torch.Tensor, dt: torch.Tensor, name: str):
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    with path(name):
        out, _ = model(x, timespans=dt)
        out.square().mean().backward()
    ms = (time.perf_counter() - t0) * 1e3
    return ms, out.detach(), [p.grad.clone() for p in model.parameters()]


def stream_us(model: torch.nn.Module, xs: torch.Tensor, name: str) -> float:
    with torch.no_grad(), path(name):
        h = None
        t0 = time.perf_counter()
        for t in range(xs.shape[0]):
            _, h = model.step(xs[t], h, 0.1)
    return (time.perf_counter() - t0) / xs.shape[0] * 1e6


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    print("native kernels:", "on" if _native.load("ltc") is not None else f"unavailable ({_native.status()['ltc']})")
    x = torch.randn(32, 100, 20)
    dt = torch.rand(32, 100) + 0.5  # irregular sampling: each sample has its own elapsed times
    xs = torch.randn(300, 20)
    paths = tuple(PATHS)
    print(explain(CfC(20, 64, mode="pure"), x), "\n")  # a configuration with no kernel says why
    for title, model in [("LTC AutoNCP(32, 10)", LTC(20, AutoNCP(32, 10))), ("CfC 64", CfC(20, 64))]:
        print(f"{title}:", explain(model, x, timespans=dt))
        runs = {}
        for name in paths:
            forward_backward(model, x, dt, name)  # warm up
            runs[name] = min((forward_backward(model, x, dt, name) for _ in range(3)), key=lambda r: r[0])
        _, out_ref, grads_ref = runs["plain loop"]
        print(f"{title}: forward + backward, batch 32, 100 steps")
        for name, (ms, out, grads) in runs.items():
            out_err = (out - out_ref).abs().max().item()
            grad_err = max((a - b).abs().max().item() for a, b in zip(grads, grads_ref))
            print(f"  {name:14s} {ms:8.1f} ms   vs plain loop: outputs {out_err:.1e}, gradients {grad_err:.1e}")
        for name in paths[:2]:
            stream_us(model, xs[:20], name)  # warm up
            print(f"  layer.step at batch 1, {name:14s} {stream_us(model, xs, name):7.1f} µs per step")


if __name__ == "__main__":
    main()
