"""Event-based bit-stream XOR, the CfC paper's full protocol, for CfC, LTC, LSTM and GRU.

Protocol (Hasani et al., "Closed-form continuous-time neural networks", Nature Machine Intelligence
4, 992-1003 (2022), event-based XOR): streams of 2..31 random bits, one event per run of equal
bits carrying the bit, its run length / 32 as elapsed time, padded to 32 events with a mask; label =
parity of the ones; 100k training and 10k test sequences; 200 epochs. Accuracies reported there:

    CfC 99.42 %, CfC (mixed memory) 99.72 %, ODE-LSTM 98.89 %, GRU-D 97.90 %, ODE-RNN 51.21 %, LTC 49.11 %

This script is not run in CI (hours on a CPU; LTC is the slowest). Reduce ``--epochs`` /
``--n-train`` to run a part of it; every run writes its numbers next to the paper's::

    python benchmarks/xor_full.py                          # the full protocol, all four models
    python benchmarks/xor_full.py --epochs 5 --n-train 20000 --models cfc,gru

Results: ``<out>/xor_full.json`` and ``<out>/xor_full.md`` (one row per model), plus each run's
``results.json`` and ``curve.png`` in ``<out>/<model>/``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

PAPER = {
    "cfc": 99.42,
    "cfc_mixed_memory": 99.72,
    "ode_lstm": 98.89,
    "gru_d": 97.90,
    "ode_rnn": 51.21,
    "ltc": 49.11,
}

MODELS = {
    "cfc": {"kind": "cfc", "units": 64, "options": {"backbone_units": 128}},
    "cfc_mixed_memory": {"kind": "cfc", "units": 64, "options": {"backbone_units": 128, "mixed_memory": True}},
    "ltc": {"kind": "ltc", "units": 64, "options": {}},
    "lstm": {"kind": "lstm", "units": 64, "options": {}},
    "gru": {"kind": "gru", "units": 64, "options": {}},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="cfc,ltc,lstm,gru", help=f"comma-separated, from {sorted(MODELS)}")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--n-train", type=int, default=100_000)
    p.add_argument("--n-test", type=int, default=10_000)
    p.add_argument("--n-val", type=int, default=5_000)
    p.add_argument("--max-bits", type=int, default=31)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", default="benchmarks/results/xor_full")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()

    import torch

    from liquidflow.training import TrainConfig, fit

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; choose from {sorted(MODELS)}")
        cfg = TrainConfig.from_dict(
            {
                "data": {"source": "xor", "max_bits": args.max_bits, "n_train": args.n_train, "n_val": args.n_val,
                         "n_test": args.n_test, "seed": args.seed},
                "model": MODELS[name],
                "trainer": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                            "progress": args.progress},
                "out_dir": str(out / name),
            }
        )  # fmt: skip
        t0 = time.perf_counter()
        res = fit(cfg)
        row = {
            "model": name,
            "test_accuracy_pct": round(100 * res["test"]["acc"], 2),
            "paper_pct": PAPER.get(name),
            "epochs": res["epochs_run"],
            "n_train": args.n_train,
            "max_bits": args.max_bits,
            "parameters": res["num_parameters"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        (out / "xor_full.json").write_text(json.dumps(rows, indent=1))
    lines = [
        f"Event-based XOR, streams of 2..{args.max_bits} bits, {args.n_train} train / {args.n_test} test, "
        f"{args.epochs} epochs (paper: 2..31 bits, 100k / 10k, 200 epochs)",
        "",
        "| model | test accuracy % | paper % | epochs | parameters | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        paper = "-" if r["paper_pct"] is None else f"{r['paper_pct']:.2f}"
        acc = f"{r['test_accuracy_pct']:.2f}"
        lines.append(f"| {r['model']} | {acc} | {paper} | {r['epochs']} | {r['parameters']} | {r['seconds']} |")
    (out / "xor_full.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
