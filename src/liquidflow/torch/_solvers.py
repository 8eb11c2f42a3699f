"""ODE solvers for the LTC cell: one interval ``h = dt / unfolds`` at a time.

The LTC vector field is written in conductance form (docs/math.md, "LTC")::

    C_m dv/dt = numer(v) - denom(v) * v

where ``numer = g_leak v_leak + sum a E + sum s E^s`` and ``denom = g_leak + sum a + sum s``. A solver
receives ``rhs(v) -> (numer, denom)`` and advances ``v`` by ``h``. Explicit Runge-Kutta methods are
data: a Butcher tableau that checks itself.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._spec import EULER, HEUN, MIDPOINT, RK4, ButcherTableau

Tensor = torch.Tensor
RHS = Callable[[Tensor], tuple[Tensor, Tensor]]


class Solver:
    """Advance ``v`` over one sub-interval ``h`` (shape broadcastable to ``v``)."""

    name: str = "solver"
    order: int = 1

    def step(self, rhs: RHS, v: Tensor, cm: Tensor, h: Tensor, epsilon: float) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class SemiImplicitEuler(Solver):
    """The fused semi-implicit Euler step of Hasani et al. (2021): stable for any h > 0.

    v <- (c v + numer) / (c + denom + eps),  c = C_m / h. It is exactly the implicit Euler step
    with the synaptic conductances frozen at the start of the sub-interval, so it is first order.
    """

    name = "semi_implicit"
    order = 1

    def step(self, rhs: RHS, v: Tensor, cm: Tensor, h: Tensor, epsilon: float) -> Tensor:
        numer, denom = rhs(v)
        c = cm / h
        return (c * v + numer) / (c + denom + epsilon)


class ExplicitRK(Solver):
    """Explicit Runge-Kutta on dv/dt = (numer(v) - denom(v) v) / C_m. ``epsilon`` is unused."""

    def __init__(self, tableau: ButcherTableau) -> None:
        self.tableau = tableau
        self.name = tableau.name
        self.order = tableau.order

    def step(self, rhs: RHS, v: Tensor, cm: Tensor, h: Tensor, epsilon: float) -> Tensor:
        def f(u: Tensor) -> Tensor:
            numer, denom = rhs(u)
            return (numer - denom * u) / cm

        ks: list[Tensor] = []
        for row in self.tableau.a:
            u = v
            for coef, k in zip(row, ks):
                if coef != 0.0:
                    u = u + (h * coef) * k
            ks.append(f(u))
        out = v
        for coef, k in zip(self.tableau.b, ks):
            if coef != 0.0:
                out = out + (h * coef) * k
        return out


SOLVERS: dict[str, Solver] = {
    "semi_implicit": SemiImplicitEuler(),
    "euler": ExplicitRK(EULER),
    "midpoint": ExplicitRK(MIDPOINT),
    "heun": ExplicitRK(HEUN),
    "rk4": ExplicitRK(RK4),
}


def get_solver(solver: str | Solver) -> Solver:
    """A solver by name (``semi_implicit``, ``euler``, ``midpoint``, ``heun``, ``rk4``) or instance."""
    if isinstance(solver, Solver):
        return solver
    if isinstance(solver, str) and solver in SOLVERS:
        return SOLVERS[solver]
    raise ValueError(f"unknown solver {solver!r}; valid names: {sorted(SOLVERS)} (or a Solver instance)")
