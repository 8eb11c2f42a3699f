"""Predictive maintenance in a few lines: simulate a fleet, train a liquid model, compare it with an
amplitude alarm, then stream readings through a Monitor.

Run: python examples/maintenance_quickstart.py   (about a minute on 2 CPU cores)
"""

from __future__ import annotations

import torch

from liquidflow.maintenance import Monitor, TrainConfig, run_benchmark, simulate


def main() -> None:
    torch.set_num_threads(1)  # tiny models: one thread is fastest
    # 1. a fleet of 30 machines over 45 days, sensors waking every ~3 h, 14-day horizon
    df = simulate(30, 45.0, seed=0)
    print(f"{len(df):,} readings of {df['machine_id'].nunique()} machines; columns: {list(df.columns)}")

    # 2. the liquid model (CfC + AutoNCP) against the tuned amplitude alarm, same machines and metrics
    bench = run_benchmark(df, baselines=(), config=TrainConfig(epochs=10), budget=0.5, log=print)
    print(bench.table_text())

    # 3. streaming: one reading at a time, machines interleaved, one state per machine
    model = bench.models["cfc"]
    monitor = Monitor(model, threshold=bench.val_thresholds["cfc"])
    test_ids = set(bench.test.ids)
    stream = df[df["machine_id"].isin(test_ids)].sort_values("timestamp")  # arrival order across the fleet
    for row in stream.itertuples(index=False):
        r = monitor.update(row.machine_id, row.timestamp, [getattr(row, f) for f in monitor.features])
        if r.onset:
            truth = f"fails in {row.rul_days:.1f} days" if row.rul_days < float("inf") else "healthy"
            print(f"{r.timestamp}  ALARM {r.machine_id}: risk {r.risk:.2f}, predicted RUL {r.rul_days:.1f} d ({truth})")


if __name__ == "__main__":
    main()
