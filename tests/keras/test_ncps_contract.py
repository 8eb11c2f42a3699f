"""The ncps.keras drop-in contract of liquidflow.keras (issue 15) on every installed Keras backend.

The checks live in tests/keras/_ncps_contract_checks.py and run once per backend in a subprocess
(a Keras backend is fixed per process), as tests/keras/test_keras.py does for _backend_checks.py.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BACKENDS = ["tensorflow", "torch"] + (["jax"] if importlib.util.find_spec("jax") is not None else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_ncps_contract(backend: str, tmp_path: Path) -> None:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env.setdefault(var, "1")
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [sys.executable, "-m", "pytest", str(HERE / "_ncps_contract_checks.py"), "-q", "-p", "no:cacheprovider",
           "-p", "no:randomly", "--basetemp", str(tmp_path / "run")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (
        f"KERAS_BACKEND={backend}: checks failed\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}"
    )
    print(proc.stdout.strip().splitlines()[-1])
