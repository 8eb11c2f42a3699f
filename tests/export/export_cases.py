"""Models every export test runs: each cell type, solver, mode, wiring, mixed memory, proj_size and
the sequence model (normalisation + head). Built on the registry in tests/helpers.py, so a layer
added there is exported and checked here too."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import helpers
from liquidflow.export import reference_outputs
from liquidflow.torch import LTC, CfC
from liquidflow.wirings import AutoNCP

STEPS = 1000
# float32 C vs PyTorch over STEPS steps (issue 6)
FLOAT_TOL = 1e-4
# int8 weights (per output channel), float activations, vs the float32 PyTorch model over STEPS steps
# (docs/export.md): max abs error <= INT8_ABS_TOL + INT8_REL_TOL * max |y|
INT8_ABS_TOL = 0.02
INT8_REL_TOL = 0.02


def _perturb(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Move parameters off their symmetric initial values, so every term of the math matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("bias", "input_b", "output_b", "w_tau")) or "vleak" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
            if name.endswith(("input_w", "output_w", ".A")):
                p.mul_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
    return model.float().eval()


def _sequence_model(kind: str, seed: int, **kw: object) -> torch.nn.Module:
    from liquidflow.training import build_model

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(5, generator=g)
    std = torch.rand(5, generator=g) + 0.5
    return build_model(
        kind, input_size=5, output_size=3, units=12, task="regression", input_mean=mean, input_std=std, seed=seed, **kw
    )  # type: ignore[arg-type]


def _extra() -> dict[str, Callable[[], torch.nn.Module]]:
    return {
        "ltc-ncp32": lambda: LTC(20, AutoNCP(32, 10)),
        "cfc-tanh": lambda: CfC(4, 5, activation="tanh", backbone_units=6),
        "cfc-gelu": lambda: CfC(4, 5, activation="gelu", backbone_units=6, mode="no_gate"),
        "cfc-silu-pure": lambda: CfC(4, 5, activation="silu", backbone_units=6, mode="pure"),
        "wcfc-mixed-proj": lambda: CfC(4, AutoNCP(9, 2, seed=3), mixed_memory=True, proj_size=3),
        "seq-ltc-autoncp": lambda: _sequence_model("ltc", 3, wiring="autoncp"),
        "seq-cfc-head": lambda: _sequence_model("cfc", 4, backbone_units=8, mixed_memory=True),
        "seq-wcfc-head": lambda: _sequence_model("cfc", 5, wiring="random"),
    }


NAMES = sorted(helpers.LAYERS) + sorted(_extra())
EXPLICIT = ("euler", "midpoint", "heun", "rk4")


def make_model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    extra = _extra()
    model = extra[name]() if name in extra else helpers.LAYERS[name]()
    return _perturb(model, seed + 7)


def _explicit(model: torch.nn.Module) -> bool:
    core = getattr(model, "core", model)
    solver = getattr(core.cell, "solver", None)
    return solver is not None and solver.name in EXPLICIT


def c_prefix(name: str) -> str:
    return "m_" + name.replace("-", "_")


@dataclass
class Case:
    name: str
    model: torch.nn.Module
    x: np.ndarray  # (T, F) float32
    dt: np.ndarray  # (T,) float32
    y: np.ndarray  # (T, O) PyTorch outputs

    @property
    def prefix(self) -> str:
        return c_prefix(self.name)


def make_case(name: str, steps: int = STEPS, seed: int = 0) -> Case:
    """A model, a random input sequence with random irregular dt, and the PyTorch outputs."""
    model = make_model(name, seed)
    f = int(getattr(model, "core", model).input_size)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(1, steps, f, generator=g)
    # explicit solvers are only conditionally stable: keep their sub-steps small
    hi, lo = (0.3, 0.02) if _explicit(model) else (1.5, 0.05)
    dt = torch.rand(1, steps, generator=g) * (hi - lo) + lo
    y = reference_outputs(model, x, dt)[0].numpy()
    assert np.isfinite(y).all(), f"{name}: PyTorch outputs are not finite"
    return Case(name, model, x[0].numpy(), dt[0].numpy(), y)


def require_module(name: str):  # type: ignore[no-untyped-def]
    """Import an optional module; fail when CI=true (the dev install has it), skip otherwise."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        msg = f"needs the Python module {name} (pip install 'liquidflow[export,cli]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def require_tools(*tools: str) -> None:
    """Fail when CI=true and a tool is missing (CI must run these tests); skip with a reason otherwise."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    msg = f"needs {', '.join(missing)} (apt: gcc gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def max_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def int8_bound(y: np.ndarray) -> float:
    return INT8_ABS_TOL + INT8_REL_TOL * float(np.abs(y).max())


REPORT_PREFIX = "export-insns-"


def print_instruction_summary(terminalreporter, config) -> None:  # type: ignore[no-untyped-def]
    """Print the instruction counts the QEMU tests left in the run's temporary folder (once per run).

    Called from tests/export/conftest.py; a root conftest may call it too (``pytest -n 2`` from the
    repository root does not load tests/export/conftest.py in the main process).
    """
    import json

    if getattr(config, "_lf_export_summary_done", False):
        return
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        root = factory.getbasetemp()
    except OSError:
        return
    found = {
        p.stem[len(REPORT_PREFIX) :]: json.loads(p.read_text()) for p in sorted(root.glob(f"{REPORT_PREFIX}*.json"))
    }
    if not found:
        return
    config._lf_export_summary_done = True
    terminalreporter.section("liquidflow export: instructions per step on QEMU (TCG plugin count)")
    names = sorted({n for rows in found.values() for n in rows})
    boards = list(found)
    terminalreporter.write_line(f"{'model':44s}" + "".join(f"{b:>14s}" for b in boards))
    for n in names:
        cells = "".join(f"{found[b][n]:14,.0f}" if n in found[b] else f"{'-':>14s}" for b in boards)
        terminalreporter.write_line(f"{n:44s}{cells}")
