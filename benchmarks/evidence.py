"""Accuracy against parameters: every model family tuned with the same Optuna budget at several sizes.

For one task (a base training config) and each family x size: ``liquidflow.tune.tune`` runs
``--trials`` Optuna trials (TPE, median pruning, on the validation split) over the family's search
space with the size fixed, retrains the best trial with ``--seeds`` and scores it once on the test
split. Writes ``OUT/<task>.json`` (every cell: best validation value, test mean ± std per seed,
parameters, seconds per training run, core-hours of the whole search), ``OUT/<task>.md`` (the table)
and ``OUT/<task>.png`` (test metric against parameters, one line per family: the fronts).

    python benchmarks/evidence.py gunpoint --data PATH/sktime-1.2.0-py3-none-any.whl --trials 8
    python benchmarks/evidence.py xor --families cfc,lstm --sizes 8,32 --trials 4 --seeds 0,1,2

docs/evidence.md quotes these files and the commands that made them. The search spaces are
``liquidflow.tune.SPACES`` (printed into the markdown) less ``model.units``, which the size fixes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Each task: the base config (data + trainer), the tuned metric, the test metric to report.
TASKS: dict[str, dict[str, Any]] = {
    "gunpoint": {
        "config": {
            "data": {"source": "ucr", "name": "GunPoint", "val_fraction": 0.3},
            "trainer": {"epochs": 300, "batch_size": 16, "lr": 0.01, "patience": 60},
        },
        "metric": "val_loss",  # 15 validation series: the loss ranks trials more steadily than accuracy
        "test": "test_acc",
        "needs_data": True,
    },
    "plaid": {
        "config": {
            "data": {"source": "ucr", "name": "PLAID", "val_fraction": 0.2},
            "trainer": {"epochs": 60, "batch_size": 32, "lr": 0.005, "patience": 15},
        },
        "metric": "val_acc",
        "test": "test_acc",
        "needs_data": True,
    },
    "xor": {
        "config": {
            "data": {"source": "xor", "max_bits": 8, "n_train": 4000, "n_val": 500, "n_test": 1000},
            "trainer": {"epochs": 40, "batch_size": 64, "lr": 0.005, "patience": 10},
        },
        "metric": "val_acc",
        "test": "test_acc",
        "needs_data": False,
    },
    "walker2d": {
        "config": {
            "data": {"source": "walker2d", "window": 64},
            "trainer": {"epochs": 30, "batch_size": 128, "lr": 0.005, "patience": 8},
        },
        "metric": "val_mse",
        "test": "test_mse",
        "needs_data": True,
    },
}

# Family: the model section it fixes; "units" is replaced by the size.
FAMILIES: dict[str, dict[str, Any]] = {
    "cfc": {"kind": "cfc"},
    "cfc_ncp": {"kind": "cfc", "wiring": "autoncp"},
    "ltc": {"kind": "ltc"},
    "ltc_ncp": {"kind": "ltc", "wiring": "autoncp"},
    "lstm": {"kind": "lstm"},
    "gru": {"kind": "gru"},
    "transformer": {"kind": "transformer"},
}
LIQUID = ("cfc", "cfc_ncp", "ltc", "ltc_ncp")


def _cell(task: str, family: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    from liquidflow.training import TrainConfig
    from liquidflow.tune import SPACES, tune

    spec = TASKS[task]
    base = json.loads(json.dumps(spec["config"]))
    if spec["needs_data"]:
        base["data"]["path"] = args.data
    base["model"] = {**FAMILIES[family], "units": size}
    base["trainer"] = {**base["trainer"], "threads": 1, "progress": False, "monitor": spec["metric"]}
    out = Path(args.out) / task / f"{family}_{size}"
    base["out_dir"] = str(out)
    cfg = TrainConfig.from_dict(base)
    space = {k: v for k, v in SPACES[FAMILIES[family]["kind"]].items() if k != "model.units"}
    if "model.options.backbone_units" in space:  # the backbone grows with the size, so the front has one axis
        space["model.options.backbone_units"] = {"int": [max(4, size // 2), 4 * size], "log": True}
    if FAMILIES[family].get("wiring"):  # a wired CfC has no backbone
        drop = ("model.options.backbone", "model.options.activation")
        space = {k: v for k, v in space.items() if not k.startswith(drop)}
    t0 = time.perf_counter()
    res = tune(cfg, args.trials, space=space, metric=spec["metric"], seeds=tuple(args.seeds), out_dir=out)
    seeds = json.loads((out / "best" / "seeds.json").read_text())
    runs = seeds["runs"]
    test = [float(r["test"][spec["test"].split("_", 1)[1]]) for r in runs]
    return {
        "task": task,
        "family": family,
        "size": size,
        "num_parameters": int(runs[0]["num_parameters"]),
        "effective_parameters": int(runs[0].get("effective_parameters", runs[0]["num_parameters"])),
        "best_val": res.best_value,
        "best_overrides": res.best_overrides,
        "test_mean": float(np.mean(test)),
        "test_std": float(np.std(test)),
        "test": test,
        "train_seconds": float(np.mean([r["train_seconds"] for r in runs])),
        "core_hours": res.core_hours,
        "wall_seconds": time.perf_counter() - t0,
        "trials": len(res.trials),
        "pruned": sum(t["state"] == "PRUNED" for t in res.trials),
    }


def effective(row: dict[str, Any], out: Path) -> int:
    """The row's parameters less the wiring's structural zeros (older rows: from the saved model)."""
    if "effective_parameters" not in row:
        from liquidflow.checkpoint import load_model
        from liquidflow.torch import count_parameters

        path = out / row["task"] / f"{row['family']}_{row['size']}" / "best" / "seed0" / "model.lf"
        row["effective_parameters"] = count_parameters(load_model(path)[0]) if path.exists() else row["num_parameters"]
    return int(row["effective_parameters"])


def _short(override: str) -> str:
    """``key=0.004971664940524742`` -> ``key=0.00497`` (the table's recipe column)."""
    key, _, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return f"{key.split('.')[-1]}={value}"
    return f"{key.split('.')[-1]}={value if value.isdigit() else f'{number:.3g}'}"


def markdown(task: str, rows: list[dict[str, Any]], trials: int, seeds: list[int]) -> str:
    spec = TASKS[task]
    lines = [
        f"### {task}: {spec['test']} (tuned on {spec['metric']}, {trials} trials per cell, seeds {seeds})",
        "",
        f"| family | units | parameters (less wiring zeros) | {spec['test']} mean ± std | best {spec['metric']} "
        "| s / run | core-h | best recipe |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["family"], r["num_parameters"])):
        recipe = " ".join(_short(o) for o in r["best_overrides"])
        lines.append(
            f"| {r['family']} | {r['size']} | {r['num_parameters']} ({r['effective_parameters']}) "
            f"| {r['test_mean']:.4f} ± {r['test_std']:.4f} "
            f"| {r['best_val']:.4f} | {r['train_seconds']:.0f} | {r['core_hours']:.3f} | `{recipe}` |"
        )
    hours = sum(r["core_hours"] for r in rows)
    lines += ["", verdict(task, rows), f"Core-hours in all: {hours:.2f} (one thread per run).", ""]
    return "\n".join(lines)


def verdict(task: str, rows: list[dict[str, Any]]) -> str:
    """The issue's two goals, checked on the measured cells (higher is better unless the metric is an error)."""
    if not rows:
        return "No cells."
    lower = TASKS[task]["test"].endswith(("mse", "mae", "loss"))
    best = (min if lower else max)(r["test_mean"] for r in rows)

    def near(v: float) -> bool:  # "1 point": 0.01 absolute, or 2 % relative for MSE
        return v <= best * 1.02 if lower else v >= best - 0.01

    liquid = [r for r in rows if r["family"] in LIQUID]
    base = [r for r in rows if r["family"] not in LIQUID]
    lq = min((r["effective_parameters"] for r in liquid if near(r["test_mean"])), default=None)
    bs = min((r["effective_parameters"] for r in base if near(r["test_mean"])), default=None)
    top = max(rows, key=lambda r: -r["test_mean"] if lower else r["test_mean"])
    text = f"Best overall: {top['family']} {top['size']} units ({top['num_parameters']} parameters), {best:.4f}. "
    text += f"Smallest within 1 point of it: liquid {lq or 'none'}, baseline {bs or 'none'} parameters" + (
        f" (ratio {lq / bs:.2f}; goal <= 0.25)." if lq and bs else "."
    )
    return text


def plot(task: str, rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for family in FAMILIES:
        pts = sorted((r["effective_parameters"], r["test_mean"], r["test_std"]) for r in rows if r["family"] == family)
        if not pts:
            continue
        x, y, e = (np.array(v) for v in zip(*pts, strict=True))
        style = "-o" if family in LIQUID else "--s"
        ax.errorbar(x, y, yerr=e, fmt=style, capsize=3, label=family)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (less the wiring's structural zeros)")
    ax.set_ylabel(TASKS[task]["test"])
    ax.set_title(f"{task}: tuned fronts (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=sorted(TASKS))
    p.add_argument("--data", help="data folder or sktime wheel (gunpoint, plaid, walker2d)")
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--sizes", default="8,32,128", help="units per family (AutoNCP: all neurons)")
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default="benchmarks/results/evidence")
    a = p.parse_args(argv)
    a.seeds = [int(s) for s in a.seeds.split(",")]
    if TASKS[a.task]["needs_data"] and not a.data:
        p.error(f"task {a.task} needs --data")
    families = a.families.split(",")
    unknown = set(families) - set(FAMILIES)
    if unknown:
        p.error(f"unknown families {sorted(unknown)}; choose from {list(FAMILIES)}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / f"{a.task}.json"
    rows: list[dict[str, Any]] = json.loads(store.read_text()) if store.exists() else []
    done = {(r["family"], r["size"]) for r in rows}
    for family in families:
        for size in (int(s) for s in a.sizes.split(",")):
            if (family, size) in done:
                continue
            t0 = time.perf_counter()
            try:
                row = _cell(a.task, family, size, a)
            except (ValueError, RuntimeError) as e:  # e.g. AutoNCP too small for the outputs
                print(f"{a.task} {family} {size}: skipped ({e})", file=sys.stderr, flush=True)
                continue
            rows = [r for r in rows if (r["family"], r["size"]) != (family, size)] + [row]
            store.write_text(json.dumps(rows, indent=1))
            print(f"{a.task} {family:12s} {size:4d} units {row['num_parameters']:7d} params  "
                  f"test {row['test_mean']:.4f} ± {row['test_std']:.4f}  ({time.perf_counter() - t0:.0f} s)",
                  flush=True)  # fmt: skip
    for r in rows:
        effective(r, out)
    store.write_text(json.dumps(rows, indent=1))
    (out / f"{a.task}.md").write_text(markdown(a.task, rows, a.trials, a.seeds))
    plot(a.task, rows, out / f"{a.task}.png")
    print(verdict(a.task, rows))
    return 0 if all(math.isfinite(r["test_mean"]) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
