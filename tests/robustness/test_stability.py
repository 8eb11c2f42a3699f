"""Long-horizon stability: streaming steps at random dt in [1e-3, 1e2] (log-uniform) stay finite.

PyTorch, float32, every cell (LTC with the default semi-implicit solver, dense and NCP-wired, with and
without mixed memory; CfC in its three modes, dense and wired): the fast sequence path over chunks
with the state carried between them (chunking equals streaming, tests/test_torch_layers.py). CI runs
4,000 steps per cell; the 100,000-step run is marked slow. The exported C (liquidflow.export.to_c,
host gcc) runs the full 100,000 steps in CI: it is fast.

Where a bound is known it is checked too: the semi-implicit LTC update is a convex combination of
the old potential, the leak potentials and the reversal potentials, so |v| never exceeds the largest
of them; CfC's default state is a gated mix of two tanh heads, so |h| <= 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from liquidflow.export import to_c
from liquidflow.torch import LTC, CfC
from liquidflow.wirings import AutoNCP

torch.set_num_threads(1)
DT_MIN, DT_MAX = 1e-3, 1e2


def make(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return {
        "ltc": lambda: LTC(3, 8),
        "ltc_ncp": lambda: LTC(3, AutoNCP(10, 2)),
        "ltc_mixed": lambda: LTC(3, 8, mixed_memory=True),
        "cfc": lambda: CfC(3, 8, backbone_units=16),
        "cfc_no_gate": lambda: CfC(3, 8, backbone_units=16, mode="no_gate"),
        "cfc_pure": lambda: CfC(3, 8, backbone_units=16, mode="pure"),
        "cfc_wired": lambda: CfC(3, AutoNCP(10, 2)),
        "cfc_wired_mixed": lambda: CfC(3, AutoNCP(10, 2), mixed_memory=True),
    }[name]()


NAMES = ["ltc", "ltc_ncp", "ltc_mixed", "cfc", "cfc_no_gate", "cfc_pure", "cfc_wired", "cfc_wired_mixed"]


def state_bound(layer: torch.nn.Module) -> float | None:
    """A proven bound on |state|, or None where the cell has none we can state simply."""
    if isinstance(layer, LTC):
        p = {k: v.detach() for k, v in layer.cell.effective_parameters().items()}
        b = max(float(p["vleak"].abs().max()), float(p["erev"].abs().max()), float(p["sensory_erev"].abs().max()))
        return max(b, 1.0) if layer.mixed_memory else b  # the LSTM hands the cell o*tanh(c), |.| <= 1
    if isinstance(layer, CfC) and layer.mode == "default":
        return 1.0
    return None


def stream(layer: torch.nn.Module, steps: int, batch: int = 2, chunk: int = 1000, seed: int = 0) -> float:
    """Run ``steps`` steps in chunks with the state carried; return max |state| seen; fail on non-finite."""
    g = torch.Generator().manual_seed(seed)
    h = None
    worst = 0.0
    with torch.no_grad():
        for c in range(0, steps, chunk):
            n = min(chunk, steps - c)
            x = torch.randn(batch, n, 3, generator=g) * 3
            dt = torch.exp(torch.empty(batch, n).uniform_(np.log(DT_MIN), np.log(DT_MAX), generator=g))
            y, h = layer(x, hx=h, timespans=dt)
            hs = h if isinstance(h, torch.Tensor) else h[0]
            assert torch.isfinite(y).all() and torch.isfinite(hs).all(), f"non-finite after step {c + n}"
            worst = max(worst, float(hs.abs().max()))
    return worst


@pytest.mark.parametrize("name", NAMES)
def test_torch_stream_stays_finite(name: str) -> None:
    layer = make(name)
    worst = stream(layer, 4_000)
    bound = state_bound(layer)
    if bound is not None:
        assert worst <= bound * (1 + 1e-5)
    assert worst > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_torch_stream_100k_steps(name: str) -> None:
    layer = make(name)
    worst = stream(layer, 100_000, chunk=5000)
    bound = state_bound(layer)
    if bound is not None:
        assert worst <= bound * (1 + 1e-5)


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun", "rk4"])
def test_explicit_solvers_stable_for_small_dt_only(solver: str) -> None:
    """Explicit solvers are conditionally stable (documented): finite for dt <= 0.1 with 6 unfolds here,
    but at dt = 100 they diverge, which the semi-implicit default never does."""
    torch.manual_seed(0)
    layer = LTC(3, 8, solver=solver)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 400, 3, generator=g)
    dt = torch.exp(torch.empty(2, 400).uniform_(np.log(DT_MIN), np.log(0.1), generator=g))
    with torch.no_grad():
        y, h = layer(x, timespans=dt)
        assert torch.isfinite(h).all() and torch.isfinite(y).all()
        y_big, _ = layer(x[:, :20], timespans=100.0)
    assert not torch.isfinite(y_big).all()


DRIVER = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include "lf.h"

static uint64_t s = 88172645463325252ULL;
static double uniform(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (double)(s >> 11) / 9007199254740992.0; }

int main(int argc, char **argv)
{
    long steps = 100000, k;
    int i;
    float x[LF_INPUT_SIZE], y[LF_OUTPUT_SIZE], worst = 0.0f;
    lf_state_t st;
    (void)argc; (void)argv;
    lf_init(&st);
    for (k = 0; k < steps; ++k) {
        float dt = (float)exp(log(1e-3) + uniform() * (log(1e2) - log(1e-3)));
        for (i = 0; i < LF_INPUT_SIZE; ++i) x[i] = (float)(6.0 * uniform() - 3.0);
        lf_step(&st, x, dt, y);
        for (i = 0; i < LF_OUTPUT_SIZE; ++i) if (!isfinite(y[i])) { printf("NONFINITE y %ld\n", k); return 1; }
        for (i = 0; i < LF_STATE_SIZE; ++i) {
            if (!isfinite(st.s[i])) { printf("NONFINITE state %ld\n", k); return 1; }
            if (fabsf(st.s[i]) > worst) worst = fabsf(st.s[i]);
        }
    }
    printf("OK %ld %.9g\n", steps, (double)worst);
    return 0;
}
"""


def require_gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("needs gcc (apt: gcc)")
        pytest.skip("needs gcc (apt: gcc)")
    return gcc


@pytest.mark.parametrize("name", [n for n in NAMES if not n.endswith("mixed")] + ["ltc_mixed"])
def test_exported_c_100k_steps_stay_finite(name: str, tmp_path: Path) -> None:
    gcc = require_gcc()
    layer = make(name)
    to_c(layer, tmp_path, prefix="lf")
    (tmp_path / "main.c").write_text(DRIVER)
    exe = tmp_path / "stream"
    cmd = [gcc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), "main.c", "lf.c", "-lm"]
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, check=False).stdout.split()
    assert out[:2] == ["OK", "100000"], out
    worst = float(out[2])
    bound = state_bound(layer)
    if bound is not None and not layer.mixed_memory:  # the C state also holds the LSTM's unbounded c
        assert worst <= bound * (1 + 1e-5)
