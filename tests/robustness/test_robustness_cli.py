"""``liquidflow robustness``: a tiny run writes the table, the JSON and the plot; bad model names are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liquidflow.cli import build_app


def test_cli_tiny_run(tmp_path: Path) -> None:
    args = ["robustness", "-o", str(tmp_path), "--models", "gru,cfc", "--n-train", "24", "--n-test", "12"]
    args += ["--duration", "2", "--epochs", "1", "--units", "4", "--no-progress"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "table.md").read_text().splitlines()
    assert lines[0] == "| perturbation | mean steps | GRU | CfC |"
    assert lines[2].startswith("| clean | 20 |") and lines[3].startswith("| sampling_rate@0.1 | 2 |")
    assert lines[4].startswith("| sampling_rate@10 | 200 |")
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["settings"]["n_train"] == 24 and len(data["rows"]) == 2 * (len(lines) - 2)
    assert all(0.0 <= r["value"] <= 1.0 for r in data["rows"])
    assert (tmp_path / "robustness.png").stat().st_size > 1000


def test_cli_rejects_unknown_models(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_app(), ["robustness", "-o", str(tmp_path), "--models", "ltc,rnn"])
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())  # undo rich's box and line wrapping
    assert "models must be a comma-separated subset of ['cfc', 'gru', 'lstm', 'ltc']; got 'ltc,rnn'" in text


def test_cli_tiny_run_over_seeds(tmp_path: Path) -> None:
    args = ["robustness", "-o", str(tmp_path), "--models", "gru", "--n-train", "24", "--n-test", "12"]
    args += ["--duration", "2", "--epochs", "1", "--units", "4", "--no-progress", "--seeds", "0,1,2"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "table.md").read_text().splitlines()
    assert lines[0] == "| perturbation | mean steps | GRU |" and lines[2].startswith("| clean | 20 | ")
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["settings"]["seeds"] == [0, 1, 2]
    for row, line in zip(data["rows"], lines[2:], strict=True):
        assert len(row["values"]) == 3 and row["value"] == pytest.approx(sum(row["values"]) / 3)
        assert line.endswith(f"| {row['value']:.3f} ± {row['std']:.3f} |")
    assert (tmp_path / "robustness.png").stat().st_size > 1000
