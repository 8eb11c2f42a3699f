"""Durability: atomic, versioned checkpoints; a training run killed with SIGKILL mid-epoch and resumed
ends with exactly the weights of an uninterrupted run, losing only the steps since the last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from liquidflow.checkpoint import FORMAT, VERSION, load_model, save_model
from liquidflow.training import build_model

SCRIPT = r"""
import os, signal, sys
import torch
torch.set_num_threads(1)
import lightning as L
from liquidflow.training import TrainConfig, fit

out, kill_at, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class Killer(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush: as if the machine died

class SaveFinal(L.Callback):
    def on_train_end(self, trainer, pl_module):
        torch.save({k: v.clone() for k, v in pl_module.model.state_dict().items()}, os.path.join(out, "final.pt"))

cfg = TrainConfig.from_dict({
    "data": {"source": "xor", "max_bits": 6, "n_train": 320, "n_val": 64, "n_test": 64},
    "model": {"kind": "cfc", "units": 8, "options": {"backbone_units": 16}},
    "trainer": {"epochs": 3, "batch_size": 32, "lr": 0.01, "seed": 3, "deterministic": True,
                "progress": False, "checkpoint_every_n_steps": 4},
    "out_dir": out,
})
fit(cfg, resume=None if resume == "-" else resume, callbacks=[Killer(), SaveFinal()])
"""


def run(out: Path, kill_at: int = -1, resume: str = "-") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), str(kill_at), resume],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path: Path) -> None:
    straight = run(tmp_path / "a")
    assert straight.returncode == 0, straight.stderr[-3000:]
    # 10 batches per epoch: step 13 is batch 3 of epoch 2; the last checkpoint was written at step 12
    killed = run(tmp_path / "b", kill_at=13)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    ckpt = tmp_path / "b" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)  # our own file, written by Lightning
    assert state["global_step"] == 12  # lost: one step (13), no more
    assert not list((tmp_path / "b" / "checkpoints").glob(".*.tmp"))  # no half-written file left behind
    resumed = run(tmp_path / "b", resume=str(ckpt))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(tmp_path / "a" / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "final.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ra = json.loads((tmp_path / "a" / "results.json").read_text())
    rb = json.loads((tmp_path / "b" / "results.json").read_text())
    assert ra["test"] == rb["test"]


def test_checkpoint_is_atomic_and_versioned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = build_model("gru", 2, 2, units=4)
    path = save_model(model, tmp_path / "m.lf", {"run": 1})
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT and payload["version"] == VERSION
    before = path.read_bytes()

    def crash(obj, f, *a, **k):  # type: ignore[no-untyped-def]
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_model(build_model("gru", 2, 2, units=4), path, {"run": 2})
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.lf"]  # and no temporary file is left
    monkeypatch.undo()
    loaded, meta = load_model(path)
    assert meta == {"run": 1}
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_c_export_is_atomic_and_versioned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from liquidflow.export import to_c
    from liquidflow.export._c import FORMAT_VERSION

    model = build_model("cfc", 2, 1, units=4, backbone_units=4)
    gen = to_c(model, tmp_path, prefix="lf")
    header = gen.header.read_text()
    assert f"#define LF_FORMAT_VERSION {FORMAT_VERSION}\n" in header
    assert f"Export format version {FORMAT_VERSION}" in gen.source.read_text()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def crash(src, dst):  # type: ignore[no-untyped-def]
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        to_c(model, tmp_path, prefix="lf", dtype="int8")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # old files intact, no temp files


def test_onnx_export_is_atomic_and_versioned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    onnx = pytest.importorskip("onnx")
    from liquidflow.export import to_onnx
    from liquidflow.export._onnx import FORMAT_VERSION

    model = build_model("cfc", 2, 1, units=4, backbone_units=4)
    path = to_onnx(model, tmp_path / "m.onnx", mode="sequence")
    props = {m.key: m.value for m in onnx.load(str(path)).metadata_props}
    assert props["liquidflow_format_version"] == str(FORMAT_VERSION)
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", lambda s, d: (_ for _ in ()).throw(OSError("power cut")))
    with pytest.raises(OSError, match="power cut"):
        to_onnx(model, path, mode="step")
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
