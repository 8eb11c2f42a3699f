"""Hyper-parameter search with Optuna over a training config (``liquidflow tune CONFIG --trials N``).

Every trial is one :func:`liquidflow.training.fit` of the config with some keys changed (the same
``section.key=value`` overrides as ``liquidflow train --set``); the objective is a validation metric
(``--metric``, default the config's ``trainer.monitor``). Trials report the metric after every
epoch, and Optuna's median pruner stops the ones below the median of earlier trials at the same
epoch. The best trial's config is written as a YAML recipe (``best.yaml``), retrained with several
seeds (``--seeds``) and scored on the test split once: mean ± std, parameters and core-hours.

Search spaces: :data:`SPACES` gives one per model family (the ones docs/evidence.md lists), or pass
``--space FILE`` (YAML/JSON), a mapping from override keys to distributions::

    trainer.lr: {float: [1.0e-4, 0.05], log: true}
    model.units: {int: [8, 128], log: true}
    model.options.activation: {choice: [lecun_tanh, relu, silu]}

``--storage URL`` (e.g. ``sqlite:///study.db`` or a PostgreSQL URL) keeps the study in a database,
so that several processes or machines can work on one study (``--study NAME`` on each).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Space = dict[str, dict[str, Any]]

_LIQUID: Space = {
    "model.units": {"int": [8, 128], "log": True},
    "trainer.lr": {"float": [3e-4, 0.05], "log": True},
    "trainer.weight_decay": {"float": [1e-7, 1e-3], "log": True},
    "trainer.batch_size": {"choice": [16, 32, 64, 128]},
    "trainer.optimizer": {"choice": ["adamw", "rmsprop"]},
}
SPACES: dict[str, Space] = {
    "cfc": {
        **_LIQUID,
        "model.options.backbone_units": {"int": [16, 256], "log": True},
        "model.options.backbone_layers": {"int": [1, 2]},
        "model.options.activation": {"choice": ["lecun_tanh", "relu", "silu"]},
        "model.options.backbone_dropout": {"float": [0.0, 0.3]},
        "model.options.mixed_memory": {"choice": [False, True]},
    },
    "ltc": {
        **_LIQUID,
        "model.options.ode_unfolds": {"int": [1, 6]},
        "model.options.mixed_memory": {"choice": [False, True]},
    },
    "lstm": {**_LIQUID, "model.units": {"int": [8, 128], "log": True}},
    "gru": {**_LIQUID, "model.units": {"int": [8, 128], "log": True}},
    "transformer": {
        "model.units": {"choice": [16, 32, 64, 128]},
        "trainer.lr": {"float": [1e-4, 0.01], "log": True},
        "trainer.weight_decay": {"float": [1e-7, 1e-3], "log": True},
        "trainer.batch_size": {"choice": [16, 32, 64, 128]},
    },
}
_KINDS = ("int", "float", "choice")


def check_space(space: Space) -> Space:
    """Validate a search space (see the module docstring); returns it, or raises ValueError naming the key."""
    if not isinstance(space, dict) or not space:
        raise ValueError("a search space must be a non-empty mapping of override keys to distributions")
    for key, dist in space.items():
        if not isinstance(key, str) or key.split(".")[0] not in ("data", "model", "trainer"):
            raise ValueError(f"search space key {key!r} must start with data., model. or trainer.")
        kinds = [k for k in _KINDS if isinstance(dist, dict) and k in dist]
        if len(kinds) != 1:
            raise ValueError(f"search space {key!r}: give exactly one of int, float, choice; got {dist!r}")
        kind = kinds[0]
        value = dist[kind]
        if kind == "choice":
            if not isinstance(value, list) or not value:
                raise ValueError(f"search space {key!r}: choice needs a non-empty list; got {value!r}")
            continue
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
            raise ValueError(f"search space {key!r}: {kind} needs [low, high]; got {value!r}")
        low, high = value
        if not low <= high or (dist.get("log") and low <= 0):
            raise ValueError(f"search space {key!r}: need low <= high (and low > 0 with log); got {value!r}")
        unknown = set(dist) - {kind, "log", "step"}
        if unknown:
            raise ValueError(f"search space {key!r}: unknown field(s) {sorted(unknown)}")
    return space


def load_space(path: str | os.PathLike[str]) -> Space:
    """A search space from a YAML or JSON file."""
    import yaml

    text = Path(path).read_text()
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    try:
        return check_space(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e


def suggest(trial: Any, space: Space) -> list[str]:
    """The trial's overrides (``key=value`` strings, values as JSON, which is YAML) for ``space``."""
    out = []
    for key, dist in space.items():
        if "choice" in dist:
            value: Any = trial.suggest_categorical(key, dist["choice"])
        elif "int" in dist:
            low, high = dist["int"]
            value = trial.suggest_int(
                key, int(low), int(high), log=bool(dist.get("log")), step=int(dist.get("step", 1))
            )
        else:
            low, high = dist["float"]
            value = trial.suggest_float(key, float(low), float(high), log=bool(dist.get("log")), step=dist.get("step"))
        out.append(f"{key}={json.dumps(value)}")
    return out


def _direction(metric: str) -> Literal["minimize", "maximize"]:
    name = metric.split("_", 1)[-1]
    return "maximize" if name in ("acc", "accuracy", "auroc", "auprc", "f1", "r2") else "minimize"


def _metric_of(results: dict[str, Any], metric: str) -> float:
    split, _, name = metric.partition("_")
    values = results.get(split, {})
    if name not in values:
        raise ValueError(f"metric {metric!r} is not among the run's {split} metrics {sorted(values)}")
    return float(values[name])


