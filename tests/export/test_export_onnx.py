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


# ---------------------------------------------------------------- the sequence graph's mask input
MASKED_MODELS = (*ONNX_MODELS, "seq-cfc-head")
MASK_TOL = 1e-5


def _mask(b: int, t: int, seed: int) -> torch.Tensor:
    """Random gaps, and per row (cycling): a padded tail, masked leading steps, gaps only, all masked."""
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(b, t, generator=g) > 0.3
    for i in range(b):
        k = int(torch.randint(0, t, (1,), generator=g))  # 0 .. t-1
        if i % 4 == 0:
            m[i, k + 1 :] = False  # a sequence of k + 1 steps, padded to t
            m[i, k] = True
        elif i % 4 == 1:
            m[i, : max(k, 1)] = False  # starts late (all masked when t == 1)
        elif i % 4 == 3:
            m[i] = False
    return m


def _masked_reference(
    model: torch.nn.Module, x: torch.Tensor, dt: torch.Tensor, m: torch.Tensor, s0: torch.Tensor, last: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The PyTorch layer run with ``mask=m`` from state s0 (normalisation and head as the model has them):
    every step's outputs (zero where masked), or with ``last`` the layer's return_sequences=False output;
    and the final state, [h, c] concatenated with mixed memory."""
    em = unwrap(model)
    if em.input_mean is not None:
        x = (x - em.input_mean) / em.input_std
    n = em.hidden_size
    hx = s0 if em.core.lstm is None else (s0[:, :n], s0[:, n:])
    with torch.no_grad():
        y, state = em.core._forward(x, hx, dt, m, not last, True)
        if em.head is not None:
            y = em.head(y)
            if not last:
                y = y * m.unsqueeze(-1)  # as SequenceModel does per step
    return y, (torch.cat(list(state), 1) if isinstance(state, tuple) else state)


@pytest.mark.parametrize("name", MASKED_MODELS)
def test_onnx_masked_sequence_matches_pytorch_mask(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ec.make_model(name)
    em = unwrap(model)
    path = to_onnx(model, tmp_path / "seq.onnx", mode="sequence", mask=True)
    for b, t in ((1, 1), (2, 1), (3, 17), (4, 60)):
        x, dt = _inputs(em.input_size, b, t, seed=b * 100 + t)
        m = _mask(b, t, seed=b * 10 + t)
        s0 = 0.3 * torch.randn(b, em.state_size, generator=torch.Generator().manual_seed(t))
        # padding is never read: NaN inputs and non-positive timespans at masked steps
        x[~m] = float("nan")
        dt[~m] = torch.tensor([0.0, -1.0, float("nan")]).repeat(int((~m).sum()) // 3 + 1)[: int((~m).sum())]
        y_ref, s_ref = _masked_reference(model, x, dt, m, s0)
        feeds = {"inputs": x.numpy(), "timespans": dt.numpy(), "initial_state": s0.numpy(), "mask": m.numpy()}
        final, y = run_onnx(path, feeds)
        assert y.shape == (b, t, em.output_size) and final.shape == (b, em.state_size)
        assert ec.max_err(y, y_ref.numpy()) <= MASK_TOL, (b, t)
        assert ec.max_err(final, s_ref.numpy()) <= MASK_TOL, (b, t)
        mn = m.numpy()
        assert (y[~mn] == 0).all()
        # a sample with no observed step keeps its initial state, bit for bit
        none = ~mn.any(1)
        np.testing.assert_array_equal(final[none], s0.numpy()[none])
        # a sequence classifier reads each sample's last observed step: the layer's return_sequences=False
        seen = mn.any(1)
        if seen.any():
            last = t - 1 - np.argmax(mn[:, ::-1], axis=1)
            y_last, _ = _masked_reference(model, x, dt, m, s0, last=True)
            rows = np.nonzero(seen)[0]
            assert ec.max_err(y[rows, last[rows]], y_last.numpy()[rows]) <= MASK_TOL, (b, t)


def test_onnx_mask_all_true_is_the_unmasked_graph(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import onnx

    model = ec.make_model("wcfc-autoncp")
    em = unwrap(model)
    plain = to_onnx(model, tmp_path / "plain.onnx", mode="sequence")
    masked = to_onnx(model, tmp_path / "masked.onnx", mode="sequence", mask=True)
    inputs = [(i.name, i.type.tensor_type.elem_type) for i in onnx.load(str(plain)).graph.input]
    assert inputs == [(n, onnx.TensorProto.FLOAT) for n in ("initial_state", "inputs", "timespans")]
    m_inputs = [(i.name, i.type.tensor_type.elem_type) for i in onnx.load(str(masked)).graph.input]
    assert m_inputs == [*inputs, ("mask", onnx.TensorProto.BOOL)]
    x, dt = _inputs(em.input_size, 3, 13, seed=5)
    feeds = {"inputs": x.numpy(), "timespans": dt.numpy(), "initial_state": np.zeros((3, em.state_size), np.float32)}
    final, y = run_onnx(plain, feeds)
    final_m, y_m = run_onnx(masked, {**feeds, "mask": np.ones((3, 13), bool)})
    assert ec.max_err(y_m, y) <= 1e-6 and ec.max_err(final_m, final) <= 1e-6
    assert ec.max_err(y, reference_outputs(model, x, dt).numpy()) <= TOL


def test_onnx_mask_rejects_bad_arguments(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ec.make_model("cfc-default")
    with pytest.raises(ValueError, match=r"mask=True applies to mode='sequence' only .*got mode='step'"):
        to_onnx(model, tmp_path / "m.onnx", mode="step", mask=True)
    with pytest.raises(TypeError, match="mask must be True or False; got 'yes'"):
        to_onnx(model, tmp_path / "m.onnx", mode="sequence", mask="yes")  # type: ignore[arg-type]
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_dynamo_exporter_gives_the_same_graph_results(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ec.require_module("onnxscript")
    model = ec.make_model("cfc-nobackbone")
    em = unwrap(model)
    path = to_onnx(model, tmp_path / "seq.onnx", mode="sequence", exporter="dynamo")
    x, dt = _inputs(em.input_size, 2, 9, seed=3)
    s0 = np.zeros((2, em.state_size), np.float32)
    _, y = run_onnx(path, {"inputs": x.numpy(), "timespans": dt.numpy(), "initial_state": s0})
    assert ec.max_err(y, reference_outputs(model, x, dt).numpy()) <= TOL
    # the mask's nodes wrap the dynamo exporter's step graph too
    path = to_onnx(model, tmp_path / "seq-masked.onnx", mode="sequence", mask=True, exporter="dynamo")
    m = _mask(2, 9, seed=4)
    final, y = run_onnx(path, {"inputs": x.numpy(), "timespans": dt.numpy(), "initial_state": s0, "mask": m.numpy()})
    y_ref, s_ref = _masked_reference(model, x, dt, m, torch.from_numpy(s0))
    assert ec.max_err(y, y_ref.numpy()) <= MASK_TOL and ec.max_err(final, s_ref.numpy()) <= MASK_TOL
    with pytest.raises(ValueError, match="exporter must be one of"):
        to_onnx(model, tmp_path / "m.onnx", exporter="jit")


def test_onnx_export_leaves_the_model_untouched(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ec.make_model("cfc-nobackbone").double().train()
    to_onnx(model, tmp_path / "m.onnx")
    assert model.training and next(model.parameters()).dtype == torch.float64
