"""count_parameters: a wiring's structural zeros are not parameters; dense layers count as sum(numel)."""

from __future__ import annotations

import pytest
import torch

from liquidflow.torch import LTC, CfC, count_parameters
from liquidflow.wirings import AutoNCP, FullyConnected


def _zeros(mask: torch.Tensor) -> int:
    return int((mask == 0).sum())


@pytest.mark.parametrize("n_in", [6, 16])  # 16: the sensory and recurrent masks have the same shape
def test_ltc_loses_four_matrices_of_zeros_per_mask(n_in):
    m = LTC(n_in, AutoNCP(16, 2, seed=3))
    cell = m.cell
    dense = sum(p.numel() for p in m.parameters())
    want = dense - 4 * _zeros(cell.sparsity_mask) - 4 * _zeros(cell.sensory_sparsity_mask)
    assert count_parameters(m, effective=False) == dense
    assert count_parameters(m) == want < dense


def test_wired_cfc_loses_the_zeros_of_each_layer_for_its_four_weight_matrices():
    m = CfC(6, AutoNCP(20, 3, seed=1), mixed_memory=True)
    dense = sum(p.numel() for p in m.parameters())
    zeros = sum(4 * _zeros(layer.sparsity_mask) for layer in m.cell.layers)
    assert count_parameters(m) == dense - zeros
    m.cell.layers[0].f1.weight.requires_grad_(False)  # frozen entries are not counted at all
    frozen = m.cell.layers[0].f1.weight
    assert count_parameters(m) == dense - zeros - frozen.numel() + _zeros(m.cell.layers[0].sparsity_mask)


def test_dense_and_fully_connected_models_are_unchanged():
    for m in (CfC(5, 8), LTC(5, 8), torch.nn.LSTM(5, 8), LTC(5, FullyConnected(8))):
        assert count_parameters(m) == count_parameters(m, effective=False) == sum(p.numel() for p in m.parameters())
