"""From a CSV of sensor readings to a trained model (the script behind docs/guide-csv.md).

1. write a long-format CSV of machine readings at irregular times, with gaps (NaN) and fault labels;
2. train a CfC with an NCP wiring on windows of readings (config: configs/sensors_csv.yaml);
3. reload the saved model and predict the fault state of a machine it has never seen.

    python examples/csv_to_model.py            # about a minute on a laptop CPU
    python examples/csv_to_model.py --epochs 3 # quicker
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from liquidflow.checkpoint import load_model
from liquidflow.data import IrregularSeries, Preprocessor
from liquidflow.data.synthetic import sensor_readings_frame
from liquidflow.training import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--out", default="runs/sensors")
    args = p.parse_args()

    # 1. a CSV in long format: machine, timestamp, temperature, vibration, pressure, fault
    csv = ROOT / "runs" / "data" / "sensors.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    sensor_readings_frame(n_machines=40, readings=150, seed=0).to_csv(csv, index=False)
    print(f"wrote {csv}")

    # 2. train: the shipped config, with a shorter schedule and this CSV
    cfg = TrainConfig.from_file(ROOT / "configs" / "sensors_csv.yaml").with_overrides(
        [f"data.path={csv}", f"trainer.epochs={args.epochs}", f"out_dir={args.out}"]
    )
    results = fit(cfg)
    acc, val = results["test"]["acc"], results["val"]["acc"]
    print(f"test accuracy {acc:.3f} (val {val:.3f}); model in {results['model_path']}")

    # 3. reload and predict on a new machine, with the training-time preprocessing from the metadata
    model, meta = load_model(results["model_path"])
    new = sensor_readings_frame(n_machines=1, readings=150, fault_fraction=1.0, seed=99)
    series = IrregularSeries.from_dataframe(
        new, entity="machine", time="timestamp", features=meta["preprocessor"]["feature_names"], time_unit="h"
    )
    window = cfg.data.window or 32
    windows = Preprocessor.from_dict(meta["preprocessor"]).transform(series.windows(window, cfg.data.stride))
    x = torch.tensor(np.stack(windows.values), dtype=torch.float32)
    dt = torch.tensor(np.stack(windows.timespans), dtype=torch.float32)
    with torch.no_grad():
        p_fault = model(x, timespans=dt).softmax(-1)[:, 1]
    t0 = series.times[0][0]
    for k in range(0, len(windows), 3):
        print(f"window ending at hour {windows.times[k][-1] - t0:6.1f}: p(fault) = {p_fault[k]:.2f}")
    onset = series.times[0][int(np.argmax(new["fault"].to_numpy()))] - t0
    print(f"(the machine's degradation started at hour {onset:.1f})")


if __name__ == "__main__":
    main()
