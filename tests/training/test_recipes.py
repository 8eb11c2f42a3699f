"""Training recipes: optimisers, schedules, Keras-style clipping and L2, restore_best, threads."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from liquidflow.training import TrainConfig, build_model, fit
from liquidflow.training._fit import PARALLEL_WORK, choose_threads
from liquidflow.training._module import SequenceTask, l2_kernels

TINY = {
    "data": {"source": "xor", "max_bits": 5, "n_train": 96, "n_val": 32, "n_test": 32},
    "model": {"kind": "cfc", "units": 6, "options": {"backbone_units": 8}},
    "trainer": {"epochs": 2, "batch_size": 32, "progress": False, "checkpoints": False, "threads": 1},
}


def _cfg(tmp_path: Path, **trainer: Any) -> TrainConfig:
    d = {**TINY, "trainer": {**TINY["trainer"], **trainer}, "out_dir": str(tmp_path)}
    return TrainConfig.from_dict(d)


class _LrLog(L.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_exponential_schedule_moves_every_step_like_keras(tmp_path: Path) -> None:
    """Keras ExponentialDecay(lr, steps_per_epoch, 0.5): lr * 0.5 ** (step / steps_per_epoch)."""
    log = _LrLog()
    fit(_cfg(tmp_path, lr=0.1, lr_schedule="exponential", lr_decay=0.5), callbacks=[log])
    assert len(log.lrs) == 6  # 96 / 32 = 3 steps per epoch, 2 epochs
    expected = [0.1 * 0.5 ** (k / 3) for k in range(6)]
    assert log.lrs == pytest.approx(expected, rel=1e-9)


def test_exponential_schedule_per_epoch_and_onecycle(tmp_path: Path) -> None:
    log = _LrLog()
    fit(_cfg(tmp_path / "e", lr=0.1, lr_schedule="exponential", lr_decay=0.5, lr_schedule_interval="epoch"),
        callbacks=[log])  # fmt: skip
    assert log.lrs == pytest.approx([0.1] * 3 + [0.05] * 3)
    log = _LrLog()
    fit(_cfg(tmp_path / "o", lr=0.1, lr_schedule="onecycle"), callbacks=[log])
    assert max(log.lrs) <= 0.1 + 1e-12 and log.lrs[0] < 0.01 and log.lrs[0] < log.lrs[2]


@pytest.mark.parametrize(
    ("name", "options", "klass", "check"),
    [
        ("rmsprop", {"alpha": 0.9, "eps": 1e-7}, torch.optim.RMSprop, {"alpha": 0.9, "eps": 1e-7}),
        ("adam", {"eps": 1e-7}, torch.optim.Adam, {"eps": 1e-7, "weight_decay": 0.01}),
        ("adamw", {}, torch.optim.AdamW, {"weight_decay": 0.01}),
        ("sgd", {"momentum": 0.9}, torch.optim.SGD, {"momentum": 0.9}),
    ],
)
def test_optimizers_and_their_options(name: str, options: dict[str, Any], klass: type, check: dict[str, Any]) -> None:
    model = build_model("cfc", 1, 2, units=4, backbone_units=4)
    task = SequenceTask(model, 0.01, 0.01, None, 1, optimizer=name, optimizer_options=options)
    opt = task.configure_optimizers()
    assert type(opt) is klass
    for k, v in check.items():
        assert opt.param_groups[0][k] == v


def test_bad_optimizer_options_name_the_key() -> None:
    model = build_model("cfc", 1, 2, units=4, backbone_units=4)
    task = SequenceTask(model, optimizer="rmsprop", optimizer_options={"betas": (0.9, 0.99)})
    with pytest.raises(ValueError, match="optimizer_options .*betas.* do not fit RMSprop"):
        task.configure_optimizers()


def test_per_tensor_clipping_clips_each_tensor_on_its_own() -> None:
    model = build_model("cfc", 1, 2, units=4, backbone_units=4)
    grads = [torch.full_like(p, 3.0) * (k + 1) for k, p in enumerate(model.parameters())]

    def clipped(mode: str) -> list[torch.Tensor]:
        task = SequenceTask(model, gradient_clip_mode=mode)
        opt = task._optimizer()
        for p, g in zip(model.parameters(), grads, strict=True):
            p.grad = g.clone()
        if mode == "per_tensor":
            task.configure_gradient_clipping(opt, 1.0, "norm")
        else:
            torch.nn.utils.clip_grad_norm_(list(model.parameters()), 1.0)
        return [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]

    per = clipped("per_tensor")
    for g, orig in zip(per, grads, strict=True):  # each tensor's norm is 1 (all start above 1), direction kept
        assert float(g.norm()) == pytest.approx(1.0, rel=1e-5)
        assert torch.allclose(g / g.norm(), orig / orig.norm())
    total = torch.sqrt(sum(g.norm() ** 2 for g in clipped("global")))
    assert float(total) == pytest.approx(1.0, rel=1e-5)  # global: the whole vector's norm is 1


def test_l2_kernels_are_keras_kernel_regularizers() -> None:
    """CfC: backbone and head kernels (not biases, not the mixed-memory LSTM, not the output head)."""
    model = build_model("cfc", 3, 2, units=5, backbone_units=7, mixed_memory=True)
    names = {n for n, p in model.core.named_parameters() if any(p is q for q in l2_kernels(model))}
    assert names == {"cell.backbone.0.weight", "cell.f1.weight", "cell.f2.weight",
                     "cell.time_a.weight", "cell.time_b.weight"}  # fmt: skip
    wd = 0.01
    task = SequenceTask(model, weight_decay=wd, weight_decay_mode="l2_kernels", lr_schedule=None)
    plain = SequenceTask(model, weight_decay=wd, lr_schedule=None)
    assert plain.configure_optimizers().param_groups[0]["weight_decay"] == wd
    assert task.configure_optimizers().param_groups[0]["weight_decay"] == 0.0  # only the penalty acts
    task.log = plain.log = lambda *a, **k: None  # type: ignore[method-assign]
    batch = {"x": torch.randn(4, 6, 3), "timespans": torch.rand(4, 6), "mask": torch.ones(4, 6, dtype=torch.bool),
             "y": torch.tensor([0, 1, 1, 0])}  # fmt: skip
    penalty = wd * sum(float((p.detach() ** 2).sum()) for p in l2_kernels(model))
    with torch.no_grad():
        diff = float(task.training_step(batch, 0)) - float(plain.training_step(batch, 0))
    assert diff == pytest.approx(penalty, rel=1e-5)


def test_restore_best_false_tests_the_last_epoch(tmp_path: Path) -> None:
    res = fit(_cfg(tmp_path, restore_best=False))
    assert res["restored"] == "last" and res["threads"] == 1
    res = fit(_cfg(tmp_path / "b"))
    assert res["restored"] == "best"


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("optimizer", "lbfgs", "trainer.optimizer must be one of"),
        ("lr_schedule", "linear", "trainer.lr_schedule must be one of"),
        ("lr_decay", 1.5, "trainer.lr_decay must be in"),
        ("weight_decay_mode", "keras", "trainer.weight_decay_mode must be one of"),
        ("gradient_clip_mode", "value", "trainer.gradient_clip_mode must be one of"),
        ("gradient_clip", -1, "trainer.gradient_clip must be a positive number"),
        ("threads", 0, "trainer.threads must be an integer >= 1"),
        ("optimizer_options", [1], "trainer.optimizer_options must be a mapping"),
    ],
)
def test_bad_recipe_values(key: str, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict({"trainer": {key: value}})


def test_choose_threads_by_work_per_batch() -> None:
    """One thread for small batches x models, all threads from PARALLEL_WORK multiply-adds on."""
    small = build_model("cfc", 1, 2, units=16, backbone_units=32)
    big = build_model("cfc", 1, 2, units=64, backbone_units=128)
    batch = {"x": torch.zeros(32, 16, 1)}
    assert choose_threads(small, batch, 2) == 1
    assert choose_threads(big, {"x": torch.zeros(256, 32, 1)}, 2) == 2
    assert choose_threads(big, {"x": torch.zeros(256, 32, 1)}, 1) == 1
    n = sum(p.numel() for p in big.parameters())
    rows = math.ceil(PARALLEL_WORK / (n * 10))
    assert choose_threads(big, {"x": torch.zeros(rows, 10, 1)}, 4) == 4
    assert choose_threads(big, {"x": torch.zeros(rows - 2, 10, 1)}, 4) == 1


def test_fit_restores_the_callers_thread_count(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    res = fit(_cfg(tmp_path, threads="auto"))
    assert res["threads"] in (1, max(before, 1)) and torch.get_num_threads() == before
    assert math.isfinite(res["test"]["loss"])


def test_train_with_several_seeds_reports_mean_and_std(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from liquidflow.cli import main

    args = ["train", "--data", "xor", "--model", "gru", "--units", "4", "--epochs", "1", "--seeds", "0,1",
            "--out", str(tmp_path), "--no-progress", "--set", "data.n_train=64", "--set", "data.n_val=32",
            "--set", "data.n_test=32", "--set", "data.max_bits=5", "--set", "trainer.checkpoints=false"]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0
    saved = json.loads((tmp_path / "seeds.json").read_text())
    accs = [json.loads((tmp_path / f"seed{k}" / "results.json").read_text())["test"]["acc"] for k in (0, 1)]
    assert saved["summary"]["test_acc"]["mean"] == pytest.approx(sum(accs) / 2)
    assert saved["summary"]["test_acc"]["std"] == pytest.approx(abs(accs[0] - accs[1]) / 2)
    assert '"test_acc"' in capsys.readouterr().out
