"""The fused sequence kernels: same numbers as the plain step loop, in less time.

    python examples/fused_kernels.py

Trains nothing: times one forward + backward of an LTC on an AutoNCP(32, 10) wiring and a CfC with
64 units, with liquidflow's fused kernels (the default) and with the plain step loop, and checks
that outputs and gradients agree. See docs/performance.md and ``python benchmarks/bench.py``.
"""

from __future__ import annotations

import time

import torch

from liquidflow.torch import LTC, CfC
from liquidflow.torch._fused import use_fused
from liquidflow.wirings import AutoNCP


def forward_backward(model: torch.nn.Module, x: torch.Tensor, dt: torch.Tensor, fused: bool):
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    with use_fused(fused):
        out, _ = model(x, timespans=dt)
    out.square().mean().backward()
    ms = (time.perf_counter() - t0) * 1e3
    return ms, out.detach(), [p.grad.clone() for p in model.parameters()]


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x = torch.randn(32, 100, 20)
    dt = torch.rand(32, 100) + 0.5  # irregular sampling: each sample has its own elapsed times
    for name, model in [("LTC AutoNCP(32, 10)", LTC(20, AutoNCP(32, 10))), ("CfC 64", CfC(20, 64))]:
        forward_backward(model, x, dt, True)  # warm up
        fast_ms, out_f, grads_f = forward_backward(model, x, dt, True)
        plain_ms, out_p, grads_p = forward_backward(model, x, dt, False)
        out_err = (out_f - out_p).abs().max().item()
        grad_err = max((a - b).abs().max().item() for a, b in zip(grads_f, grads_p))
        print(
            f"{name:22s} fused {fast_ms:7.1f} ms   plain loop {plain_ms:7.1f} ms   "
            f"max |difference|: outputs {out_err:.1e}, gradients {grad_err:.1e}"
        )


if __name__ == "__main__":
    main()
