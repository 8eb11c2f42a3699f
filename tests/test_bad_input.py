"""Bad input raises errors that name the argument, what came and what is allowed."""

from __future__ import annotations

import pytest
import torch

from liquidflow.torch import LTC, CfC, LTCCell
from liquidflow.wirings import AutoNCP


@pytest.fixture(params=["cfc", "ltc", "mixed"])
def layer(request):
    torch.manual_seed(0)
    if request.param == "cfc":
        return CfC(3, 5, backbone_units=4)
    if request.param == "ltc":
        return LTC(3, AutoNCP(8, 2))
    return CfC(3, 5, mixed_memory=True, backbone_units=4)


def test_wrong_rank(layer) -> None:
    with pytest.raises(ValueError, match=r"input must be 3-D \(B, T, F\) or 2-D \(T, F\) unbatched; got shape \(4,\)"):
        layer(torch.randn(4))
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 3, 3\)"):
        layer(torch.randn(1, 2, 3, 3))


def test_wrong_feature_count(layer) -> None:
    with pytest.raises(ValueError, match="input has 7 features .* expects input_size=3"):
        layer(torch.randn(2, 5, 7))


def test_negative_timespans_located(layer) -> None:
    dt = torch.ones(4, 6)
    dt[3, 2] = -0.01
    with pytest.raises(ValueError, match=r"timespans must be positive and finite; got -0.01\d* at batch 3, step 2"):
        layer(torch.randn(4, 6, 3), timespans=dt)


def test_nan_timespans(layer) -> None:
    dt = torch.ones(2, 4)
    dt[1, 3] = float("nan")
    with pytest.raises(ValueError, match="timespans must be positive and finite; got nan at batch 1, step 3"):
        layer(torch.randn(2, 4, 3), timespans=dt)
    with pytest.raises(ValueError, match="timespans must be a positive finite number; got 0.0"):
        layer(torch.randn(2, 4, 3), timespans=0.0)


def test_timespans_wrong_shape(layer) -> None:
    with pytest.raises(
        ValueError, match=r"timespans must have shape \(B, T\) or \(B, T, 1\) = \(2, 4\).*got shape \(4,\)"
    ):
        layer(torch.randn(2, 4, 3), timespans=torch.ones(4))
    with pytest.raises(ValueError, match=r"got shape \(2, 4, 5\)"):
        layer(torch.randn(2, 4, 3), timespans=torch.ones(2, 4, 5))


def test_padded_steps_may_hold_zero_dt(layer) -> None:
    dt = torch.ones(2, 4)
    mask = torch.ones(2, 4, dtype=torch.bool)
    dt[0, 3] = 0.0
    mask[0, 3] = False
    y, _ = layer(torch.randn(2, 4, 3), timespans=dt, mask=mask)
    assert torch.isfinite(y).all()
    with pytest.raises(ValueError, match="at batch 0, step 3"):
        layer(torch.randn(2, 4, 3), timespans=dt)


def test_mismatched_hx(layer) -> None:
    n = layer.state_size
    if layer.mixed_memory:
        with pytest.raises(ValueError, match=r"hx must be a pair \(h, c\) when mixed_memory=True"):
            layer(torch.randn(2, 4, 3), torch.zeros(2, n))
        with pytest.raises(ValueError, match=rf"hx\[1\] must have shape \(2, {n}\)"):
            layer(torch.randn(2, 4, 3), (torch.zeros(2, n), torch.zeros(3, n)))
    else:
        with pytest.raises(
            ValueError, match=rf"hx must have shape \(2, {n}\) \(batch, state_size\); got \(2, {n + 1}\)"
        ):
            layer(torch.randn(2, 4, 3), torch.zeros(2, n + 1))
        with pytest.raises(ValueError, match=rf"hx must have shape \({n},\)"):
            layer(torch.randn(4, 3), torch.zeros(1, n))


def test_mask_wrong_shape(layer) -> None:
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(2, 4\); got \(4, 2\)"):
        layer(torch.randn(2, 4, 3), mask=torch.ones(4, 2, dtype=torch.bool))


def test_dtype_mismatch(layer) -> None:
    with pytest.raises(TypeError, match="input has dtype torch.float64 but the module's parameters are torch.float32"):
        layer(torch.randn(2, 4, 3, dtype=torch.float64))


def test_not_a_tensor(layer) -> None:
    with pytest.raises(TypeError, match="input must be a torch.Tensor; got list"):
        layer([[1.0, 2.0, 3.0]])


def test_empty_sequence(layer) -> None:
    with pytest.raises(ValueError, match="input has 0 time steps"):
        layer(torch.randn(2, 0, 3))


@pytest.mark.parametrize(
    ("make", "err", "match"),
    [
        (
            lambda: CfC(3, 4, mode="fast"),
            ValueError,
            r"mode must be one of \('default', 'no_gate', 'pure'\); got 'fast'",
        ),
        (lambda: CfC(3, 4, activation="swish"), ValueError, "backbone_activation must be one of"),
        (lambda: CfC(3, AutoNCP(8, 2), backbone_units=16), ValueError, "cannot be used with a wiring"),
        (lambda: CfC(0, 4), ValueError, "input_size must be an integer >= 1; got 0"),
        (lambda: CfC(3, "4"), TypeError, "units must be an int or a Wiring; got str"),
        (lambda: LTC(3, 4, ode_unfolds=0), ValueError, "ode_unfolds must be an integer >= 1; got 0"),
        (lambda: LTC(3, 4, solver="dopri"), ValueError, "unknown solver 'dopri'"),
        (lambda: LTC(3, 4, input_mapping="log"), ValueError, "input_mapping must be one of"),
        (lambda: LTC(3, 4, implicit_param_constraints=False), ValueError, "always keeps w, sensory_w"),
        (lambda: LTCCell(AutoNCP(8, 2)), ValueError, "the wiring is not built"),
        (lambda: CfC(3, 4, proj_size=0), ValueError, "proj_size must be None or an integer >= 1; got 0"),
    ],
)
def test_bad_constructor_arguments(make, err, match: str) -> None:
    with pytest.raises(err, match=match):
        make()
