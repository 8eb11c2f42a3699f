"""liquidflow.keras on every installed Keras backend, each in its own process.

A Keras backend is fixed per process, so the checks live in tests/keras/_backend_checks.py and run
once per backend in a subprocess (TensorFlow and PyTorch always; JAX when it is installed). The
parity errors measured there are printed (pytest -s, or -rA shows them for passing tests).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BACKENDS = ["tensorflow", "torch"] + (["jax"] if importlib.util.find_spec("jax") is not None else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_backend(backend: str, tmp_path: Path) -> None:
    parity = tmp_path / "parity.json"
    env = dict(os.environ, KERAS_BACKEND=backend, LIQUIDFLOW_PARITY_JSON=str(parity), TF_CPP_MIN_LOG_LEVEL="3")
    # One thread per process: the suite runs on 2 cores with 2 workers, and thread pools fighting over
    # them make small recurrent ops (milliseconds each, thousands of them) several times slower.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env.setdefault(var, "1")
    env.setdefault("JAX_ENABLE_X64", "1")  # the float64 reference checks need float64 on JAX
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(HERE / "_backend_checks.py"),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--basetemp",
        str(tmp_path / "run"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (
        f"KERAS_BACKEND={backend}: checks failed\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}"
    )
    errors = json.loads(parity.read_text())["max_abs_error"]
    for key in sorted(errors):
        print(f"[{backend}] {key}: {errors[key]:.2e}")
    assert len(errors) >= 2 * 18  # every registered layer, against torch and against the reference
    assert max(v for k, v in errors.items() if "float32" in k) < 1e-5
    assert max(v for k, v in errors.items() if "float64" in k) < (1e-6 if backend == "jax" else 1e-9)


def test_liquidflow_tf_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if TensorFlow were not installed
    monkeypatch.delitem(sys.modules, "liquidflow.tf", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'liquidflow\[tf\]'"):
        importlib.import_module("liquidflow.tf")


def test_docs_show_the_canonical_program_verbatim() -> None:
    src = (HERE / "_backend_checks.py").read_text()
    program = src.split('CANONICAL_PROGRAM = """\\\n')[1].split('"""')[0]
    assert "tf.keras.layers.InputLayer(input_shape=(None, 20))" in program
    assert program in (ROOT / "docs" / "keras.md").read_text()
