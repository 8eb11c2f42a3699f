"""``reproduce``: the papers' protocols with their published hyper-parameters, several seeds, one table.

Each task names its data, its metric and, per model, the recipe of the paper's script (a
:class:`TrainConfig` as a dict), with the paper's figure beside it. The recipes translate the
papers' Keras settings one by one (docs/training.md, "Recipes"): RMSprop/Adam with Keras's epsilon
and rho, ``ExponentialDecay(lr, steps_per_epoch, decay)`` (moved every step), ``clipnorm`` (each
tensor clipped on its own), ``kernel_regularizer=L2(wd)`` (an L2 penalty on kernels only),
lecun_tanh heads, the mixed-memory forget bias. Sources: raminmh/CfC ``train_xor.py`` (BEST_DEFAULT,
BEST_MIXED, LTC_TEST) and ``train_walker.py`` (BEST_DEFAULT, BEST_MIXED, BEST_LTC); figures from
Hasani et al., "Closed-form continuous-time neural networks", Nature Machine Intelligence 4 (2022),
the event-based XOR and Walker2d tables (arXiv 2106.13898).

Outputs in ``out``: ``results.json`` (per model and seed: the test metric under its name,
parameters, seconds, epochs; per model: mean, std and the paper's figure) and ``results.md``, and
each run's own folder ``<model>/seed<k>/`` (model.lf, results.json, curve.png) from :func:`fit`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

KERAS_RMSPROP = {"alpha": 0.9, "eps": 1e-7}  # tf.keras.optimizers.RMSprop defaults (torch: 0.99, 1e-8)
KERAS_ADAM = {"eps": 1e-7}  # tf.keras.optimizers.Adam's epsilon (torch: 1e-8)


def _keras_recipe(
    optimizer: str, lr: float, decay: float, clipnorm: float, batch: int, wd: float, epochs: int
) -> dict[str, Any]:
    """The trainer section for a paper script's Keras settings."""
    return {
        "optimizer": optimizer,
        "optimizer_options": dict(KERAS_RMSPROP if optimizer == "rmsprop" else KERAS_ADAM),
        "lr": lr,
        "lr_schedule": "exponential",
        "lr_decay": decay,
        "lr_schedule_interval": "step",
        "gradient_clip": clipnorm,
        "gradient_clip_mode": "per_tensor",
        "batch_size": batch,
        "weight_decay": wd,
        "weight_decay_mode": "l2_kernels",
        "epochs": epochs,
    }


@dataclass
class Task:
    """One paper protocol: data section, metric, model recipes, the paper's figures."""

    name: str
    description: str
    data: dict[str, Any]
    metric: str  # key in fit()'s results["test"]
    metric_name: str  # the name written to results.json, e.g. test_accuracy
    higher_is_better: bool
    scale: float  # metric * scale is what the paper reports (100 for accuracy in %)
    models: dict[str, dict[str, Any]]  # name -> {"model": ..., "trainer": ...}
    paper: dict[str, tuple[float, float | None]]  # name -> (mean, std or None)
    default_models: list[str]
    needs_data_dir: bool = False
    trainer_common: dict[str, Any] = field(default_factory=dict)

    def config(self, model: str, seed: int, out: Path, data_dir: str | None, epochs: int | None) -> dict[str, Any]:
        recipe = copy.deepcopy(self.models[model])
        data = copy.deepcopy(self.data)
        if self.needs_data_dir:
            data["path"] = data_dir
        trainer = {**self.trainer_common, **recipe["trainer"], "seed": seed}
        if epochs is not None:
            trainer["epochs"] = epochs
        return {"data": data, "model": recipe["model"], "trainer": trainer, "out_dir": str(out)}


