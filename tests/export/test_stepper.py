"""CompiledStepper: the generated C loaded with ctypes gives the PyTorch model's outputs step by step."""

from __future__ import annotations

from pathlib import Path

import export_cases as ec
import numpy as np
import pytest
import torch

from liquidflow.export import CompiledStepper, reference_outputs, run_c, unwrap

STEPS = 300
# layers compared with their own ``step`` too; sequence models (no ``step``) with the sequence code only
MODELS = ("ltc-ncp32", "cfc-default", "wcfc-ncp-no_gate", "cfc-mixed-proj", "ltc-mixed-proj", "seq-cfc-head")


@pytest.fixture(autouse=True)
def _needs_gcc() -> None:
    ec.require_tools("gcc")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stepper-cache")


def _inputs(model: torch.nn.Module, steps: int = STEPS, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs and irregular elapsed times in [0.05, 2)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, unwrap(model).input_size)).astype(np.float32)
    dt = (0.05 + 1.95 * rng.random(steps)).astype(np.float32)
    return x, dt


@pytest.mark.parametrize("name", MODELS)
def test_step_matches_pytorch(name: str, cache: Path) -> None:
    model = ec.make_model(name)
    x, dt = _inputs(model)
    stepper = CompiledStepper(model, cache_dir=cache)
    got = np.stack([stepper.step(x[t], float(dt[t])) for t in range(STEPS)])
    assert got.shape == (STEPS, unwrap(model).output_size) and got.dtype == np.float32
    want = reference_outputs(model, torch.from_numpy(x)[None], torch.from_numpy(dt)[None])[0].numpy()
    assert np.abs(want).max() > 1e-3  # the comparison is not between zeros
    assert ec.max_err(got, want) <= ec.FLOAT_TOL
    if hasattr(model, "step"):  # the layer's own streaming step
        h = None
        with torch.no_grad():
            steps = []
            for t in range(STEPS):
                y, h = model.step(torch.from_numpy(x[t : t + 1]), h, float(dt[t]))
                steps.append(y[0].numpy())
        assert ec.max_err(got, np.stack(steps)) <= ec.FLOAT_TOL
        state = h if isinstance(h, torch.Tensor) else torch.cat(list(h), dim=1)
        assert ec.max_err(stepper.state, state[0].numpy()) <= ec.FLOAT_TOL


def test_run_equals_repeated_step(cache: Path) -> None:
    model = ec.make_model("wcfc-mixed-proj")
    x, dt = _inputs(model, seed=2)
    a = CompiledStepper(model, cache_dir=cache)
    stepped = np.stack([a.step(x[t], dt[t]) for t in range(STEPS)])
    b = CompiledStepper(model, cache_dir=cache)
    ran = b.run(x[:100], dt[:100])
    ran = np.concatenate([ran, b.run(x[100:], dt[100:])])  # run continues from the state it left
    np.testing.assert_array_equal(ran, stepped)
    np.testing.assert_array_equal(a.state, b.state)
    # a float dt is every step's dt
    c = CompiledStepper(model, cache_dir=cache)
    d = CompiledStepper(model, cache_dir=cache)
    c.reset()
    np.testing.assert_array_equal(c.run(x[:20], 0.5), np.stack([d.step(x[t], 0.5) for t in range(20)]))
    assert c.run(np.zeros((0, a.input_size), np.float32), 1.0).shape == (0, a.output_size)


def test_states_are_isolated(cache: Path) -> None:
    model = ec.make_model("ltc-ncp32")
    x, dt = _inputs(model, steps=50, seed=3)
    x2, dt2 = _inputs(model, steps=50, seed=4)
    solo1 = CompiledStepper(model, cache_dir=cache).run(x, dt)
    solo2 = CompiledStepper(model, cache_dir=cache).run(x2, dt2)
    a = CompiledStepper(model, cache_dir=cache)
    b = CompiledStepper(model, cache_dir=cache)
    assert a.library_path == b.library_path  # one cached library, two states
    s1, s2 = a.init_state(), a.init_state()
    ya, yb, y1, y2 = [], [], [], []
    for t in range(50):  # interleaved
        ya.append(a.step(x[t], dt[t]))
        y1.append(a.step(x[t], dt[t], state=s1))
        yb.append(b.step(x2[t], dt2[t]))
        y2.append(a.step(x2[t], dt2[t], state=s2))
    for got, want in ((ya, solo1), (y1, solo1), (yb, solo2), (y2, solo2)):
        np.testing.assert_array_equal(np.stack(got), want)
    # returned outputs are copies: later steps do not change them
    first = ya[0].copy()
    a.step(x[0], 1.0)
    np.testing.assert_array_equal(ya[0], first)
    # reset starts over
    a.reset()
    np.testing.assert_array_equal(a.run(x, dt), solo1)


