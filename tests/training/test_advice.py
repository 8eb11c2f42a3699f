"""The trainer's recommendations: given for long sequences on a liquid cell without mixed memory, not otherwise."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from liquidflow.training import TrainConfig, fit
from liquidflow.training._advice import LONG_SEQUENCE, advise
from liquidflow.training._pipeline import prepare_data


def _cfg(tmp_path, length: int, **model) -> TrainConfig:
    rng = np.random.default_rng(0)
    rows = []
    for e in range(12):
        for t in range(length):
            rows.append({"entity": e, "timestamp": float(t), "x": float(rng.normal()), "y": e % 2})
    path = tmp_path / f"s{length}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return TrainConfig.from_dict(
        {
            "data": {"source": "csv", "path": str(path), "target": "y", "target_level": "sequence"},
            "model": {"kind": "cfc", "units": 4, **model},
            "trainer": {"epochs": 1, "batch_size": 4, "progress": False, "checkpoints": False},
            "out_dir": str(tmp_path / "run"),
        }
    )


def test_long_sequences_get_the_mixed_memory_advice(tmp_path, caplog):
    long = _cfg(tmp_path, LONG_SEQUENCE)
    assert any("mixed_memory=true" in a for a in advise(long, prepare_data(long.data)))
    with caplog.at_level(logging.WARNING, logger="liquidflow.training"):
        res = fit(long)
    assert res["advice"] and "median 64 steps" in res["advice"][0]
    assert any("recommendation: sequences are long" in r.message for r in caplog.records)


def test_no_advice_for_short_sequences_set_options_or_baselines(tmp_path):
    short = _cfg(tmp_path, LONG_SEQUENCE // 2)
    assert advise(short, prepare_data(short.data)) == []
    for model in ({"options": {"mixed_memory": False}}, {"kind": "gru"}):
        cfg = _cfg(tmp_path, LONG_SEQUENCE, **model)
        assert advise(cfg, prepare_data(cfg.data)) == []
