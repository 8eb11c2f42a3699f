"""The sampling-rate claim on a small model: an LTC trained at 10 Hz keeps its accuracy at 1 Hz and 100 Hz.

Documented margin (docs/robustness.md): for the tiny CI model, accuracy at 0.1x and 10x the training
rate within ``MARGIN`` = 0.15 of the accuracy at the training rate, on the 3-band oscillator task
(chance 1/3). The full experiment (four model kinds, ~1.5 min) is slow: there the LTC stays within
the margin at 10x and above 0.5 (and above every other model) at 0.1x.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from liquidflow.robustness import OscillatorTask, Resample, evaluate, run_experiment, train_classifier

MARGIN = 0.15


def test_tiny_ltc_keeps_accuracy_across_sampling_rates() -> None:
    torch.set_num_threads(1)
    train = OscillatorTask.make(150, rate=10.0, duration=6.0, seed=0)
    test = OscillatorTask.make(90, rate=10.0, duration=6.0, seed=1)
    ltc = train_classifier("ltc", train.series, 3, units=8, epochs=10, lr=0.02, batch_size=16, ode_unfolds=2)
    table = evaluate({"LTC": ltc}, test, [Resample(0.1), Resample(10.0)])
    base = table.value("LTC", "clean")
    assert base > 0.5  # it learned the task (chance: 1/3)
    for label in ("sampling_rate@0.1", "sampling_rate@10"):
        assert abs(table.value("LTC", label) - base) <= MARGIN, table.to_markdown()
    steps = {r["perturbation"]: r["steps"] for r in table.rows}
    assert steps == {"clean": 60, "sampling_rate@0.1": 6, "sampling_rate@10": 600}


@pytest.mark.slow
def test_full_experiment(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    table = run_experiment(tmp_path, progress=False)
    base = table.value("LTC", "clean")
    assert base > 0.9
    # 10x the rate: the LTC keeps its accuracy; the discrete-time baselines fall to chance
    assert abs(table.value("LTC", "sampling_rate@10") - base) <= MARGIN
    # 0.1x (10 readings per sequence): the LTC loses accuracy (fewer samples, coarse integration)
    # but stays far above chance and above every other model (docs/robustness.md)
    slow = table.value("LTC", "sampling_rate@0.1")
    assert slow > 0.5
    assert all(slow > table.value(m, "sampling_rate@0.1") for m in ("CfC", "LSTM", "GRU"))
    assert (tmp_path / "table.md").read_text().startswith("| perturbation |")
    assert (tmp_path / "robustness.png").exists() and (tmp_path / "results.json").exists()
