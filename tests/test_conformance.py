"""One conformance test: every layer configuration x every path that runs it x float32/float64 x
{per-sample dt, mask, initial state, last output only}, values against the numpy reference (tests/reference.py) and
gradients against the step loop.

The paths are those of ``liquidflow.torch._dispatch`` ("native" C kernels, "fused" torch kernels,
"loop"), forced one at a time with ``use_path``; which ones apply to a configuration comes from
``explain``, so a new executor or registry entry is tested the moment it exists. The loop's own
gradients are checked by gradcheck in tests/test_torch_layers.py; path-specific edge cases (double
backward, thread splits, buffer reuse, strided inputs) stay beside their kernels in test_native_*.py
and test_fastpaths.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import ALL_LAYERS, INPUT_SIZE, make_layer, random_batch, reference_run, reference_step
from liquidflow import _ops
from liquidflow.torch import _dispatch

DTYPES = {"f64": torch.float64, "f32": torch.float32}
# values against the float64 reference; gradients against the loop in the same dtype (scaled by max(1, |ref|))
VALUE_TOL = {torch.float64: 1e-10, torch.float32: 2e-5}
GRAD_TOL = {torch.float64: 1e-10, torch.float32: 5e-5}
CASES = ("dt", "mask", "h0", "last")  # last: return_sequences=False, each sample's last observed step
B, T = 3, 5


def _paths(layer: torch.nn.Module, step: bool = False) -> list[str]:
    x = torch.zeros((2, INPUT_SIZE) if step else (2, 3, INPUT_SIZE), dtype=next(layer.parameters()).dtype)
    with torch.no_grad() if step else torch.enable_grad():
        choice = _dispatch.explain(layer, x, step=step)
    runs = {None, _dispatch._NATIVE_RUNS}  # "fused" stands behind "native" on CPU but can be forced
    return [p for p in _dispatch.PATHS if choice.reasons.get(p, None) in runs or p == choice.path]


def make(name: str, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    layer = make_layer(name, dtype)
    # dropout draws random masks in training mode; the reference is the eval-mode cell
    return layer.eval() if getattr(layer.rnn_cell, "backbone_dropout", 0.0) else layer


def _applicable() -> list[tuple[str, str]]:
    return [(name, path) for name in sorted(ALL_LAYERS) for path in _paths(make(name))]


def _close(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, tol: float, what: str) -> None:
    a = np.asarray(a.detach() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
    err = float(np.abs(a - b).max()) if a.size else 0.0
    assert err <= tol * scale, f"{what}: max abs difference {err:.3g} (tolerance {tol * scale:.3g})"


def _inputs(layer: torch.nn.Module, case: str, dtype: torch.dtype):
    x, dt, mask = random_batch(B, T, dtype, seed=11, masked=case in ("mask", "last"))
    h0 = None
    if case == "h0":
        g = torch.Generator().manual_seed(5)
        h = 0.3 * torch.randn(B, layer.state_size, generator=g, dtype=dtype)
        h0 = (h, 0.2 * torch.randn(B, layer.state_size, generator=g, dtype=dtype)) if layer.lstm is not None else h
        dt = 0.7  # one elapsed time for every step and sample (the CfC kernels' merged-gate case)
    return x, dt, mask, h0


def _run(layer: torch.nn.Module, path: str, x, dt, mask, h0):
    params = [p for p in layer.parameters() if p.requires_grad]
    xx = x.clone().requires_grad_()
    hh = None if h0 is None else tuple(h.clone().requires_grad_() for h in (h0 if isinstance(h0, tuple) else (h0,)))
    with _dispatch.use_path(path):
        out, h = layer(xx, None if hh is None else (hh if len(hh) > 1 else hh[0]), timespans=dt, mask=mask)
    state = h if isinstance(h, tuple) else (h,)
    g = torch.Generator().manual_seed(7)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    for s in state:
        loss = loss + (s * torch.randn(s.shape, generator=g, dtype=s.dtype)).sum()
    wrt = [*params, xx, *(hh or ())]
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    grads = [torch.zeros_like(w) if gr is None else gr for gr, w in zip(grads, wrt)]
    return out.detach(), tuple(s.detach() for s in state), grads


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", list(DTYPES.values()), ids=list(DTYPES))
@pytest.mark.parametrize(("name", "path"), _applicable())
def test_sequence_paths_match_reference(name: str, path: str, dtype: torch.dtype, case: str) -> None:
    layer = make(name, dtype)
    layer.return_sequences = case != "last"
    x, dt, mask, h0 = _inputs(layer, case, dtype)
    out, state, grads = _run(layer, path, x, dt, mask, h0)
    dt_ref = torch.full((B, T), float(dt), dtype=torch.float64) if isinstance(dt, float) else dt.double()
    y_ref, h_ref, c_ref = reference_run(layer, x.double(), dt_ref, mask, h0, layer.return_sequences)
    _close(out, y_ref, VALUE_TOL[dtype], f"{name} on {path}: output")
    _close(state[0], h_ref, VALUE_TOL[dtype], f"{name} on {path}: final state")
    if c_ref is not None:
        _close(state[1], c_ref, VALUE_TOL[dtype], f"{name} on {path}: final LSTM cell state")
    if path != "loop":
        _, _, loop_grads = _run(layer, "loop", x, dt, mask, h0)
        names = [n for n, p in layer.named_parameters() if p.requires_grad] + ["input", "h0", "c0"]
        for n, a, b in zip(names, grads, loop_grads):
            _close(a, b, GRAD_TOL[dtype], f"{name} on {path}: gradient of {n}")


def _step_applicable() -> list[tuple[str, str]]:
    return [(name, path) for name in sorted(ALL_LAYERS) for path in _paths(make(name), step=True)]


@pytest.mark.parametrize("dtype", list(DTYPES.values()), ids=list(DTYPES))
@pytest.mark.parametrize(("name", "path"), _step_applicable())
def test_step_paths_match_reference(name: str, path: str, dtype: torch.dtype) -> None:
    """``layer.step`` over irregular, per-sample intervals from an initial state, on every path."""
    layer = make(name, dtype)
    x, dt, _ = random_batch(B, T, dtype, seed=13)
    step = reference_step(layer)
    g = torch.Generator().manual_seed(3)
    h = 0.3 * torch.randn(B, layer.state_size, generator=g, dtype=dtype)
    hx = (h, torch.zeros_like(h)) if layer.lstm is not None else h
    h_ref = h.double().numpy().copy()
    with torch.no_grad(), _dispatch.use_path(path):
        for t in range(T):
            y, hx = layer.step(x[:, t], hx, dt[:, t])
            if layer.lstm is not None:
                continue  # the LSTM half is checked by the sequence test; here only the path choice
            ys = []
            for b in range(B):
                yb, h_ref[b] = step(x[b, t].double().numpy(), h_ref[b], float(dt[b, t]))
                ys.append(yb)
            y_ref = np.stack(ys)
            if layer.fc is not None:
                y_ref = y_ref @ layer.fc.weight.double().numpy().T + layer.fc.bias.double().numpy()
            _close(y, y_ref, VALUE_TOL[dtype], f"{name} step {t} on {path}: output")
            _close(hx, h_ref, VALUE_TOL[dtype], f"{name} step {t} on {path}: state")


def test_every_registered_configuration_has_a_kernel_or_a_reason() -> None:
    """The conformance grid covers at least one kernel path per kernel-capable family, and every
    configuration the kernels do not take says why (no silent fallback)."""
    kernel_paths = {name: _paths(make(name)) for name in ALL_LAYERS}
    assert any("native" in p for p in kernel_paths.values()) or _ops.native_cfc._lib() is None
    for name, paths in kernel_paths.items():
        if paths == ["loop"]:
            choice = _dispatch.explain(make(name), torch.zeros(2, 3, INPUT_SIZE, dtype=torch.float64))
            assert choice.reasons["native"] and choice.reasons["fused"], f"{name}: no reason given"
