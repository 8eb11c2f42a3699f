"""Print the measured parity errors of the torch layers: vs the numpy reference (float64),
batched vs per-sample irregular time (float32 and float64), and vs ncps 1.0.1 (float32).

    .venv/bin/python benchmarks/parity.py
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from helpers import LAYERS, make_layer, random_batch, reference_run


def main() -> None:
    print(f"{'layer':<20} {'vs reference f64':>17} {'batch vs alone f64':>19} {'batch vs alone f32':>19}")
    for name in sorted(LAYERS):
        layer = make_layer(name)
        x, dt, mask = random_batch(4, 16, seed=1, masked=True)
        y, _ = layer(x, timespans=dt, mask=mask)
        y_ref, _, _ = reference_run(layer, x, dt, mask)
        e_ref = abs(y.detach().numpy() - y_ref).max()
        errs = []
        for dtype in (torch.float64, torch.float32):
            lay = make_layer(name, dtype=dtype)
            B = 32
            xb, dtb, mb = random_batch(B, 16, dtype=dtype, seed=2, masked=True)
            yb, _ = lay(xb, timespans=dtb, mask=mb)
            alone = torch.cat([lay(xb[b : b + 1], timespans=dtb[b : b + 1], mask=mb[b : b + 1])[0] for b in range(B)])
            errs.append((yb - alone).abs().max().item())
        print(f"{name:<20} {e_ref:>17.2e} {errs[0]:>19.2e} {errs[1]:>19.2e}")
    try:
        import ncps.torch as nt
        import ncps.wirings as nw

        from liquidflow.compat.ncps import from_ncps
    except ImportError:
        print("ncps not installed: skipping the ncps comparison")
        return
    print(f"\n{'ncps module':<24} {'equidistant B=4':>16} {'irregular B=1':>14}")
    cases = {
        "CfC(5, 12)": lambda: nt.CfC(5, 12),
        "CfC no_gate": lambda: nt.CfC(5, 12, mode="no_gate"),
        "CfC pure": lambda: nt.CfC(5, 12, mode="pure"),
        "CfC AutoNCP(16,4)": lambda: nt.CfC(5, nw.AutoNCP(16, 4)),
        "CfC NCP no_gate": lambda: nt.CfC(5, nw.NCP(5, 4, 3, 3, 2, 3, 2), mode="no_gate"),
        "LTC FullyConnected(8,3)": lambda: nt.LTC(5, nw.FullyConnected(8, 3)),
        "LTC NCP": lambda: nt.LTC(5, nw.NCP(5, 4, 3, 3, 2, 3, 2)),
    }
    for name, make in cases.items():
        torch.manual_seed(0)
        theirs = make()
        ours = from_ncps(theirs)
        x = torch.randn(4, 30, 5)
        e1 = (ours(x)[0] - theirs(x)[0]).abs().max().item()
        x1, dt1 = torch.randn(1, 30, 5), torch.rand(1, 30) * 3 + 0.05
        e2 = (ours(x1, timespans=dt1)[0] - theirs(x1, timespans=dt1)[0]).abs().max().item()
        print(f"{name:<24} {e1:>16.2e} {e2:>14.2e}")


if __name__ == "__main__":
    main()