def test_int8_matches_run_c_and_stays_close(cache: Path) -> None:
    model = ec.make_model("cfc-default")
    x, dt = _inputs(model, steps=100, seed=5)
    stepper = CompiledStepper(model, dtype="int8", cache_dir=cache)
    got = np.stack([stepper.step(x[t], dt[t]) for t in range(100)])
    np.testing.assert_allclose(got, run_c(model, x, dt, dtype="int8"), rtol=0, atol=1e-6)
    want = reference_outputs(model, torch.from_numpy(x)[None], torch.from_numpy(dt)[None])[0].numpy()
    assert ec.max_err(got, want) <= ec.INT8_ABS_TOL + ec.INT8_REL_TOL * float(np.abs(want).max())
    assert ec.max_err(got, want) > 0  # int8 weights really are used


def test_cache_reuses_library(tmp_path: Path) -> None:
    model = ec.make_model("cfc-no_gate")
    a = CompiledStepper(model, cache_dir=tmp_path / "c")
    mtime = a.library_path.stat().st_mtime_ns
    b = CompiledStepper(model, cache_dir=tmp_path / "c")
    assert b.library_path == a.library_path and b.library_path.stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "c").iterdir()] == [a.library_path.name]  # no temporary leftovers
    other = ec.make_model("cfc-no_gate", seed=1)  # other weights: another library
    assert CompiledStepper(other, cache_dir=tmp_path / "c").library_path != a.library_path
    assert CompiledStepper(model, dtype="int8", cache_dir=tmp_path / "c").library_path != a.library_path
    assert "CompiledStepper(CfC" in repr(a)


def test_input_validation(cache: Path) -> None:
    model = ec.make_model("cfc-default")
    s = CompiledStepper(model, cache_dir=cache)
    F = s.input_size
    x = np.zeros(F, np.float32)
    with pytest.raises(ValueError, match=rf"x must have shape \({F},\); got \(1, {F}\)"):
        s.step(x[None], 1.0)
    with pytest.raises(ValueError, match=r"x must have shape"):
        s.step(np.zeros(F + 1), 1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf"), 1e-50, 1e39):
        with pytest.raises(ValueError, match=r"dt must be finite and > 0"):
            s.step(x, bad)
    with pytest.raises(ValueError, match=r"state must be a writeable contiguous float32 numpy array"):
        s.step(x, 1.0, state=np.zeros(s.state_size, np.float64))
    with pytest.raises(ValueError, match=r"state must be"):
        s.step(x, 1.0, state=np.zeros(s.state_size + 1, np.float32))
    with pytest.raises(ValueError, match=rf"x must have shape \(T, {F}\)"):
        s.run(np.zeros((3, F + 1)), 1.0)
    with pytest.raises(ValueError, match=r"dt must be a float or shape \(3,\)"):
        s.run(np.zeros((3, F)), np.ones(4))
    with pytest.raises(ValueError, match=r"dt must be finite and > 0 \(in float32\) at every step; got -1"):
        s.run(np.zeros((3, F)), np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"dtype must be one of"):
        CompiledStepper(model, dtype="float16", cache_dir=cache)
    # lists and tensors are accepted as x
    np.testing.assert_array_equal(s.step([0.0] * F, 1.0, s.init_state()), s.step(torch.zeros(F), 1.0, s.init_state()))


def test_missing_compiler_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ec.make_model("cfc-default")
    with pytest.raises(RuntimeError, match=r"'no-such-cc' was not found on PATH; install it"):
        CompiledStepper(model, compiler="no-such-cc")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match=r"needs a C compiler: 'gcc' was not found on PATH.*apt-get install gcc"):
        CompiledStepper(model)


@pytest.mark.parametrize("name", ["ltc-fc", "cfc-default", "seq-wcfc-head"])
def test_fast_math_stays_within_tolerance(name: str, cache: Path) -> None:
    model = ec.make_model(name)
    x, dt = _inputs(model, seed=6)
    fast = CompiledStepper(model, cache_dir=cache, fast_math=True)
    assert fast.library_path != CompiledStepper(model, cache_dir=cache).library_path
    got = np.stack([fast.step(x[t], dt[t]) for t in range(STEPS)])
    want = reference_outputs(model, torch.from_numpy(x)[None], torch.from_numpy(dt)[None])[0].numpy()
    assert ec.max_err(got, want) <= ec.FLOAT_TOL
    np.testing.assert_array_equal(fast.run(x, dt, fast.init_state()), got)
    # loading a -ffast-math library must not switch the process to flush-to-zero (crtfastmath.o)
    tiny = np.float32(1e-39) * np.float32(0.5)
    assert tiny > 0
