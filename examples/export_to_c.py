"""Train a small NCP model on irregularly sampled damped spirals, then deploy it: ONNX, C float32 and
C int8, checked against PyTorch, with the accuracy change of int8 and the Cortex-M4 footprint.

    .venv/bin/python examples/export_to_c.py [--epochs 20] [--out export-demo]

Needs gcc for the C part, and arm-none-eabi-gcc + qemu-system-arm for the footprint (skipped with a
note otherwise).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from liquidflow.data.synthetic import damped_spirals
from liquidflow.export import footprint, reference_outputs, run_c, to_c, to_onnx
from liquidflow.export._onnx import run_onnx
from liquidflow.export._toolchain import ToolError, missing_tools
from liquidflow.torch import CfC
from liquidflow.training import SequenceModel
from liquidflow.wirings import AutoNCP

# omega ~ U(0.5, 2.5), gamma ~ U(0.05, 0.5) in damped_spirals: standardise both
TARGET_MEAN = torch.tensor([1.5, 0.275])
TARGET_STD = torch.tensor([2.0, 0.45]) / 12**0.5


def load(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Damped spirals observed at random times; target: (omega, gamma) of each spiral."""
    s = damped_spirals(n, length=48, mean_gap=0.25, seed=seed)
    x = torch.tensor(np.stack(s.values), dtype=torch.float32)  # (n, 48, 2)
    dt = torch.tensor(np.stack(s.timespans), dtype=torch.float32)  # (n, 48)
    assert s.labels is not None
    y = torch.tensor(np.stack(s.labels), dtype=torch.float32)  # (n, 2)
    return x, dt, (y - TARGET_MEAN) / TARGET_STD  # standardised targets


def r2(pred: np.ndarray, y: np.ndarray) -> float:
    return float(1.0 - ((pred - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("export-demo"))
    args = ap.parse_args()
    torch.manual_seed(0)
    xtr, dttr, ytr = load(768, seed=0)
    xte, dtte, yte = load(256, seed=1)
    # a wired CfC (AutoNCP: 16 neurons, 4 motor) with a linear head; input normalisation baked in
    core = CfC(2, AutoNCP(16, 4, seed=1), return_sequences=False)
    model = SequenceModel(
        core, torch.nn.Linear(4, 2), task="regression", input_mean=xtr.mean((0, 1)), input_std=xtr.std((0, 1))
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(args.epochs):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i : i + 64]
            loss = torch.nn.functional.mse_loss(model(xtr[idx], timespans=dttr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1:2d}  train mse {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        pred = model(xte, timespans=dtte).numpy()
    print(f"\nPyTorch test R^2 (omega, gamma): {r2(pred, yte.numpy()):.4f}")

    # ONNX: the sequence graph runs any length and batch; compare at the test set's shape
    onnx_path = to_onnx(model, args.out / "spirals-sequence.onnx", mode="sequence")
    state0 = np.zeros((len(xte), model.core.state_size), np.float32)
    _, y_onnx = run_onnx(onnx_path, {"inputs": xte.numpy(), "timespans": dtte.numpy(), "initial_state": state0})
    ref = reference_outputs(model, xte, dtte).numpy()
    print(f"ONNX sequence graph vs PyTorch, max |diff|: {np.abs(y_onnx - ref).max():.2e}  ({onnx_path})")

    if missing_tools(["gcc"]):
        print("no gcc: skipping the C checks")
        return
    for dtype in ("float32", "int8"):
        gen = to_c(model, args.out / dtype, prefix="spiral", dtype=dtype)
        y_c = run_c(model, xte.numpy(), dtte.numpy(), dtype=dtype)  # every step; the model predicts at the last
        print(
            f"C {dtype:7s}: {gen.weight_bytes:5,d} B of weights, max |C - PyTorch| over all steps "
            f"{np.abs(y_c - ref).max():.2e}, test R^2 {r2(y_c[:, -1], yte.numpy()):.4f}  ({gen.source})"
        )
    try:
        for dtype in ("float32", "int8"):
            print(f"\n{footprint(model, target='cortex-m4', dtype=dtype).table()}")
    except ToolError as e:
        print(f"footprint skipped: {e}")


if __name__ == "__main__":
    main()
