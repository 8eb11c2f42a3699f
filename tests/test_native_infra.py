"""The native-kernel build machinery (liquidflow._native): compile, cache, switches, failures."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from liquidflow import _native

IN_CI = os.environ.get("CI", "").lower() == "true"


def _require_native() -> None:
    if _native.load("ltc") is None:
        reason = f"native kernels unavailable: {_native.status()['ltc']}"
        if IN_CI:
            pytest.fail(reason)  # users depend on the fast path: CI must have a C compiler
        pytest.skip(reason)


def test_every_library_builds_and_loads() -> None:
    _require_native()
    st = _native.status()
    assert set(st) == set(_native.SOURCES)
    for name, s in st.items():
        assert s.startswith("ok: "), (name, s)
        assert os.path.exists(s[4:])


def test_cache_is_reused(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_native()
    monkeypatch.setenv("LIQUIDFLOW_CACHE", str(tmp_path))
    first = _native.build("step")
    assert str(first).startswith(str(tmp_path))
    mtime = first.stat().st_mtime_ns
    assert _native.build("step") == first  # no rebuild
    assert first.stat().st_mtime_ns == mtime
    assert _native.build("step", force=True) == first  # forced rebuild, same place


def test_switches_turn_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with _native.use_native(False):
        assert not _native.enabled()
        assert _native.load("ltc") is None
        assert all(s.startswith("disabled") for s in _native.status().values())
    code = "from liquidflow import _native; print(_native.enabled(), _native.load('cfc'))"
    for flag, expect in (("0", "False None"), ("off", "False None")):
        env = dict(os.environ, LIQUIDFLOW_NATIVE=flag)  # read once when the module is imported
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert res.stdout.strip() == expect


def test_missing_compiler_is_a_clear_error(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQUIDFLOW_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH either
    with pytest.raises(RuntimeError, match="no C compiler found"):
        _native.build("ltc")


def test_unknown_library_name() -> None:
    with pytest.raises(ValueError, match="unknown native library"):
        _native.build("nope")


def test_compiler_errors_are_reported(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_native()
    fake = tmp_path / "badcc"  # type: ignore[operator]
    fake.write_text("#!/bin/sh\necho 'broken compiler says no' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("LIQUIDFLOW_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(fake))
    with pytest.raises(RuntimeError, match="broken compiler says no"):
        _native.build("cfc")


def test_fallback_without_native_gives_the_same_numbers() -> None:
    """A process with LIQUIDFLOW_NATIVE=0 (torch kernels) and one with native kernels agree."""
    code = (
        "import torch, liquidflow.torch as lt\n"
        "torch.manual_seed(0); m = lt.CfC(5, 8).double(); x = torch.randn(3, 7, 5, dtype=torch.float64)\n"
        "y, h = m(x); (y.square().mean()).backward()\n"
        "print(repr(float(y.sum())), repr(float(m.rnn_cell.backbone[0].weight.grad.sum())))\n"
    )
    outs = []
    for flag in ("0", "1"):
        env = dict(os.environ, LIQUIDFLOW_NATIVE=flag)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        outs.append([float(v) for v in res.stdout.split()])
    assert outs[0] == pytest.approx(outs[1], rel=1e-10, abs=1e-12)


def test_module_main_builds(tmp_path: pytest.TempPathFactory) -> None:
    _require_native()
    env = dict(os.environ, LIQUIDFLOW_CACHE=str(tmp_path))
    res = subprocess.run([sys.executable, "-m", "liquidflow._native"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    for name in _native.SOURCES:
        assert f"native kernel {name}: {tmp_path}" in res.stdout
