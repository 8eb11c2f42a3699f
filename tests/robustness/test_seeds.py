"""Several seeds: the mean and spread of synthetic per-seed tables by hand; a tiny multi-seed run equals
the single-seed runs it is made of; bad seed lists are refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from liquidflow.cli import build_app
from liquidflow.robustness import RobustnessTable, aggregate_seeds, run_experiment


def synthetic(values: dict[tuple[str, str], float], steps: dict[str, float]) -> RobustnessTable:
    rows = [
        {
            "model": m,
            "perturbation": p,
            "family": p.split("@")[0],
            "strength": float(p.split("@")[1]) if "@" in p else 0.0,
            "metric": "accuracy",
            "value": v,
            "steps": steps[p],
        }
        for (m, p), v in values.items()
    ]
    return RobustnessTable(rows=rows)


def test_aggregate_by_hand(tmp_path: Path) -> None:
    keys = [("A", "clean"), ("B", "clean"), ("A", "drop_random@0.5"), ("B", "drop_random@0.5")]
    per_seed = {
        3: [0.9, 0.5, 0.8, 0.4],
        7: [0.7, 0.5, 0.6, 0.3],
        11: [0.8, 0.5, 1.0, 0.2],
    }
    steps = {3: 50.0, 7: 52.0, 11: 48.5}
    tables = {
        s: synthetic(dict(zip(keys, v, strict=True)), {"clean": 100.0, "drop_random@0.5": steps[s]})
        for s, v in per_seed.items()
    }
    agg = aggregate_seeds(tables)
    assert agg.seeds == [3, 7, 11] and tables[3].seeds is None
    # A clean: 0.9, 0.7, 0.8 -> mean 0.8, sample std sqrt((0.01 + 0.01 + 0) / 2) = 0.1
    assert agg.value("A", "clean") == pytest.approx(0.8)
    assert agg.std("A", "clean") == pytest.approx(0.1)
    # B clean: constant -> std 0
    assert agg.value("B", "clean") == pytest.approx(0.5) and agg.std("B", "clean") == 0.0
    # A drop: 0.8, 0.6, 1.0 -> mean 0.8, std sqrt((0.04 + 0.04) / 2) = 0.2
    assert agg.value("A", "drop_random@0.5") == pytest.approx(0.8)
    assert agg.std("A", "drop_random@0.5") == pytest.approx(0.2)
    # B drop: 0.4, 0.3, 0.2 -> mean 0.3, std 0.1
    assert agg.value("B", "drop_random@0.5") == pytest.approx(0.3)
    assert agg.std("B", "drop_random@0.5") == pytest.approx(0.1)
    row = next(r for r in agg.rows if r["model"] == "A" and r["perturbation"] == "drop_random@0.5")
    assert row["values"] == [0.8, 0.6, 1.0] and row["seeds"] == [3, 7, 11]
    assert row["steps"] == pytest.approx((50.0 + 52.0 + 48.5) / 3)
    md = agg.to_markdown().splitlines()
    assert md[0] == "| perturbation | mean steps | A | B |"
    assert md[2] == "| clean | 100 | 0.800 ± 0.100 | 0.500 ± 0.000 |"
    assert md[3] == "| drop_random@0.5 | 50 | 0.800 ± 0.200 | 0.300 ± 0.100 |"
    # a single-seed table keeps its plain format
    assert tables[3].to_markdown().splitlines()[2] == "| clean | 100 | 0.900 | 0.500 |"
    assert tables[3].std("A", "clean") == 0.0
    assert agg.plot(tmp_path / "agg.png").stat().st_size > 1000


def test_aggregate_refuses_mismatched_tables() -> None:
    a = synthetic({("A", "clean"): 0.5}, {"clean": 10.0})
    b = synthetic({("B", "clean"): 0.5}, {"clean": 10.0})
    with pytest.raises(ValueError, match="at least 2 seeds; got seeds \\[0\\]"):
        aggregate_seeds({0: a})
    with pytest.raises(ValueError, match="tables must have the same models, perturbations and metric; seed 1 has"):
        aggregate_seeds({0: a, 1: b})


TINY = {"kinds": ("gru", "ltc"), "n_train": 24, "n_test": 12, "duration": 2.0, "units": 4, "epochs": 2}


def test_tiny_multi_seed_run_is_made_of_single_runs(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    singles = {s: run_experiment(tmp_path / f"seed{s}", seed=s, progress=False, **TINY) for s in (0, 1)}  # type: ignore[arg-type]
    agg = run_experiment(tmp_path / "both", seeds=[0, 1], progress=False, **TINY)  # type: ignore[arg-type]
    assert agg.seeds == [0, 1]
    for m in ("GRU", "LTC"):
        for p in agg.perturbations():
            a, b = singles[0].value(m, p), singles[1].value(m, p)
            assert agg.value(m, p) == pytest.approx((a + b) / 2)
            assert agg.std(m, p) == pytest.approx(abs(a - b) / math.sqrt(2))  # n = 2: |a - b| / sqrt(2)
    data = json.loads((tmp_path / "both" / "results.json").read_text())
    assert data["settings"]["seeds"] == [0, 1] and "seed" not in data["settings"]
    assert set(data["settings"]["train_seconds"]) == {"0", "1"}
    clean = next(r for r in data["rows"] if r["model"] == "LTC" and r["perturbation"] == "clean")
    assert clean["values"] == [singles[0].value("LTC", "clean"), singles[1].value("LTC", "clean")]
    assert (tmp_path / "both" / "table.md").read_text().splitlines()[2].count(" ± ") == 2
    assert (tmp_path / "both" / "robustness.png").stat().st_size > 1000
    single = json.loads((tmp_path / "seed1" / "results.json").read_text())
    assert single["settings"]["seed"] == 1 and "std" not in single["rows"][0]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"seeds": [3]}, r"seeds must hold at least 2 distinct seeds; got \[3\]"),
        ({"seeds": [1, 1]}, r"seeds must hold at least 2 distinct seeds; got \[1, 1\]"),
        ({"seeds": [0, 1], "seed": 4}, r"pass seed or seeds, not both; got seed=4 and seeds=\[0, 1\]"),
    ],
)
def test_run_experiment_refuses_bad_seeds(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run_experiment(tmp_path, **kw)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "0,x"], "seeds must be at least 2 distinct comma-separated integers, e.g. 0,1,2; got '0,x'"),
        (["--seeds", "5"], "got '5'"),
        (["--seeds", "0,1", "--seed", "2"], "pass --seed or --seeds, not both; got --seed 2 --seeds 0,1"),
    ],
)
def test_cli_refuses_bad_seeds(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(build_app(), ["robustness", "-o", str(tmp_path), *args])
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())  # undo rich's box and line wrapping
    assert message in text
