"""Train a small NCP controller, then read it: wiring, liquid time constants, sensory -> motor influence.

A toy steering task with named sensors. The targets are known, so the report can be checked by eye:

    steer    follows  +0.6 heading_error + 0.4 (left_dist - right_dist)
    throttle follows  -0.7 speed + 0.3 front_dist
    cabin_temp drives nothing.

Both targets follow their drive with a first-order lag (time constant 0.5), and the readings
arrive at irregular times (dt between 0.1 and 0.4), so the model has to be continuous-time.

Run:  python examples/interpret_ncp.py [--out runs/interpret_ncp] [--docs]
then: liquidflow inspect runs/interpret_ncp/model.lf --data runs/interpret_ncp/data.npz --out runs/interpret_ncp/cli

``--docs`` also writes the figures used in docs/interpret.md into docs/img/.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch

from liquidflow import AutoNCP
from liquidflow.checkpoint import save_model
from liquidflow.interpret import inspect_model, integrated_gradients, path_contributions
from liquidflow.torch import LTC

SENSORS = ["heading_error", "left_dist", "right_dist", "front_dist", "speed", "cabin_temp"]
MOTORS = ["steer", "throttle"]


def make_data(n: int, steps: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Piecewise-constant sensor readings at irregular times and the lagged targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, steps // 4, len(SENSORS))).repeat(4, axis=1).astype(np.float32)
    dt = rng.uniform(0.1, 0.4, size=(n, steps)).astype(np.float32)
    drive = np.stack([0.6 * x[..., 0] + 0.4 * (x[..., 1] - x[..., 2]), -0.7 * x[..., 4] + 0.3 * x[..., 3]], axis=-1)
    y = np.zeros_like(drive)
    state = np.zeros((n, 2), dtype=np.float32)
    for t in range(steps):  # exact solution of dy/dt = (drive - y) / 0.5 over each interval
        decay = np.exp(-dt[:, t : t + 1] / 0.5)
        state = drive[:, t] + (state - drive[:, t]) * decay
        y[:, t] = state
    return x, dt, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/interpret_ncp"))
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--docs", action="store_true", help="also copy the figures to docs/img/")
    args = parser.parse_args()

    torch.manual_seed(0)
    x, dt, y = make_data(256)
    xt, dtt, yt = map(torch.from_numpy, (x, dt, y))
    model = LTC(len(SENSORS), AutoNCP(16, len(MOTORS), sparsity_level=0.5, seed=3), ode_unfolds=3)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    for epoch in range(args.epochs):
        loss = ((model(xt, timespans=dtt)[0] - yt) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        if epoch % 50 == 0 or epoch == args.epochs - 1:
            print(f"epoch {epoch:4d}  mse {loss.item():.4f}  (predicting zero: {float((yt**2).mean()):.4f})")

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"input_names": SENSORS, "output_names": MOTORS, "task": "toy steering (examples/interpret_ncp.py)"}
    save_model(model, args.out / "model.lf", meta)
    xe, dte, _ = make_data(64, seed=1)
    np.savez(args.out / "data.npz", x=xe, timespans=dte)

    inf = integrated_gradients(model, xe, dte, input_names=SENSORS, output_names=MOTORS)
    print("\nsigned influence (integrated gradients; rows: outputs, columns: sensors)")
    print(" " * 10 + "".join(f"{s:>14s}" for s in SENSORS))
    for name, row in zip(MOTORS, inf.matrix, strict=True):
        print(f"{name:>10s}" + "".join(f"{v:+14.3f}" for v in row))
    paths = path_contributions(model, xe, dte)
    for m, name in enumerate(MOTORS):
        print(f"\nstrongest paths into {name}:")
        for value, (k, a, c, mm) in paths.top(m, n=3):
            print(f"  {SENSORS[k]:>13s} -> inter {a:2d} -> command {c:2d} -> motor {mm}: {value:+.3f}")

    report = inspect_model(model, args.out, xe, dte, input_names=SENSORS, output_names=MOTORS, metadata=meta)
    print(f"\nreport: {report}")
    if args.docs:
        img = Path(__file__).resolve().parents[1] / "docs" / "img"
        img.mkdir(parents=True, exist_ok=True)
        for name in ("wiring", "dynamics", "probe_dynamics", "influence"):
            shutil.copy(args.out / f"{name}.png", img / f"interpret_{name}.png")
        print(f"figures copied to {img}")


if __name__ == "__main__":
    main()