@dataclass
class TuneResult:
    """What :func:`tune` found: the best trial's overrides and value, every trial, and the seeds' scores."""

    metric: str
    direction: str
    best_value: float
    best_overrides: list[str]
    trials: list[dict[str, Any]] = field(default_factory=list)
    seeds: dict[str, Any] = field(default_factory=dict)
    core_hours: float = 0.0
    out_dir: str = ""


def _pruning_callback(trial: Any, metric: str) -> Any:
    import lightning as L
    import optuna

    class Pruning(L.Callback):  # type: ignore[misc]
        """Report the metric to Optuna after each validation epoch; stop the trial when pruned."""

        def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if trainer.sanity_checking or metric not in trainer.callback_metrics:
                return
            trial.report(float(trainer.callback_metrics[metric]), step=trainer.current_epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {trainer.current_epoch}: below the median of earlier trials")

    return Pruning()


def tune(
    config: Any,
    trials: int,
    space: Space | None = None,
    metric: str | None = None,
    seeds: tuple[int, ...] = (0, 1, 2),
    storage: str | None = None,
    study_name: str | None = None,
    timeout: float | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    sampler_seed: int = 0,
) -> TuneResult:
    """Search ``space`` (default: :data:`SPACES` for the config's model kind) for ``trials`` trials,
    then retrain the best config with ``seeds``; writes ``tune.json``, ``tune.md`` and ``best.yaml``."""
    import optuna
    import torch
    import yaml

    from .training import TrainConfig, fit, fit_seeds

    cfg: TrainConfig = config
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1; got {trials!r}")
    space = check_space(space if space is not None else SPACES[cfg.model.kind])
    metric = metric or cfg.trainer.monitor
    if not metric.startswith("val_"):
        raise ValueError(f"the tuned metric must be a validation metric (val_...); got {metric!r}")
    direction: Literal["minimize", "maximize"] = _direction(metric)
    out = Path(out_dir or Path(cfg.out_dir) / "tune")
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=sampler_seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
        storage=storage,
        study_name=study_name or f"liquidflow-{cfg.model.kind}-{cfg.data.source}",
        load_if_exists=True,
    )
    quiet = ["trainer.progress=false", "trainer.checkpoints=false", f"trainer.monitor={metric}"]
    core_seconds = [0.0]

    def objective(trial: Any) -> float:
        overrides = suggest(trial, space)
        trial.set_user_attr("overrides", overrides)
        run = cfg.with_overrides([*overrides, *quiet, f"out_dir={json.dumps(str(out / f'trial{trial.number}'))}"])
        t0 = time.perf_counter()
        try:
            res = fit(run, callbacks=[_pruning_callback(trial, metric)])
        finally:  # core-hours: wall time x the threads torch may use (an upper bound)
            core_seconds[0] += (time.perf_counter() - t0) * torch.get_num_threads()
        trial.set_user_attr("num_parameters", res.get("num_parameters"))
        return _metric_of(res, metric)

    study.optimize(objective, n_trials=trials, timeout=timeout, catch=(ValueError, RuntimeError))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise RuntimeError(f"no trial of {len(study.trials)} completed; see the errors above")
    best = study.best_trial
    rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
             "num_parameters": t.user_attrs.get("num_parameters")} for t in study.trials]  # fmt: skip
    best_cfg = cfg.with_overrides([*best.user_attrs["overrides"], f"trainer.monitor={metric}",
                                   f"out_dir={json.dumps(str(out / 'best'))}"])  # fmt: skip
    (out / "best.yaml").write_text(yaml.safe_dump(best_cfg.to_dict(), sort_keys=False))
    t0 = time.perf_counter()
    seeded = fit_seeds(best_cfg.with_overrides(["trainer.progress=false"]), list(seeds)) if seeds else {}
    core_seconds[0] += (time.perf_counter() - t0) * torch.get_num_threads()
    best_value = float(best.value if best.value is not None else math.nan)
    result = TuneResult(metric, direction, best_value, list(best.user_attrs["overrides"]), rows,
                        seeded.get("summary", {}), core_seconds[0] / 3600.0, str(out))  # fmt: skip
    (out / "tune.json").write_text(json.dumps(result.__dict__, indent=1, default=str))
    (out / "tune.md").write_text(markdown(result))
    return result


def _cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def markdown(result: TuneResult) -> str:
    """The trials table and the best recipe's seeds, as markdown."""
    lines = [f"# Tuning: {result.metric} ({result.direction})", "",
             f"Best value {result.best_value:.4g} with `{' '.join(result.best_overrides)}`; "
             f"{result.core_hours:.3f} core-hours in all.", ""]  # fmt: skip
    if result.seeds:
        lines += ["| test metric | mean | std |", "|---|---:|---:|"]
        lines += [
            f"| {k} | {v['mean']:.4g} | {v['std']:.2g} |" for k, v in result.seeds.items() if k.startswith("test")
        ]
        lines.append("")
    keys = sorted({k for r in result.trials for k in r["params"]})
    lines += [
        "| trial | state | value | parameters | " + " | ".join(keys) + " |",
        "|---:|---|---:|---:|" + "---|" * len(keys),
    ]
    for r in result.trials:
        value = (
            "—"
            if r["value"] is None or (isinstance(r["value"], float) and math.isnan(r["value"]))
            else f"{r['value']:.4g}"
        )
        cells = [_cell(r["params"].get(k, "")) for k in keys]
        lines.append(
            f"| {r['number']} | {r['state']} | {value} | {r['num_parameters'] or '—'} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"
