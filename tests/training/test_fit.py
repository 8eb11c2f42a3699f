"""Training with Lightning: XOR accuracy, checkpoint round trip, resume, tasks, shipped configs, DDP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from liquidflow.checkpoint import load_model
from liquidflow.training import TrainConfig, fit
from liquidflow.training._fit import evaluate_model
from liquidflow.training._pipeline import dataset_from_metadata, prepare_data

ROOT = Path(__file__).resolve().parents[2]
# training configs only: tune_space_*.yaml are search spaces for `liquidflow tune`, not TrainConfigs
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml") if not p.stem.startswith("tune_space"))
QUIET = ["trainer.progress=false", "trainer.checkpoints=false"]


def _tiny(cfg: TrainConfig, tmp_path: Path, extra: list[str] | None = None) -> TrainConfig:
    return cfg.with_overrides(
        [*QUIET, "trainer.epochs=1", "data.n_train=64", "data.n_val=32", "data.n_test=32", f"out_dir={tmp_path}"]
        + (extra or [])
    )


def test_cfc_learns_short_stream_xor_and_round_trips(tmp_path: Path) -> None:
    """configs/xor_cfc.yaml as shipped: >= 95 % test accuracy; reloaded checkpoint gives identical metrics."""
    torch.set_num_threads(1)
    cfg = TrainConfig.from_file(ROOT / "configs" / "xor_cfc.yaml").with_overrides([*QUIET, f"out_dir={tmp_path}"])
    results = fit(cfg)
    assert results["test"]["acc"] >= 0.95, results["test"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["test"] == results["test"] and len(saved["history"]) == cfg.trainer.epochs
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, meta = load_model(tmp_path / "model.lf")
    ds, _ = dataset_from_metadata(meta, split="test")
    again = evaluate_model(model, ds, pad_to=meta["pad_to"])
    assert again == results["test"]
    assert meta["metrics"]["test"] == results["test"] and meta["input_names"] == ["bit"]


def test_resume_continues_exactly(tmp_path: Path) -> None:
    base = TrainConfig.from_dict(
        {
            "data": {"source": "xor", "max_bits": 6, "n_train": 96, "n_val": 32, "n_test": 32},
            "model": {"kind": "gru", "units": 8},
            "trainer": {"epochs": 3, "batch_size": 32, "progress": False, "lr_schedule": "cosine"},
        }
    )
    straight = fit(base.with_overrides([f"out_dir={tmp_path / 'a'}", "trainer.checkpoints=false"]))
    first = fit(base.with_overrides([f"out_dir={tmp_path / 'b'}", "trainer.epochs=2"]))
    assert first["epochs_run"] == 2
    # same config with 3 epochs, resumed from the 2-epoch run's last checkpoint
    resumed = fit(
        base.with_overrides([f"out_dir={tmp_path / 'b'}"]), resume=tmp_path / "b" / "checkpoints" / "last.ckpt"
    )
    assert [r["epoch"] for r in resumed["history"]] == [0, 1, 2]
    m1, _ = load_model(tmp_path / "a" / "model.lf")
    m2, _ = load_model(tmp_path / "b" / "model.lf")
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    assert resumed["test"] == pytest.approx(straight["test"])


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_trains(path: Path, tmp_path: Path) -> None:
    cfg = TrainConfig.from_file(path)
    extra = []
    if cfg.data.source == "csv":
        from liquidflow.data.synthetic import sensor_readings_frame

        csv = tmp_path / "sensors.csv"
        sensor_readings_frame(n_machines=8, readings=60, seed=1).to_csv(csv, index=False)
        extra = [f"data.path={csv}", "data.window=16"]
    if cfg.data.source == "xor":
        extra = ["data.max_bits=6", "model.units=8"]
    if cfg.data.source == "spirals":
        extra = ["data.length=12"]
    small = _tiny(cfg, tmp_path / "run", extra)
    results = fit(small)
    assert results["epochs_run"] == 1 and np.isfinite(results["test"]["loss"])
    model, meta = load_model(tmp_path / "run" / "model.lf")
    assert model.task == results["task"] and meta["train_config"]["model"]["kind"] == cfg.model.kind


def test_prepare_data_tasks_and_shapes(tmp_path: Path) -> None:
    from liquidflow.data.synthetic import sensor_readings_frame

    csv = tmp_path / "s.csv"
    sensor_readings_frame(n_machines=6, readings=40, seed=2).to_csv(csv, index=False)
    common = {"source": "csv", "path": str(csv), "entity": "machine", "target": "fault", "time_unit": "h"}
    step = prepare_data(TrainConfig.from_dict({"data": common}).data)
    assert step.task == "step_classification" and step.output_size == 2
    assert step.train[0]["y"].shape == step.train[0]["timespans"].shape
    windowed = prepare_data(TrainConfig.from_dict({"data": {**common, "window": 10, "stride": 5}}).data)
    assert windowed.task == "classification" and windowed.train[0]["y"].dim() == 0
    ents = [set(d.series.entities) for d in (windowed.train, windowed.val, windowed.test)]
    assert not (ents[0] & ents[1] or ents[0] & ents[2] or ents[1] & ents[2])
    fc = prepare_data(TrainConfig.from_dict({"data": {"source": "spirals", "task": "forecast", "length": 10}}).data)
    assert fc.task == "forecast" and fc.output_size == 2 and fc.input_size == 3  # x, y, next_dt
    reg = prepare_data(TrainConfig.from_dict({"data": {"source": "spirals", "missing": 0.2, "length": 10}}).data)
    assert reg.output_size == 2 and reg.preprocessor.input_names == ["x", "y", "x_missing", "y_missing"]


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epoch'\] in section 'trainer'"):
        TrainConfig.from_dict({"trainer": {"epoch": 3}})
    with pytest.raises(ValueError, match="data.source must be one of"):
        TrainConfig.from_dict({"data": {"source": "mnist"}})
    with pytest.raises(ValueError, match="needs data.path"):
        TrainConfig.from_dict({"data": {"source": "csv"}})
    with pytest.raises(ValueError, match="model.kind must be one of"):
        TrainConfig().with_overrides(["model.kind=rnn"])
    with pytest.raises(ValueError, match="must look like section.key=value"):
        TrainConfig().with_overrides(["epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: {epochs: 0}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: trainer\.epochs must be an integer >= 1"):
        TrainConfig.from_file(bad)


def _ddp_config(tmp_path: Path, devices: int, batch: int) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "data": {"source": "xor", "max_bits": 6, "n_train": 64, "n_val": 32, "n_test": 32},
            "model": {"kind": "cfc", "units": 8, "options": {"backbone_units": 16}},
            "trainer": {
                "epochs": 2,
                "batch_size": batch,
                "lr": 0.01,
                "shuffle": False,
                "progress": False,
                "checkpoints": False,
                "devices": devices,
                "strategy": "ddp_spawn" if devices > 1 else "auto",
                "gradient_clip": None,
                "monitor": "train_loss",
            },
            "out_dir": str(tmp_path),
        }
    )


def test_ddp_two_processes_equal_single_process(tmp_path: Path) -> None:
    """2 CPU processes (gloo) x batch 8 == 1 process x batch 16: same updates, same weights."""
    single = fit(_ddp_config(tmp_path / "one", 1, 16))
    double = fit(_ddp_config(tmp_path / "two", 2, 8))
    m1, _ = load_model(tmp_path / "one" / "model.lf")
    m2, _ = load_model(tmp_path / "two" / "model.lf")
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
    assert double["test"]["acc"] == pytest.approx(single["test"]["acc"])
    assert double["test"]["loss"] == pytest.approx(single["test"]["loss"], rel=1e-4)


def test_early_stopping_stops_when_val_loss_stalls(tmp_path: Path) -> None:
    cfg = TrainConfig.from_dict(
        {
            "data": {"source": "spirals", "n_train": 32, "n_val": 16, "n_test": 16, "length": 8},
            "model": {"kind": "gru", "units": 4},
            "trainer": {"epochs": 10, "lr": 1e-12, "patience": 1, "progress": False, "checkpoints": False},
            "out_dir": str(tmp_path),
        }
    )
    results = fit(cfg)
    # a learning rate of 1e-12 leaves val_loss unchanged: epoch 0 sets the best, epoch 1 does not improve
    assert results["epochs_run"] == 2 and results["best_epoch"] == 0
    assert set(results["test"]) == {"loss", "mse", "mae"}
    assert results["test"]["mse"] == pytest.approx(results["test"]["loss"], rel=1e-5)
