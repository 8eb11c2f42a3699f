"""ODE solvers: tableaux check themselves; convergence order on problems with known solutions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from liquidflow.torch import SOLVERS, ButcherTableau, LTCCell, get_solver
from liquidflow.wirings import Wiring

ORDERS = {"euler": 1, "semi_implicit": 1, "midpoint": 2, "heun": 2, "rk4": 4}


def _cell(wiring: Wiring, solver: str, unfolds: int, seed: int = 0) -> LTCCell:
    torch.manual_seed(seed)
    return LTCCell(wiring, 2, ode_unfolds=unfolds, solver=solver, epsilon=0.0).double()


def _leak_only() -> Wiring:
    w = Wiring(3)  # no synapses: C dv/dt = g (v_leak - v), a linear ODE
    w.build(2)
    return w


def _small_circuit() -> Wiring:
    w = Wiring(3)
    w.build(2)
    w.add_synapse(0, 1, 1)
    w.add_synapse(1, 2, -1)
    w.add_synapse(2, 0, 1)
    w.add_sensory_synapse(0, 0, 1)
    w.add_sensory_synapse(1, 2, -1)
    return w


def test_registry_and_errors() -> None:
    assert set(SOLVERS) == set(ORDERS)
    for name, solver in SOLVERS.items():
        assert solver.name == name and solver.order == ORDERS[name]
    with pytest.raises(ValueError, match=r"unknown solver 'rk45'; valid names: \['euler', 'heun'"):
        get_solver("rk45")


def test_tableau_validates_itself() -> None:
    with pytest.raises(ValueError, match="weights b must sum to 1"):
        ButcherTableau("bad", 1, ((),), (0.5,), (0.0,))
    with pytest.raises(ValueError, match="row 1 of a must sum to c"):
        ButcherTableau("bad", 2, ((), (0.3,)), (0.5, 0.5), (0.0, 1.0))


@pytest.mark.parametrize("solver", sorted(ORDERS))
def test_exact_solution_of_linear_leak(solver: str) -> None:
    cell = _cell(_leak_only(), solver, 1)
    p = cell.effective_parameters()
    g, c, vl = p["gleak"].detach(), p["cm"].detach(), p["vleak"].detach()
    v0 = torch.tensor([[0.9, -0.5, 0.3]], dtype=torch.float64)
    x = torch.zeros(1, 2, dtype=torch.float64)
    dt = 0.5
    exact = vl + (v0 - vl) * torch.exp(-g / c * dt)
    errors = []
    for unfolds in (8, 16, 32, 64):
        cell.ode_unfolds = unfolds
        _, v = cell(x, v0, dt)
        errors.append((v - exact).abs().max().item())
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]
    assert all(abs(r - ORDERS[solver]) < 0.25 for r in rates), (solver, errors, rates)


@pytest.mark.parametrize("solver", sorted(ORDERS))
def test_convergence_order_nonlinear(solver: str) -> None:
    """Against a fine RK4 solution of a small nonlinear circuit."""
    cell = _cell(_small_circuit(), solver, 1, seed=3)
    fine = _cell(_small_circuit(), "rk4", 2048, seed=3)
    fine.load_state_dict(cell.state_dict())
    x = torch.tensor([[0.7, -0.4]], dtype=torch.float64)
    v0 = torch.tensor([[0.2, -0.1, 0.4]], dtype=torch.float64)
    dt = 0.8
    _, exact = fine(x, v0, dt)
    errors = []
    for unfolds in (16, 32, 64, 128):
        cell.ode_unfolds = unfolds
        _, v = cell(x, v0, dt)
        errors.append((v - exact).abs().max().item())
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(rates - ORDERS[solver]) < 0.3), (solver, errors, rates)


@pytest.mark.parametrize("dt", [1e-3, 1e-1, 1e1, 1e3])
def test_semi_implicit_is_stable_where_euler_is_not(dt: float) -> None:
    cell = _cell(_small_circuit(), "semi_implicit", 1)
    v0 = torch.tensor([[0.2, -0.1, 0.4]], dtype=torch.float64)
    x = torch.tensor([[0.7, -0.4]], dtype=torch.float64)
    v = v0
    for _ in range(100):
        _, v = cell(x, v, dt)
        assert torch.isfinite(v).all() and v.abs().max() < 2.0
    if dt >= 1e1:
        euler = _cell(_small_circuit(), "euler", 1)
        euler.load_state_dict(cell.state_dict())
        _, ve = euler(x, v0, dt)
        assert ve.abs().max() > 2.0  # explicit Euler overshoots at this step size
