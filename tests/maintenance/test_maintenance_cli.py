"""`liquidflow demo` end to end on a reduced setting, and `liquidflow maintenance ...` on a CSV."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from liquidflow.cli import build_app
from liquidflow.maintenance import FEATURES, TrainConfig, check_c_export, simulate, to_sequences, train_model

runner = CliRunner()


def test_demo_end_to_end_reduced(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(
        build_app(),
        [
            "demo",
            "--machines",
            "8",
            "--days",
            "20",
            "--epochs",
            "1",
            "--seed",
            "1",
            "--seeds",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    text = res.output
    # one table: metric rows, one column per model
    header = next(line for line in text.splitlines() if line.startswith("Metric"))
    for col in ("Amplitude alarm", "LTC+NCP", "LSTM", "GRU", "Transformer"):
        assert col in header
    for row in (
        "AUROC (fails within H)",
        "AUPRC",
        "Alarm lead time",
        "False alarms / machine-month",
        "RUL MAE",
        "Parameters",
        "Model bytes",
        "Step latency",
        "Train time",
    ):
        assert row in text
    for name in (
        "table.txt",
        "table.md",
        "metrics.json",
        "figures.json",
        "risk_over_time.png",
        "wiring.png",
        "liquid_model.lf",
        "fleet.parquet",
    ):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    figures = json.loads((out / "figures.json").read_text())
    assert set(metrics["metrics"]) == {"Amplitude alarm", "LTC+NCP", "LSTM", "GRU", "Transformer"}
    assert metrics["recipe"] == "tuned" and metrics["recipes"]["ltc"]["units"] == 32  # the tuned recipes
    assert metrics["recipes"]["ltc"]["epochs"] == 1  # --epochs replaces the recipes' own
    assert figures["risk_over_time"]["machines"] and figures["wiring"]["edges"]
    m = figures["risk_over_time"]["machines"][0]
    assert len(m["t_days"]) == len(m["scores"]["ltc"])
    # the parameter count in the table is the model's
    cfc = metrics["metrics"]["LTC+NCP"]
    assert (out / "table.txt").read_text().count(f"{cfc['parameters']:,}") >= 1
    # the C step either ran and matched or said why it was skipped
    assert "max |risk_C - risk_Python|" in text or "skipped" in text


def test_demo_horizon_and_seeds_options(tmp_path):
    out = tmp_path / "run"
    args = ["demo", "--machines", "8", "--days", "20", "--epochs", "1", "--baselines", "gru", "--no-c-export",
            "--recipe", "plain"]  # fmt: skip
    res = runner.invoke(build_app(), [*args, "--horizon-days", "7", "--seeds", "2", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["horizon_days"] == 7.0 and metrics["fleet"]["horizon_days"] == 7.0
    assert metrics["metrics"]["GRU"]["seeds"] == [0, 1]
    assert "(H = 7 days" in res.output and " ± " in res.output
    assert "auprc_std" in metrics["metrics"]["LTC+NCP"]
    for bad, hint in ((["--seeds", "0"], "seeds must be >= 1"), (["--horizon-days", "0"], "horizon must be > 0")):
        res = runner.invoke(build_app(), [*args, *bad, "--out", str(tmp_path / "bad")])
        assert res.exit_code != 0 and hint in res.output


def test_maintenance_train_evaluate_monitor_on_a_csv(tmp_path):
    app = build_app()
    data = tmp_path / "fleet.csv"
    res = runner.invoke(app, ["maintenance", "simulate", str(data), "--machines", "6", "--days", "15", "--seed", "2"])
    assert res.exit_code == 0, res.output
    model = tmp_path / "m.lf"
    res = runner.invoke(
        app,
        [
            "maintenance",
            "train",
            str(data),
            "--out",
            str(model),
            "--kind",
            "gru",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert model.exists() and "trained gru on" in res.output
    res = runner.invoke(
        app, ["maintenance", "evaluate", str(data), "--model", str(model), "--json", str(tmp_path / "m.json")]
    )
    assert res.exit_code == 0, res.output
    assert "lead_time_days" in res.output and json.loads((tmp_path / "m.json").read_text())["machines"] == 6
    # the same readings as Parquet give the same metrics
    pd.read_csv(data).to_parquet(tmp_path / "fleet.parquet")
    res = runner.invoke(
        app,
        [
            "maintenance",
            "evaluate",
            str(tmp_path / "fleet.parquet"),
            "--model",
            str(model),
            "--json",
            str(tmp_path / "p.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "p.json").read_text()) == json.loads((tmp_path / "m.json").read_text())
    df = pd.read_csv(data)
    sample = df.groupby("machine_id").head(3).sort_values("timestamp")
    res = runner.invoke(app, ["maintenance", "monitor", "--model", str(model)], input=sample.to_csv(index=False))
    assert res.exit_code == 0, res.output
    out = pd.read_csv(pd.io.common.StringIO(res.stdout))
    assert list(out.columns) == ["machine_id", "timestamp", "risk", "rul_days", "alarm"]
    assert len(out) == len(sample) and out["risk"].between(0, 1).all()
    # out of order for one machine: a clear error naming the line
    m0 = sample[sample["machine_id"] == sample["machine_id"].iloc[0]]
    bad = m0.iloc[[1, 0]]
    res = runner.invoke(app, ["maintenance", "monitor", "--model", str(model)], input=bad.to_csv(index=False))
    assert res.exit_code == 1
    assert "line 3" in res.output and "not after its previous reading" in res.output


def test_c_export_risk_equals_python(tmp_path):
    if shutil.which("gcc") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("gcc is required in CI for the C export check")
        pytest.skip("gcc not installed")
    df = simulate(4, 10.0, seed=0, wake_period_h=4.0)
    seqs = to_sequences(df, FEATURES, horizon_days=14.0)
    model = train_model("cfc", seqs, None, FEATURES, horizon_days=14.0, config=TrainConfig(epochs=1, units=8)).model
    check = check_c_export(model, seqs, 0, tmp_path)
    assert check.ok, check.message
    assert check.readings == seqs.lengths[0] and check.max_abs_diff <= 1e-4
    assert np.isfinite(check.max_abs_diff) and check.flash_bytes > 0
