"""Stream readings one at a time through the model's generated C, from Python.

    .venv/bin/python examples/compiled_streaming.py

Builds a wired CfC, compiles its C export into a shared library (needs gcc) and checks that the
compiled step gives the PyTorch outputs, then times both at batch 1.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from liquidflow.export import CompiledStepper
from liquidflow.torch import CfC
from liquidflow.wirings import AutoNCP


def main() -> None:
    torch.manual_seed(0)
    model = CfC(20, AutoNCP(32, 10)).eval()
    stepper = CompiledStepper(model)  # to_c + gcc -O2 -std=c99 -ffp-contract=off
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((500, 20)).astype(np.float32)
    dts = rng.uniform(0.05, 2.0, 500).astype(np.float32)

    with torch.no_grad():
        ref, _ = model(torch.from_numpy(xs)[None], timespans=torch.from_numpy(dts)[None])
    ys = np.stack([stepper.step(x, float(dt)) for x, dt in zip(xs, dts)])
    print(f"max |C - PyTorch| over 500 irregular steps: {np.abs(ys - ref[0].numpy()).max():.2e}")

    stepper.reset()
    t0 = time.perf_counter()
    for x, dt in zip(xs, dts):
        stepper.step(x, float(dt))
    c_us = (time.perf_counter() - t0) / len(xs) * 1e6
    state = None
    t0 = time.perf_counter()
    with torch.no_grad():
        for x, dt in zip(torch.from_numpy(xs), dts):
            _, state = model.step(x, state, dt=float(dt))
    torch_us = (time.perf_counter() - t0) / len(xs) * 1e6
    print(f"per step at batch 1: compiled C {c_us:.1f} us, PyTorch layer.step {torch_us:.1f} us")


if __name__ == "__main__":
    main()
