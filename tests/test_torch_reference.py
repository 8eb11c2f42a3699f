"""Every torch layer configuration against the numpy reference of docs/math.md (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import LAYERS, make_layer, random_batch, reference_run

NAMES = sorted(LAYERS)


@pytest.mark.parametrize("name", NAMES)
def test_matches_reference(name: str) -> None:
    layer = make_layer(name)
    x, dt, _ = random_batch(3, 7)
    y, h = layer(x, timespans=dt)
    y_ref, h_ref, c_ref = reference_run(layer, x, dt)
    np.testing.assert_allclose(y.detach().numpy(), y_ref, atol=1e-6, rtol=0)
    h_t = h[0] if isinstance(h, tuple) else h
    np.testing.assert_allclose(h_t.detach().numpy(), h_ref, atol=1e-6, rtol=0)
    if c_ref is not None:
        np.testing.assert_allclose(h[1].detach().numpy(), c_ref, atol=1e-6, rtol=0)
    # guard against a vacuous comparison
    assert np.abs(y_ref).max() > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_matches_reference_with_mask_and_initial_state(name: str) -> None:
    layer = make_layer(name, seed=1)
    x, dt, mask = random_batch(4, 9, seed=2, masked=True)
    g = torch.Generator().manual_seed(3)
    h0 = torch.randn(4, layer.state_size, generator=g, dtype=torch.float64) * 0.5
    hx = (h0, torch.randn(4, layer.state_size, generator=g, dtype=torch.float64) * 0.5) if layer.mixed_memory else h0
    y, h = layer(x, hx, timespans=dt, mask=mask)
    y_ref, h_ref, _ = reference_run(layer, x, dt, mask, hx)
    np.testing.assert_allclose(y.detach().numpy(), y_ref, atol=1e-6, rtol=0)
    h_t = h[0] if isinstance(h, tuple) else h
    np.testing.assert_allclose(h_t.detach().numpy(), h_ref, atol=1e-6, rtol=0)
    assert (y[~mask] == 0).all()


@pytest.mark.parametrize("name", ["ltc-ncp", "cfc-default", "wcfc-autoncp", "cfc-mixed-proj"])
def test_last_output_is_last_observed_step(name: str) -> None:
    layer = make_layer(name)
    x, dt, mask = random_batch(4, 8, seed=5, masked=True)
    layer.return_sequences = False
    y_last, _ = layer(x, timespans=dt, mask=mask)
    y_ref, _, _ = reference_run(layer, x, dt, mask, return_sequences=False)
    np.testing.assert_allclose(y_last.detach().numpy(), y_ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_float32_close_to_float64(name: str) -> None:
    l64 = make_layer(name)
    l32 = make_layer(name).float()
    x, dt, _ = random_batch(2, 6)
    y64, _ = l64(x, timespans=dt)
    y32, _ = l32(x.float(), timespans=dt.float())
    assert y32.dtype == torch.float32
    np.testing.assert_allclose(y32.detach().numpy(), y64.detach().numpy(), atol=2e-5, rtol=0)
