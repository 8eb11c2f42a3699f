"""``liquidflow export``: a saved checkpoint to C (with the footprint report) and to ONNX."""

from __future__ import annotations

import json

import export_cases as ec
import numpy as np
import pytest


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):  # type: ignore[no-untyped-def]
    from liquidflow.checkpoint import save_model

    model = ec.make_model("seq-ltc-autoncp")
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_model(model, path)
    return path, model


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    from liquidflow.cli import build_app

    typer_testing = ec.require_module("typer.testing")
    return typer_testing.CliRunner().invoke(build_app(), ["export", *args])


def test_cli_export_c_with_report(checkpoint, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ec.require_tools("gcc", "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm")
    path, _ = checkpoint
    out = tmp_path / "c"
    res = _invoke(
        str(path),
        "--format",
        "c",
        "--target",
        "cortex-m4",
        "--report",
        "--out",
        str(out),
        "--prefix",
        "net",
        "--report-json",
        str(tmp_path / "fp.json"),
    )
    assert res.exit_code == 0, res.output
    assert (out / "net.h").exists() and (out / "net.c").exists()
    assert "instructions per step" in res.output and "flash" in res.output
    fp = json.loads((tmp_path / "fp.json").read_text())
    assert fp["board"] == "mps2-an386" and fp["flash_bytes"] > fp["weight_bytes"] > 0
    assert fp["instructions_per_step"] > 0 and fp["ram_bytes"] >= fp["state_bytes"] > 0


def test_cli_export_onnx(checkpoint, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ec.require_module("onnxruntime")
    from liquidflow.export import reference_outputs, unwrap
    from liquidflow.export._onnx import run_onnx

    path, model = checkpoint
    res = _invoke(str(path), "--format", "onnx", "--mode", "sequence", "--out", str(tmp_path / "m.onnx"))
    assert res.exit_code == 0, res.output
    em = unwrap(model)
    x = np.random.default_rng(0).standard_normal((2, 11, em.input_size)).astype(np.float32)
    dt = np.full((2, 11), 0.3, np.float32)
    _, y = run_onnx(
        tmp_path / "m.onnx", {"inputs": x, "timespans": dt, "initial_state": np.zeros((2, em.state_size), np.float32)}
    )
    import torch

    assert ec.max_err(y, reference_outputs(model, torch.from_numpy(x), torch.from_numpy(dt)).numpy()) <= 1e-4


def test_cli_export_onnx_with_mask(checkpoint, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ec.require_module("onnxruntime")
    import torch

    from liquidflow.export import unwrap
    from liquidflow.export._onnx import run_onnx

    path, model = checkpoint
    res = _invoke(str(path), "--format", "onnx", "--mode", "sequence", "--mask", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    out = tmp_path / "model-sequence-masked.onnx"
    assert "with a mask input" in res.output and out.exists()
    em = unwrap(model)
    x = np.random.default_rng(1).standard_normal((2, 9, em.input_size)).astype(np.float32)
    dt = np.full((2, 9), 0.3, np.float32)
    mask = np.ones((2, 9), bool)
    mask[0, 6:] = False  # a shorter sequence, padded
    mask[1, :2] = False  # one that starts late
    _, y = run_onnx(
        out, {"inputs": x, "timespans": dt, "initial_state": np.zeros((2, em.state_size), np.float32), "mask": mask}
    )
    assert (y[~mask] == 0).all()
    # the model is a regressor on the whole sequence: it reads each sample's last observed step
    with torch.no_grad():
        ref = model(torch.from_numpy(x), torch.from_numpy(dt), torch.from_numpy(mask)).numpy()  # (2, O)
    assert not model.per_step and ec.max_err(y[[0, 1], [5, 8]], ref) <= 1e-5


def test_cli_rejects_bad_arguments(checkpoint, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, _ = checkpoint
    res = _invoke(str(path), "--target", "esp32")
    assert res.exit_code != 0 and "target must be one of" in res.output
    res = _invoke(str(path), "--prefix", "bad name", "--out", str(tmp_path))
    assert res.exit_code != 0 and "prefix must" in res.output
    res = _invoke(str(tmp_path / "missing.pt"))
    assert res.exit_code != 0
    for args in (("--format", "onnx", "--mode", "step"), ("--format", "c")):
        res = _invoke(str(path), *args, "--mask", "--out", str(tmp_path / "x"))
        assert res.exit_code != 0 and "--mask applies to --format onnx --mode sequence" in res.output
