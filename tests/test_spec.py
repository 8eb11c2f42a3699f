"""The specification layer (liquidflow._spec): numpy only, and every front end reads its facts from it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import liquidflow.keras as lk
from liquidflow import _spec
from liquidflow.torch import LTC, CfC, _solvers
from liquidflow.torch import _cells as torch_cells
from liquidflow.wirings import NCP, AutoNCP


def test_spec_imports_no_framework() -> None:
    code = "import sys, liquidflow._spec; print([m for m in ('torch', 'keras', 'tensorflow') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", sorted(_spec.ACTIVATIONS))
def test_numpy_activations_match_torch(name: str) -> None:
    x = np.linspace(-4, 4, 41)
    want = torch_cells.ACTIVATIONS[name](torch.tensor(x)).numpy()
    np.testing.assert_allclose(_spec.ACTIVATIONS[name](x), want, rtol=1e-12, atol=1e-12)
    assert set(_spec.C_ACTIVATIONS) == set(_spec.ACTIVATIONS)


def test_front_ends_share_the_facts() -> None:
    assert torch_cells.LTC_INIT_RANGES is _spec.LTC_INIT_RANGES
    assert lk._ltc_cell.LTC_INIT_RANGES is _spec.LTC_INIT_RANGES  # type: ignore[attr-defined]
    assert lk.CFC_MODES is _spec.CFC_MODES
    assert _solvers.SOLVERS["rk4"].tableau is _spec.RK4  # type: ignore[attr-defined]
    assert set(lk._common.SOLVERS) == set(_solvers.SOLVERS)  # type: ignore[attr-defined]


def test_tableau_checks_itself() -> None:
    with pytest.raises(ValueError, match="weights b must sum to 1"):
        _spec.ButcherTableau("bad", 1, ((),), (0.5,), (0.0,))
    with pytest.raises(ValueError, match=r"row 1 of a must sum to c\[1\]"):
        _spec.ButcherTableau("bad", 2, ((), (0.3,)), (0.5, 0.5), (0.0, 0.5))
    for t in _spec.TABLEAUX.values():
        assert t.stages == len(t.b) and t.order >= 1


def test_cfc_spec_validates_once_for_every_front_end() -> None:
    with pytest.raises(ValueError, match=r"mode must be one of \('default', 'no_gate', 'pure'\); got 'fast'"):
        _spec.CfCSpec(3, 4, mode="fast")
    with pytest.raises(ValueError, match=r"head_activation must be one of \['tanh', 'lecun_tanh'\]; got 'relu'"):
        _spec.CfCSpec(3, 4, head_activation="relu")
    with pytest.raises(ValueError, match="backbone_dropout must be in"):
        _spec.CfCSpec(3, 4, backbone_dropout=1.0)
    spec = CfC(3, 5, backbone_units=7).rnn_cell.spec
    assert spec == _spec.CfCSpec(3, 5, backbone_units=7)
    assert spec.width == 7 and spec.heads == 20
    assert _spec.CfCSpec(3, 5, mode="pure", backbone_layers=0).width == 8
    assert _spec.CfCSpec(3, 5, backbone_layers=2).kernel_why_not() == "backbone_layers=2"
    dropout = _spec.CfCSpec(3, 5, backbone_dropout=0.1)
    assert dropout.kernel_why_not(training=True) == "backbone_dropout in training mode"
    assert _spec.CfCSpec(3, 5).kernel_why_not() is None


def test_ltc_spec_from_the_cell() -> None:
    cell = LTC(3, NCP(4, 3, 2, 2, 2, 2, 2, seed=1), ode_unfolds=3, solver="rk4").rnn_cell
    assert cell.spec.state_size == 9 and cell.spec.sensory_size == 3 and cell.spec.motor_size == 2
    assert cell.spec.tableau is _spec.RK4
    assert cell.spec.kernel_why_not() is None  # the kernels take the tableau


def test_ncp_layer_masks_follow_the_wiring() -> None:
    w = AutoNCP(12, 3, seed=4)
    w.build(5)
    masks = _spec.ncp_layer_masks(w)
    sizes = [len(w.get_neurons_of_layer(i)) for i in range(w.num_layers)]
    assert [m.shape[1] for m in masks] == sizes
    assert masks[0].shape[0] == 5 + sizes[0]
    np.testing.assert_array_equal(masks[0][:5], np.abs(w.sensory_adjacency_matrix[:, w.get_neurons_of_layer(0)]))
    prev, cur = w.get_neurons_of_layer(0), w.get_neurons_of_layer(1)
    np.testing.assert_array_equal(masks[1][: len(prev)], np.abs(w.adjacency_matrix[np.ix_(prev, cur)]))
    assert (masks[1][len(prev) :] == 1).all()  # each layer's own states are dense
    unbuilt = AutoNCP(12, 3, seed=4)
    with pytest.raises(ValueError, match="the wiring is not built"):
        _spec.ncp_layer_masks(unbuilt)
