"""Every command takes every model file the others write, or says in one line what the file lacks.

Model files: a RiskModel from `liquidflow maintenance train` (and the demo), a SequenceModel from
`liquidflow train`, an old maintenance file (liquidflow.maintenance/1) and a file that is no model.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from liquidflow.cli import build_app
from liquidflow.export import to_c
from liquidflow.maintenance import FEATURES, check_c_export, load_risk_model, predict_sequences, to_sequences
from liquidflow.training import RiskExportView

runner = CliRunner()
H = 14.0


def _run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    res = runner.invoke(build_app(), list(args), input=input)
    # never a traceback: a clean exit (0) or a usage error / one-line message (1, 2)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    assert "Traceback" not in res.output
    return res


def _message(res) -> str:  # type: ignore[no-untyped-def]
    """The error text of a typer usage error, box borders and line wraps removed."""
    return " ".join(line.strip("│╭╰─ ") for line in res.output.splitlines())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("files")
    data = tmp / "fleet.csv"
    assert _run("maintenance", "simulate", str(data), "--machines", "6", "--days", "15", "--seed", "2").exit_code == 0
    risk = tmp / "risk.lf"
    res = _run("maintenance", "train", str(data), "--out", str(risk), "--epochs", "1", "--units", "8", "--no-progress")
    assert res.exit_code == 0, res.output
    run = tmp / "xor"
    res = _run("train", "--data", "xor", "--epochs", "1", "--units", "8", "--out", str(run), "--no-progress")
    assert res.exit_code == 0, res.output
    model, _ = load_risk_model(risk)
    legacy = tmp / "old.pt"  # the same weights in the maintenance application's old file format
    sd = {("mean" if k == "input_mean" else "std" if k == "input_std" else k): v for k, v in model.state_dict().items()}
    torch.save(
        {
            "format": "liquidflow.maintenance/1",
            "config": model.get_config(),
            "state_dict": sd,
            "extra": {"threshold": 0.4},
        },
        legacy,
    )
    text = tmp / "notes.txt"
    text.write_text("not a model\n")
    return {"data": data, "risk": risk, "seq": run / "model.lf", "legacy": legacy, "text": text, "tmp": tmp}


def _sample(data: Path) -> pd.DataFrame:
    df = pd.read_csv(data)
    return df.groupby("machine_id").head(4).sort_values(["timestamp", "machine_id"])


@pytest.mark.parametrize("which", ["risk", "legacy"])
def test_a_maintenance_model_goes_through_info_export_inspect(files, which, tmp_path):
    path = files[which]
    model, meta = load_risk_model(path)
    res = _run("info", str(path))
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["class"] == "RiskModel" and info["core"] == "CfC" and info["kind"] == "cfc"
    assert info["threshold"] == meta["threshold"] and info["input_names"] == list(FEATURES)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["input_mean"] == [round(float(v), 6) for v in model.input_mean.tolist()]
    assert info["synapses"] == model.core.wiring.synapse_count

    res = _run("export", str(path), "--format", "c", "--out", str(tmp_path / "c"), "--prefix", "lfrisk")
    assert res.exit_code == 0, res.output
    assert "failure-risk model" in res.output and "log(x) taken first" in res.output
    # the command writes exactly the C of the model's liquid core, which compiles and equals Python
    ref = to_c(RiskExportView(model), tmp_path / "ref", prefix="lfrisk")
    assert (tmp_path / "c" / "lfrisk.c").read_text() == Path(ref.source).read_text()
    assert (tmp_path / "c" / "lfrisk.h").read_text() == Path(ref.header).read_text()
    if shutil.which("gcc") is not None:
        seqs = to_sequences(pd.read_csv(files["data"]), FEATURES, horizon_days=H)
        check = check_c_export(model, seqs, 0, tmp_path / "check")
        assert check.ok and check.max_abs_diff <= 1e-4, check.message
    elif os.environ.get("CI") == "true":
        pytest.fail("gcc is required in CI for the C export check")

    res = _run(
        "inspect", str(path), "--out", str(tmp_path / "inspect"), "--samples", "4", "--steps", "2", "--no-progress"
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "inspect" / "report.html").exists()


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_name_the_maintenance_command_for_a_risk_model(files, command):
    res = _run(command, str(files["risk"]))
    assert res.exit_code == 2
    assert "is a failure-risk model from `liquidflow maintenance train`" in _message(res)
    assert f"liquidflow maintenance {'evaluate' if command == 'evaluate' else 'monitor'}" in _message(res)


def test_the_old_file_format_monitors_like_the_new_one(files):
    csv = _sample(files["data"]).drop(columns=["rul_days", "fails_within_h"], errors="ignore").to_csv(index=False)
    new = _run("maintenance", "monitor", "--model", str(files["risk"]), "--threshold", "0.4", input=csv)
    old = _run("maintenance", "monitor", "--model", str(files["legacy"]), input=csv)
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    assert new.stdout == old.stdout  # same weights, same threshold (0.4 saved in the old file)


def test_monitor_gives_the_models_risks(files):
    sample = _sample(files["data"])
    res = _run("maintenance", "monitor", "--model", str(files["risk"]), input=sample.to_csv(index=False))
    assert res.exit_code == 0, res.output
    got = pd.read_csv(io.StringIO(res.stdout))
    model, meta = load_risk_model(files["risk"])
    seqs = to_sequences(sample, FEATURES, horizon_days=H)
    risk, _ = predict_sequences(model, seqs)
    for i, mid in enumerate(seqs.ids):
        mine = got[got["machine_id"] == mid]["risk"].to_numpy()
        np.testing.assert_allclose(mine, risk[i, : seqs.lengths[i]], atol=2e-6)
    assert ((got["risk"] > meta["threshold"]) == got["alarm"].astype(bool)).all()


@pytest.mark.parametrize("command", ["monitor", "evaluate"])
def test_a_model_from_liquidflow_train_is_refused_by_maintenance_in_one_line(files, command):
    args = ["maintenance", command, "--model", str(files["seq"])]
    if command == "evaluate":
        args.insert(2, str(files["data"]))
    res = _run(*args, input="machine_id,timestamp,rms\n")
    assert res.exit_code == 2
    msg = _message(res)
    assert "holds a SequenceModel (task 'classification'), not a failure-risk model" in msg
    assert "alarm metadata (threshold, horizon_days)" in msg


def test_a_model_from_liquidflow_train_still_goes_everywhere_else(files, tmp_path):
    assert _run("info", str(files["seq"])).exit_code == 0
    assert _run("evaluate", str(files["seq"])).exit_code == 0
    assert _run("export", str(files["seq"]), "--format", "c", "--out", str(tmp_path / "c")).exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["info", "{f}"],
        ["export", "{f}", "--out", "{tmp}/x"],
        ["inspect", "{f}", "--out", "{tmp}/y"],
        ["evaluate", "{f}"],
        ["predict", "{f}"],
        ["maintenance", "evaluate", "{data}", "--model", "{f}"],
        ["maintenance", "monitor", "--model", "{f}"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_file_that_is_no_model_gets_one_line_everywhere(files, args, tmp_path):
    argv = [a.format(f=files["text"], tmp=tmp_path, data=files["data"]) for a in args]
    res = _run(*argv, input="machine_id,timestamp\n")
    assert res.exit_code == 2
    assert "is not a readable liquidflow checkpoint" in _message(res)


def test_a_baseline_risk_model_says_it_has_no_liquid_core(files, tmp_path):
    gru = tmp_path / "gru.lf"
    args = ["maintenance", "train", str(files["data"]), "--out", str(gru), "--kind", "gru", "--epochs", "1"]
    assert _run(*args, "--hidden", "8", "--no-progress").exit_code == 0
    assert json.loads(_run("info", str(gru)).output)["core"] == "DtGRU"
    for cmd in (
        ["export", str(gru), "--out", str(tmp_path / "c")],
        ["inspect", str(gru), "--out", str(tmp_path / "i")],
    ):
        res = _run(*cmd)
        assert res.exit_code == 2 and "only liquid risk models (cfc, ltc) have a liquid core" in _message(res)
