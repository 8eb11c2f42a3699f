"""``liquidflow reproduce``: the papers' protocols run end to end on tiny data (a few batches)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from liquidflow.cli import main
from liquidflow.training import TrainConfig
from liquidflow.training.reproduce import TASKS, get_task, reproduce

TINY_XOR = ["data.n_train=64", "data.n_val=32", "data.n_test=32", "data.max_bits=6", "trainer.batch_size=32"]


def test_recipes_are_valid_configs_and_paper_faithful(tmp_path: Path) -> None:
    for name in TASKS:
        task = get_task(name)
        for model in task.models:
            TrainConfig.from_dict(task.config(model, 0, tmp_path, str(tmp_path), None))
    cfc = get_task("xor").config("cfc", 0, tmp_path, None, None)
    # raminmh/CfC train_xor.py BEST_DEFAULT, translated
    assert cfc["model"] == {"kind": "cfc", "units": 192, "options": {
        "backbone_units": 128, "backbone_layers": 1, "activation": "relu", "head_activation": "lecun_tanh",
        "backbone_dropout": 0.0}}  # fmt: skip
    t = cfc["trainer"]
    assert (t["optimizer"], t["optimizer_options"], t["lr"], t["lr_decay"], t["batch_size"]) == (
        "rmsprop", {"alpha": 0.9, "eps": 1e-7}, 0.05, 0.95, 128)  # fmt: skip
    assert (t["gradient_clip"], t["gradient_clip_mode"], t["weight_decay"], t["weight_decay_mode"]) == (
        1, "per_tensor", 3e-6, "l2_kernels")  # fmt: skip
    assert (t["epochs"], t["restore_best"], cfc["data"]["xor_encoding"], cfc["data"]["n_train"]) == (
        200, False, "paper", 100_000)  # fmt: skip


def test_reproduce_xor_tiny_writes_results_and_table(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    res = reproduce("xor", ["cfc", "gru"], [0, 1], epochs=1, out=tmp_path, threads=1, overrides=TINY_XOR,
                    progress=False, command="liquidflow reproduce xor")  # fmt: skip
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == json.loads(json.dumps(res))
    assert [(r["model"], r["seed"]) for r in saved["runs"]] == [("cfc", 0), ("cfc", 1), ("gru", 0), ("gru", 1)]
    for r in saved["runs"]:
        run = json.loads((Path(r["run_dir"]) / "results.json").read_text())
        assert r["test_accuracy"] == pytest.approx(100 * run["test"]["acc"])
        assert r["parameters"] == run["num_parameters"] and r["epochs"] == 1 and r["threads"] == 1
    cfc = next(s for s in saved["summary"] if s["model"] == "cfc")
    vals = [r["test_accuracy"] for r in saved["runs"] if r["model"] == "cfc"]
    assert cfc["mean"] == pytest.approx(np.mean(vals)) and cfc["std"] == pytest.approx(np.std(vals))
    assert (cfc["paper_mean"], cfc["paper_std"]) == (99.42, 0.42)
    md = (tmp_path / "results.md").read_text()
    assert "| cfc |" in md and "99.42 ± 0.42" in md and "ode_lstm (paper only)" in md
    # a later call into the same folder keeps the runs it does not repeat
    reproduce("xor", ["gru"], [1], epochs=1, out=tmp_path, threads=1, overrides=TINY_XOR, progress=False)
    again = json.loads((tmp_path / "results.json").read_text())
    assert sorted((r["model"], r["seed"]) for r in again["runs"]) == [("cfc", 0), ("cfc", 1), ("gru", 0), ("gru", 1)]


def test_reproduce_walker2d_tiny_from_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    data = tmp_path / "walker"
    data.mkdir()
    for k in range(10):
        np.save(data / f"rollout_{k:03d}.npy", np.cumsum(rng.normal(size=(40, 17)) * 0.1, axis=0))
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "walker2d", "--models", "ltc,cfc_mixed_memory", "--seeds", "0", "--epochs", "1",
              "--data-dir", str(data), "--out", str(tmp_path / "out"), "--threads", "1", "--no-progress",
              "--set", "data.window=8", "--set", "data.stride=8", "--set", "trainer.batch_size=16"])  # fmt: skip
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "ltc seed 0: test_mse" in out and "| cfc_mixed_memory |" in out and "0.617 ± 0.006" in out
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["metric"] == "test_mse" and not saved["higher_is_better"]
    for r in saved["runs"]:
        assert np.isfinite(r["test_mse"]) and r["test_mse"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reproduce", "walker2d"], "reads its data from a folder: give --data-dir"),
        (["reproduce", "xor", "--models", "cfc,bogus"], "unknown model(s) ['bogus'] for task 'xor'"),
        (["reproduce", "walker2d", "--data-dir", "/nonexistent"], "is not a folder"),
        (["reproduce", "xor", "--set", "trainer.optimizer=lbfgs"], "trainer.optimizer must be one of"),
    ],
)
def test_reproduce_bad_input_is_one_clear_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as e:
        main([*args, "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_reproduce_unknown_task(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "mnist"])
    assert e.value.code == 2 and "unknown task 'mnist'" in capsys.readouterr().err


def test_shipped_xor_paper_config_is_the_reproduce_recipe(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    shipped = TrainConfig.from_file(root / "configs" / "xor_paper.yaml").to_dict()
    recipe = TrainConfig.from_dict(get_task("xor").config("cfc", 0, tmp_path, None, None)).to_dict()
    for section in ("data", "model", "trainer"):
        assert shipped[section] == recipe[section], section


def test_merge_folders_of_one_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    for seed in (0, 1):
        reproduce("xor", ["gru"], [seed], epochs=1, out=tmp_path / f"s{seed}", threads=1, overrides=TINY_XOR,
                  progress=False, command=f"run {seed}")  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "xor", "--merge", str(tmp_path / "s0"), "--merge", str(tmp_path / "s1"),
              "--out", str(tmp_path / "all")])  # fmt: skip
    assert e.value.code == 0
    merged = json.loads((tmp_path / "all" / "results.json").read_text())
    assert [(r["model"], r["seed"]) for r in merged["runs"]] == [("gru", 0), ("gru", 1)]
    assert merged["summary"][0]["seeds"] == 2 and "| gru |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "walker2d", "--merge", str(tmp_path / "s0"), "--out", str(tmp_path / "w")])
    assert e.value.code == 2 and "holds task 'xor', not 'walker2d'" in capsys.readouterr().err