def _xor() -> Task:
    cfc_heads = {"head_activation": "lecun_tanh", "backbone_dropout": 0.0}
    # RMSprop at the lr of the paper's mixed-memory recipe: the baselines' recipe (the paper has no LSTM/GRU row)
    baseline = _keras_recipe("rmsprop", 0.005, 0.95, 10, 128, 2e-6, 200)
    return Task(
        name="xor",
        description=(
            "event-based bit-stream XOR (CfC paper): streams of 2..31 bits, the paper's generator and "
            "seeds (100k training, 10k test sequences), 200 epochs, test accuracy after the last epoch"
        ),
        data={
            "source": "xor",
            "xor_encoding": "paper",
            "max_bits": 31,
            "n_train": 100_000,
            "n_val": 2_000,
            "n_test": 10_000,
        },
        metric="acc",
        metric_name="test_accuracy",
        higher_is_better=True,
        scale=100.0,
        models={
            "cfc": {  # BEST_DEFAULT: 99.42 % ± 0.42
                "model": {
                    "kind": "cfc",
                    "units": 192,
                    "options": {"backbone_units": 128, "backbone_layers": 1, "activation": "relu", **cfc_heads},
                },
                "trainer": _keras_recipe("rmsprop", 0.05, 0.95, 1, 128, 3e-6, 200),
            },
            "cfc_mixed_memory": {  # BEST_MIXED: 99.72 % ± 0.08
                "model": {
                    "kind": "cfc",
                    "units": 64,
                    "options": {
                        "backbone_units": 128,
                        "backbone_layers": 1,
                        "activation": "relu",
                        "mixed_memory": True,
                        "forget_bias": 0.6,
                        **cfc_heads,
                    },
                },
                "trainer": _keras_recipe("rmsprop", 0.005, 0.95, 10, 128, 2e-6, 200),
            },
            "ltc": {  # LTC_TEST: 49.11 % (the paper's LTC does not learn the task)
                "model": {"kind": "ltc", "units": 64, "options": {"ode_unfolds": 6}},
                "trainer": _keras_recipe("adam", 0.005, 0.9, 5, 256, 0.0, 200),
            },
            "lstm": {"model": {"kind": "lstm", "units": 64}, "trainer": baseline},
            "gru": {"model": {"kind": "gru", "units": 64}, "trainer": baseline},
        },
        paper={
            "cfc": (99.42, 0.42),
            "cfc_mixed_memory": (99.72, 0.08),
            "ltc": (49.11, 0.0),
            "ode_lstm": (98.89, None),
            "gru_d": (97.90, None),
            "ode_rnn": (51.21, None),
        },
        default_models=["cfc", "cfc_mixed_memory", "lstm", "gru"],
        trainer_common={"restore_best": False, "monitor": "val_acc"},  # the paper tests the last epoch
    )


def _walker2d() -> Task:
    lecun = {"head_activation": "lecun_tanh"}
    baseline = _keras_recipe("adam", 0.005, 0.95, 1, 128, 1e-6, 50)
    return Task(
        name="walker2d",
        description=(
            "Walker2d imitation (CfC paper): next-state prediction on MuJoCo rollouts with 10 % of the "
            "steps dropped at random, windows of 64, 50 epochs, test MSE with the best validation epoch"
        ),
        data={"source": "walker2d", "window": 64, "stride": 16},
        metric="mse",
        metric_name="test_mse",
        higher_is_better=False,
        scale=1.0,
        models={
            "cfc": {  # BEST_DEFAULT: 0.643 (script: 0.64038 ± 0.00574)
                "model": {
                    "kind": "cfc",
                    "units": 64,
                    "options": {
                        "backbone_units": 256,
                        "backbone_layers": 1,
                        "activation": "silu",
                        "backbone_dropout": 0.1,
                        **lecun,
                    },
                },
                "trainer": _keras_recipe("adam", 0.02, 0.95, 1, 256, 1e-6, 50),
            },
            "cfc_mixed_memory": {  # BEST_MIXED: 0.617 ± 0.006
                "model": {
                    "kind": "cfc",
                    "units": 128,
                    "options": {
                        "backbone_units": 128,
                        "backbone_layers": 2,
                        "activation": "lecun_tanh",
                        "backbone_dropout": 0.2,
                        "mixed_memory": True,
                        "forget_bias": 2.1,
                        **lecun,
                    },
                },
                "trainer": _keras_recipe("adam", 0.005, 0.95, 10, 128, 6e-6, 50),
            },
            "ltc": {  # BEST_LTC: 0.662 ± 0.013 (the paper's LTCCell: 3 unfolds, no regulariser)
                "model": {"kind": "ltc", "units": 128, "options": {"ode_unfolds": 3}},
                "trainer": _keras_recipe("adam", 0.05, 0.95, 10, 128, 0.0, 50),
            },
            "lstm": {"model": {"kind": "lstm", "units": 64}, "trainer": baseline},
            "gru": {"model": {"kind": "gru", "units": 64}, "trainer": baseline},
        },
        paper={
            "cfc": (0.643, None),
            "cfc_mixed_memory": (0.617, 0.006),
            "ltc": (0.662, 0.013),
            "transformer": (0.761, None),
            "ode_lstm": (0.883, None),
            "ode_rnn": (1.904, None),
        },
        default_models=["cfc", "cfc_mixed_memory", "ltc", "lstm", "gru"],
        needs_data_dir=True,
        trainer_common={"restore_best": True, "monitor": "val_loss"},  # the paper's BackupCallback
    )


