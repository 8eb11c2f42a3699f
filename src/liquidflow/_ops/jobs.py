"""What a cell hands to a sequence executor: the whole sequence's work, time-major, with no choice made.

A cell turns its parameters and a batch into a job (:class:`CfCJob` or :class:`LTCJob`); the
dispatcher (:mod:`._dispatch`) alone decides which executor runs it — the C kernels
(:mod:`._native_cfc`, :mod:`._native_ltc`) or the fused torch kernels (:mod:`._fused`) — and every
executor returns the same states (T, B, N).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .._spec import ButcherTableau, CfCLayer

Tensor = torch.Tensor


@dataclass
class CfCLSTM:
    """The mixed-memory LSTM of a CfC job: it runs before the chain at every step (its output is the
    state the chain reads; a step not observed keeps h and c)."""

    pre: Tensor  # (T, B, 4N): the input map of the gates for all steps, bias included
    r_t: Tensor  # (N, 4N): the recurrent weight transposed
    c0: Tensor  # (B, N)
    c: Tensor | None = None  # (T, B, N) the cell states after each step, set by the executor that ran the job


@dataclass
class CfCJob:
    """A chain of CfC layers (one for a dense CfC, one per NCP layer for a wired one)."""

    specs: list[CfCLayer]
    P: Tensor  # (T, B, K0): layer 0's first map applied to the inputs, bias included
    ts: Tensor  # (T, B, 1) elapsed time before each step
    keep: Tensor | None  # (T, B, 1) bool, True where observed; None: all observed
    h0: Tensor  # (B, N) initial states of all layers side by side
    #: per layer [WxT, WhT, b, HwT, hb], then [W_kT, b_k] per backbone layer k >= 1, then [A, w_tau] in
    #: pure mode (``CfCLayer.n_params``)
    params: list[list[Tensor | None]]
    lib: Any = None  # the C library that accepted this job (set by the dispatcher)
    #: per layer (None: no dropout), per backbone layer: (T, B, K) dropout multipliers (0 or 1 / (1 - p))
    drops: list[list[Tensor] | None] | None = None
    lstm: CfCLSTM | None = None  #: mixed memory (then ``specs[0].memory``)

    def args(self) -> tuple[list[CfCLayer], Tensor, Tensor, Tensor | None, Tensor, list[list[Tensor | None]],
                            list[list[Tensor] | None] | None, CfCLSTM | None]:  # fmt: skip
        return self.specs, self.P, self.ts, self.keep, self.h0, self.params, self.drops, self.lstm


@dataclass
class LTCJob:
    """An LTC: sensory terms, then ``unfolds`` sub-steps per interval, each a semi-implicit step
    (``tableau`` None) or the explicit Runge-Kutta method ``tableau`` (``leak`` then has no epsilon)."""

    unfolds: int
    x: Tensor  # (T, B, I) raw inputs, time-major
    map_inputs: Callable[[Tensor], Tensor]  # the cell's input mapping
    precompute: Callable[[Tensor], Tensor]  # torch sensory terms (T, B, 2, N), inputs mapped inside
    leak: Tensor  # (2, N): [g_leak v_leak, g_leak + eps] (explicit solvers: [g_leak v_leak, g_leak])
    sensory: tuple[Tensor, Tensor, Tensor, Tensor]  # (I, N) each: w, w E, sigma, sigma mu
    C: Tensor  # (T, B, N): C_m / (dt / unfolds)
    keep: Tensor | None  # (T, B, 1) bool
    h0: Tensor  # (B, N)
    synapses: tuple[Tensor, Tensor, Tensor, Tensor]  # w, w E, sigma, sigma mu: (N, N), or (E,) on edges
    edges: tuple[Tensor, Tensor] | None  # (src, dst) of each synapse, or None: dense
    base: Tensor | None = None  # (T, B, 2, N) sensory terms plus leak, once an executor has computed them
    tableau: ButcherTableau | None = None  # the explicit solver; None: semi-implicit
    #: mixed memory: the LSTM runs before the LTC step at every step (the executor leaves the cell
    #: states in ``lstm.c``)
    lstm: CfCLSTM | None = None

    def torch_base(self) -> Tensor:
        """The sensory terms plus the leak, (T, B, 2, N), computed with torch ops."""
        return self.precompute(self.x) + self.leak
