"""ONNX step and sequence graphs run by onnxruntime against PyTorch, at batch sizes and lengths
other than those used to export (the export traces batch 2 and one step)."""

from __future__ import annotations

import export_cases as ec
import numpy as np
import pytest
import torch

from liquidflow.export import StepModule, reference_outputs, to_onnx, unwrap
from liquidflow.export._onnx import run_onnx


@pytest.fixture(autouse=True)
def _onnx_modules() -> None:
    ec.require_module("onnx")
    ec.require_module("onnxruntime")


ONNX_MODELS = ("ltc-mixed-proj", "ltc-autoncp-rk4", "cfc-mixed-proj", "wcfc-autoncp", "seq-ltc-autoncp", "cfc-pure")
TOL = 1e-4


def _inputs(f: int, b: int, t: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, f, generator=g), torch.rand(b, t, generator=g) * 0.25 + 0.05


@pytest.mark.parametrize("name", ONNX_MODELS)
def test_onnx_sequence_matches_pytorch_at_any_length(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ec.make_model(name)
    em = unwrap(model)
    path = to_onnx(model, tmp_path / "seq.onnx", mode="sequence")
    for b, t in ((1, 1), (3, 17), (2, 150)):
        x, dt = _inputs(em.input_size, b, t, seed=b * 1000 + t)
        y_ref = reference_outputs(model, x, dt).numpy()
        s0 = np.zeros((b, em.state_size), np.float32)
        final, y = run_onnx(path, {"inputs": x.numpy(), "timespans": dt.numpy(), "initial_state": s0})
        assert y.shape == (b, t, em.output_size)
        assert ec.max_err(y, y_ref) <= TOL
        # the final state is the layer's own final state ([h, c] with mixed memory)
        xn = x
        if em.input_mean is not None:
            xn = (x - em.input_mean) / em.input_std
        with torch.no_grad():
            _, state = em.core._forward(xn, None, dt, None, True, True)
        ref_state = torch.cat(list(state), 1) if isinstance(state, tuple) else state
        assert ec.max_err(final, ref_state.numpy()) <= TOL


@pytest.mark.parametrize("name", ONNX_MODELS[:4])
def test_onnx_step_graph_streams_like_pytorch(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ec.make_model(name)
    em = unwrap(model)
    path = to_onnx(model, tmp_path / "step.onnx", mode="step")
    for b in (1, 4):
        x, dt = _inputs(em.input_size, b, 12, seed=b)
        y_ref = reference_outputs(model, x, dt).numpy()
        state = np.zeros((b, em.state_size), np.float32)
        for t in range(12):
            y, state = run_onnx(path, {"x": x[:, t].numpy(), "dt": dt[:, t].numpy(), "state": state})
            assert ec.max_err(y, y_ref[:, t]) <= TOL


@pytest.mark.parametrize("name", ec.NAMES)
def test_step_module_equals_layer_step(name: str) -> None:
    """The module the ONNX exporter traces is the layer's own streaming step."""
    model = ec.make_model(name)
    em = unwrap(model)
    step = StepModule(em).eval()
    x, dt = _inputs(em.input_size, 3, 4, seed=7)
    y_ref = reference_outputs(model, x, dt)
    state = torch.zeros(3, em.state_size)
    with torch.no_grad():
        for t in range(4):
            y, state = step(x[:, t], dt[:, t], state)
            torch.testing.assert_close(y, y_ref[:, t], rtol=1e-5, atol=1e-6)


def test_onnx_rejects_unknown_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="mode must be one of"):
        to_onnx(ec.make_model("cfc-default"), tmp_path / "m.onnx", mode="loop")


def test_onnx_dynamo_exporter_gives_the_same_graph_results(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ec.require_module("onnxscript")
    model = ec.make_model("cfc-nobackbone")
    em = unwrap(model)
    path = to_onnx(model, tmp_path / "seq.onnx", mode="sequence", exporter="dynamo")
    x, dt = _inputs(em.input_size, 2, 9, seed=3)
    s0 = np.zeros((2, em.state_size), np.float32)
    _, y = run_onnx(path, {"inputs": x.numpy(), "timespans": dt.numpy(), "initial_state": s0})
    assert ec.max_err(y, reference_outputs(model, x, dt).numpy()) <= TOL
    with pytest.raises(ValueError, match="exporter must be one of"):
        to_onnx(model, tmp_path / "m.onnx", exporter="jit")


def test_onnx_export_leaves_the_model_untouched(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ec.make_model("cfc-nobackbone").double().train()
    to_onnx(model, tmp_path / "m.onnx")
    assert model.training and next(model.parameters()).dtype == torch.float64
