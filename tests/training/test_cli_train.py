"""`liquidflow train | evaluate | predict | info` on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from liquidflow.checkpoint import load_model
from liquidflow.cli import build_app

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(build_app(), list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _json_tail(text: str) -> dict:
    return json.loads(text[text.index("{") :])


@pytest.mark.parametrize("cmd", ["train", "evaluate", "predict", "info"])
def test_help(cmd: str) -> None:
    out = _run(cmd, "--help")
    assert "Usage" in out and ("--config" in out if cmd == "train" else "checkpoint" in out.lower())


def test_train_info_evaluate_on_xor(tmp_path: Path) -> None:
    out = _run(
        "train", "--data", "xor", "--model", "cfc", "--units", "8", "--wiring", "autoncp", "--epochs", "1",
        "--set", "data.n_train=64", "--set", "data.n_val=32", "--set", "data.n_test=32",
        "--set", "data.max_bits=5", "--set", "trainer.checkpoints=false", "--no-progress", "--out", str(tmp_path),
    )  # fmt: skip
    summary = _json_tail(out)
    assert summary["task"] == "classification" and summary["epochs_run"] == 1
    ckpt = tmp_path / "model.lf"
    info = _json_tail(_run("info", str(ckpt)))
    model, _ = load_model(ckpt)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["synapses"] == model.core.wiring.synapse_count and info["state_size"] == 8
    assert info["wiring"] == "AutoNCP" and info["input_names"] == ["bit"]
    metrics = _json_tail(_run("evaluate", str(ckpt), "--out", str(tmp_path / "eval.json")))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert metrics["acc"] == saved["test"]["acc"] and metrics["loss"] == saved["test"]["loss"]
    assert json.loads((tmp_path / "eval.json").read_text()) == metrics


def test_train_predict_on_csv(tmp_path: Path) -> None:
    from liquidflow.data.synthetic import sensor_readings_frame

    csv = tmp_path / "sensors.csv"
    sensor_readings_frame(n_machines=8, readings=40, seed=3).to_csv(csv, index=False)
    out = _run(
        "train", "--data", str(csv), "--target", "fault", "--model", "gru", "--units", "8", "--epochs", "1",
        "--set", "data.entity=machine", "--set", "data.time_unit=h", "--set", "data.window=10",
        "--set", "data.stride=10", "--set", "trainer.checkpoints=false", "--no-progress",
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert _json_tail(out)["task"] == "classification"
    preds = tmp_path / "preds.csv"
    _run("predict", str(tmp_path / "run" / "model.lf"), "--data", str(csv), "--out", str(preds))
    df = pd.read_csv(preds)
    assert len(df) == 8 * 4  # 4 windows of 10 readings per machine
    assert set(df.columns) >= {"entity", "time", "prediction", "p_0", "p_1"}
    assert ((df["p_0"] + df["p_1"] - 1).abs() < 1e-5).all()
    whole = _json_tail(_run("evaluate", str(tmp_path / "run" / "model.lf"), "--split", "all"))
    assert whole["sequences"] == 32


def test_bad_override_is_reported(tmp_path: Path) -> None:
    result = runner.invoke(build_app(), ["train", "--set", "trainer.epochs=0", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "trainer.epochs must be an integer >= 1" in result.output


def test_bad_data_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "fake.whl").write_text("not a zip")
    configs = {
        "missing.yaml": (f"{{source: csv, path: {tmp_path / 'none.csv'}, target: y}}", "does not exist"),
        "noname.yaml": (f"{{source: ucr, path: {tmp_path}}}", "needs data.path"),
        "nofolder.yaml": (f"{{source: ucr, name: Nope, path: {tmp_path / 'x'}}}", "no Nope_TRAIN.ts"),
        "fakewheel.yaml": (f"{{source: ucr, name: Nope, path: {tmp_path / 'fake.whl'}}}", "not a wheel"),
    }
    for name, (text, expected) in configs.items():
        (tmp_path / name).write_text(f"data: {text}\n")
        result = runner.invoke(build_app(), ["train", "-c", str(tmp_path / name), "--out", str(tmp_path / "run")])
        assert result.exit_code != 0 and expected in result.output, (name, result.output)
        assert "Traceback" not in result.output
    result = runner.invoke(build_app(), ["train", "-c", str(tmp_path / "absent.yaml")])
    assert result.exit_code != 0 and "does not exist" in result.output


def test_info_on_a_bare_layer(tmp_path: Path) -> None:
    from liquidflow.checkpoint import save_model
    from liquidflow.torch import LTC
    from liquidflow.wirings import AutoNCP

    layer = LTC(3, AutoNCP(10, 2))
    save_model(layer, tmp_path / "ltc.lf")
    info = _json_tail(_run("info", str(tmp_path / "ltc.lf")))
    assert info["class"] == "LTC" and info["state_size"] == 10 and info["output_size"] == 2
    assert info["synapses"] == layer.wiring.synapse_count
    assert info["sensory_synapses"] == layer.wiring.sensory_synapse_count
    assert info["parameters"] == sum(p.numel() for p in layer.parameters())
