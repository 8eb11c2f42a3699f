"""liquidflow tune: search spaces, Optuna trials over training runs, shared storage, the recipe file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import pytest

try:
    import optuna
except ImportError:  # a dev install has it; CI must not skip the check
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("optuna is not installed (pip install 'liquidflow[tune]')", allow_module_level=True)

from liquidflow import tune as t
from liquidflow.training import TrainConfig

TINY = {
    "data": {"source": "xor", "max_bits": 4, "n_train": 48, "n_val": 24, "n_test": 24},
    "model": {"kind": "cfc", "units": 6, "options": {"backbone_units": 8}},
    "trainer": {"epochs": 2, "batch_size": 16, "lr": 0.01, "seed": 0, "progress": False, "threads": 1},
}
SPACE = {"trainer.lr": {"float": [1e-3, 0.05], "log": True}, "model.units": {"int": [4, 8]},
         "model.options.activation": {"choice": ["relu", "tanh"]}}  # fmt: skip


def test_space_checks_name_the_key() -> None:
    for space in SPACES_BAD:
        with pytest.raises(ValueError, match="search space"):
            t.check_space(space)
    for kind, space in t.SPACES.items():
        assert t.check_space(space) is space, kind


SPACES_BAD = [
    {},
    {"lr": {"float": [0.1, 1]}},
    {"trainer.lr": {"float": [1, 0.1]}},
    {"trainer.lr": {"float": [0.0, 1], "log": True}},
    {"trainer.lr": {"float": [0.1, 1], "int": [1, 2]}},
    {"model.units": {"choice": []}},
    {"model.units": {"int": [1, 2], "spread": 3}},
]


def test_suggest_gives_config_overrides() -> None:
    trial = optuna.trial.FixedTrial({"trainer.lr": 0.01, "model.units": 7, "model.options.activation": "tanh"})
    overrides = t.suggest(trial, SPACE)
    assert overrides == ["trainer.lr=0.01", "model.units=7", 'model.options.activation="tanh"']
    cfg = TrainConfig.from_dict(TINY).with_overrides(overrides)
    assert (cfg.trainer.lr, cfg.model.units, cfg.model.options["activation"]) == (0.01, 7, "tanh")


def test_pruning_callback_stops_a_pruned_trial() -> None:
    class Trial:
        reported: ClassVar[list[tuple[float, int]]] = []

        def report(self, value: float, step: int) -> None:
            self.reported.append((value, step))

        def should_prune(self) -> bool:
            return True

    class Trainer:
        sanity_checking, current_epoch = False, 3
        callback_metrics: ClassVar[dict[str, float]] = {"val_loss": 0.25}

    trial = Trial()
    cb = t._pruning_callback(trial, "val_loss")
    with pytest.raises(optuna.TrialPruned):
        cb.on_validation_epoch_end(Trainer(), None)
    assert trial.reported == [(0.25, 3)]


def test_tune_runs_trials_shares_storage_and_writes_the_recipe(tmp_path: Path) -> None:
    cfg = TrainConfig.from_dict({**TINY, "out_dir": str(tmp_path / "run")})
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = t.tune(cfg, 2, SPACE, seeds=(), storage=storage, study_name="s", out_dir=tmp_path / "a")
    second = t.tune(cfg, 1, SPACE, seeds=(0, 1), storage=storage, study_name="s", out_dir=tmp_path / "b")
    assert len(first.trials) == 2 and len(second.trials) == 3  # the second worker joined the same study
    assert first.direction == "minimize" and first.metric == "val_loss"
    values = [r["value"] for r in second.trials if r["state"] == "COMPLETE"]
    assert second.best_value == pytest.approx(min(values))
    best = TrainConfig.from_file(tmp_path / "b" / "best.yaml")  # the recipe is a config liquidflow train reads
    for item in second.best_overrides:
        key, value = item.split("=", 1)
        section, *rest = key.split(".")
        got = getattr(best, section)
        for part in rest:
            got = got[part] if isinstance(got, dict) else getattr(got, part)
        assert got == json.loads(value), key
    seeds = json.loads((tmp_path / "b" / "tune.json").read_text())["seeds"]
    assert set(seeds["test_acc"]) == {"mean", "std"} and 0.0 <= seeds["test_acc"]["mean"] <= 1.0
    assert "| trial | state | value |" in (tmp_path / "b" / "tune.md").read_text()
    with pytest.raises(ValueError, match="validation metric"):
        t.tune(cfg, 1, SPACE, metric="test_acc", seeds=())


def test_cli_bad_inputs_say_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from liquidflow.cli import build_app

    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({**TINY, "out_dir": str(tmp_path / "run")}))
    space = tmp_path / "s.yaml"
    space.write_text("trainer.lr: {float: [1, 0.1]}\n")
    runner = CliRunner()
    for args, expected in (
        ([str(tmp_path / "none.yaml")], "does not exist"),
        ([str(cfg), "--space", str(space)], "need low <= high"),
        ([str(cfg), "--trials", "0"], "trials must be an integer >= 1"),
        ([str(cfg), "--metric", "test_acc"], "must be a validation metric"),
    ):
        res = runner.invoke(build_app(), ["tune", *args])
        assert res.exit_code == 2 and expected in res.output and "Traceback" not in res.output, (args, res.output)