TASKS: dict[str, Callable[[], Task]] = {"xor": _xor, "walker2d": _walker2d}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name]()


def _earlier_runs(path: Path, task: str, redo: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """Runs of an earlier call into the same folder (same task) that this call does not repeat."""
    if not path.is_file():
        return []
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    if not isinstance(old, dict) or old.get("task") != task:
        return []
    return [r for r in old.get("runs", []) if (r.get("model"), r.get("seed")) not in redo]


def _summary(task: Task, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    names = list(dict.fromkeys([r["model"] for r in runs]))
    for name in names:
        vals = [r[task.metric_name] for r in runs if r["model"] == name]
        paper = task.paper.get(name)
        rows.append(
            {
                "model": name,
                "seeds": len(vals),
                "mean": float(np.mean(vals)),
                "std": float(np.std(vals)),  # population std, as the papers' scripts print
                "paper_mean": None if paper is None else paper[0],
                "paper_std": None if paper is None else paper[1],
                "parameters": next(r["parameters"] for r in runs if r["model"] == name),
                "epochs": next(r["epochs"] for r in runs if r["model"] == name),
                "seconds_mean": float(np.mean([r["seconds"] for r in runs if r["model"] == name])),
            }
        )
    return rows


def _fmt(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def markdown(task: Task, summary: list[dict[str, Any]], command: str) -> str:
    """The table: ours (mean ± std over seeds) beside the paper's figure."""
    digits = 2 if task.scale == 100.0 else 3
    unit = " (%)" if task.scale == 100.0 else ""
    better = "higher" if task.higher_is_better else "lower"
    lines = [
        f"**{task.name}**: {task.description}. Metric: {task.metric_name}{unit}, {better} is better.",
        "",
        f"| model | ours{unit} | seeds | paper{unit} | parameters | epochs | seconds per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        lines.append(
            f"| {r['model']} | {_fmt(r['mean'], r['std'], digits)} | {r['seeds']} | "
            f"{_fmt(r['paper_mean'], r['paper_std'], digits)} | {r['parameters']:,} | {r['epochs']} | "
            f"{r['seconds_mean']:.0f} |"
        )
    ours = {r["model"] for r in summary}
    for name, (mean, std) in task.paper.items():
        if name not in ours:
            lines.append(f"| {name} (paper only) | - | - | {_fmt(mean, std, digits)} | - | - | - |")
    lines += ["", f"Command: `{command}`", ""]
    return "\n".join(lines)


def reproduce(
    task_name: str,
    models: list[str] | None = None,
    seeds: list[int] | None = None,
    epochs: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    threads: int | str = "auto",
    overrides: list[str] | None = None,
    progress: bool = True,
    command: str = "",
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``task_name``'s protocol for ``models`` x ``seeds``; write and return the results.

    ``overrides``: ``section.key=value`` strings applied to every run's config (e.g. smaller data
    for a quick check: ``data.n_train=512``). ``on_run`` is called with each finished run's row.
    """
    from ._config import TrainConfig
    from ._fit import fit

    task = get_task(task_name)
    models = list(models or task.default_models)
    unknown = [m for m in models if m not in task.models]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown} for task {task.name!r}; choose from {sorted(task.models)}")
    seeds = [0, 1, 2] if seeds is None else list(seeds)
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed")
    if task.needs_data_dir:
        if data_dir is None:
            raise ValueError(f"task {task.name!r} reads its data from a folder: give --data-dir")
        if not Path(data_dir).is_dir():
            raise FileNotFoundError(f"--data-dir {str(data_dir)!r} is not a folder")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be an integer >= 1; got {epochs!r}")
    out_dir = Path(out or f"runs/reproduce-{task.name}")
    out_dir.mkdir(parents=True, exist_ok=True)
    configs = []
    for name in models:  # validate every config before the first (long) run starts
        for seed in seeds:
            folder = None if data_dir is None else str(data_dir)
            d = task.config(name, seed, out_dir / name / f"seed{seed}", folder, epochs)
            d["trainer"].update(threads=threads, progress=progress)
            cfg = TrainConfig.from_dict(d).with_overrides(list(overrides or []))
            configs.append((name, seed, cfg))
    runs = _earlier_runs(out_dir / "results.json", task.name, {(n, s) for n, s, _ in configs})
    result: dict[str, Any] = {}
    for name, seed, cfg in configs:
        t0 = time.perf_counter()
        res = fit(cfg)
        value = float(res["test"][task.metric]) * task.scale
        row = {
            "model": name,
            "seed": seed,
            task.metric_name: value,
            "parameters": res["num_parameters"],
            "seconds": round(time.perf_counter() - t0, 1),
            "train_seconds": res["train_seconds"],
            "epochs": res["epochs_run"],
            "best_epoch": res["best_epoch"],
            "threads": res["threads"],
            "run_dir": str(cfg.out_dir),
        }
        if not math.isfinite(value):
            row["note"] = "the metric is not finite (the run diverged)"
        runs.append(row)
        result = _write(task, runs, command, out_dir)  # after every run: nothing lost
        if on_run is not None:
            on_run(row)
    return result


def merge(task_name: str, sources: list[str | os.PathLike[str]], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Merge the ``results.json`` of several ``reproduce`` folders of one task (runs made in parallel,
    or on several machines) into ``out``: one run per (model, seed), the later source winning."""
    task = get_task(task_name)
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    commands = []
    for src in sources:
        path = Path(src) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (give folders written by liquidflow reproduce)")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a results.json of liquidflow reproduce: {e}") from e
        if not isinstance(data, dict) or data.get("task") != task.name:
            raise ValueError(f"{path}: holds task {data.get('task') if isinstance(data, dict) else None!r}, "
                             f"not {task.name!r}")  # fmt: skip
        commands.append(str(data.get("command", "")))
        for r in data.get("runs", []):
            by_key[(r["model"], r["seed"])] = r
    order = list(task.models)
    runs = sorted(by_key.values(), key=lambda r: (order.index(r["model"]) if r["model"] in order else 99, r["seed"]))
    command = "; ".join(c for c in commands if c)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return _write(task, runs, command, out_dir, merged_from=[str(s) for s in sources])


def _write(task: Task, runs: list[dict[str, Any]], command: str, out_dir: Path, **extra: Any) -> dict[str, Any]:
    """results.json and results.md in ``out_dir`` for ``runs``; returns the results."""
    summary = _summary(task, runs)
    result = {
        "task": task.name,
        "description": task.description,
        "metric": task.metric_name,
        "higher_is_better": task.higher_is_better,
        "command": command,
        **extra,
        "runs": runs,
        "summary": summary,
        "paper": {k: {"mean": m, "std": s} for k, (m, s) in task.paper.items()},
        "recipes": {m: task.models[m] for m in dict.fromkeys(r["model"] for r in runs) if m in task.models},
    }
    (out_dir / "results.json").write_text(json.dumps(result, indent=1))
    (out_dir / "results.md").write_text(markdown(task, summary, command))
    return result
