"""Generated C, compiled on the host with strict flags, against PyTorch over 1,000 steps of random
irregular dt, for every model of export_cases (each cell type, solver, mode, wiring, mixed memory,
proj_size, the sequence model with normalisation and head)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import export_cases as ec
import numpy as np
import pytest

from liquidflow.export import _toolchain as tc
from liquidflow.export import to_c


def _run_host(cases: dict[str, ec.Case], out: Path, dtype: str) -> dict[str, np.ndarray]:
    ec.require_tools("gcc")
    sources = [to_c(c.model, out, prefix=c.prefix, dtype=dtype).source for c in cases.values()]
    harness = tc.write_harness([tc.HarnessCase(c.prefix, c.x, c.dt) for c in cases.values()], out / "harness.c")
    exe = tc.build_host([harness, *sources], out / "harness", include=[out])
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, check=True)
    return tc.parse_harness_output(res.stdout)


@pytest.fixture(scope="module")
def host_float32(cases, tmp_path_factory):  # type: ignore[no-untyped-def]
    return _run_host(cases, tmp_path_factory.mktemp("c_f32"), "float32")


@pytest.fixture(scope="module")
def host_int8(cases, tmp_path_factory):  # type: ignore[no-untyped-def]
    return _run_host(cases, tmp_path_factory.mktemp("c_int8"), "int8")


@pytest.mark.parametrize("name", ec.NAMES)
def test_host_c_float32_matches_pytorch(name: str, cases, host_float32) -> None:  # type: ignore[no-untyped-def]
    case = cases[name]
    got = host_float32[case.prefix]
    assert got.shape == case.y.shape == (ec.STEPS, case.y.shape[1])
    assert ec.max_err(got, case.y) <= ec.FLOAT_TOL


@pytest.mark.parametrize("name", ec.NAMES)
def test_host_c_int8_within_bound(name: str, cases, host_int8) -> None:  # type: ignore[no-untyped-def]
    case = cases[name]
    got = host_int8[case.prefix]
    assert got.shape == case.y.shape
    err = ec.max_err(got, case.y)
    assert err <= ec.int8_bound(case.y)
    # quantisation must change something, else the int8 path silently ran float weights
    assert err > 1e-6
