"""The cells' facts, written once with numpy only: every front end and executor builds from here.

liquidflow runs the same equations (docs/math.md) in several executors: the torch cells and their
fused kernels, the native C kernels, the Keras 3 cells (which must not import torch), the C export
and the interpretability tools. What they share and must never disagree on lives in this module:

- the names and constants of activations (``lecun_tanh`` = 1.7159 tanh(0.666 x)), CfC modes, input
  and output mappings, the LTC parameters' initial ranges and which of them are kept positive;
- the LTC solvers, explicit ones as Butcher tableaux that check themselves;
- frozen descriptions of a cell (:class:`CfCSpec`, :class:`LTCSpec`) that validate a layer's options
  with one error message each, and of one CfC (sub-)layer of a fused chain (:class:`CfCLayer`);
- a wired CfC's per-layer synapse masks (:func:`ncp_layer_masks`).

Only numpy and :mod:`liquidflow.wirings` are imported, so any front end may depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .wirings import Wiring

# ------------------------------------------------------------------------------------ activations
#: lecun_tanh(x) = LECUN_A * tanh(LECUN_B * x) (LeCun et al., "Efficient BackProp", 1998)
LECUN_A, LECUN_B = 1.7159, 0.666


def _np_gelu(x: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return np.asarray(x * 0.5 * (1.0 + np.vectorize(erf)(np.asarray(x) / sqrt(2.0))))


#: the CfC backbone activations (numpy versions, for reference-style evaluation)
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "lecun_tanh": lambda x: LECUN_A * np.tanh(LECUN_B * x),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "gelu": _np_gelu,  # the exact (erf) form, as torch's and Keras' defaults
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}
#: the activations of the CfC heads f1, f2: ncps's tanh, or the CfC paper's lecun_tanh (raminmh/CfC tf_cfc.py)
HEAD_ACTIVATIONS = ("tanh", "lecun_tanh")
#: the activations in C (export and native step), ``{x}`` the argument, single precision
C_ACTIVATIONS: dict[str, str] = {
    "lecun_tanh": "1.7159f * tanhf(0.666f * {x})",
    "tanh": "tanhf({x})",
    "relu": "({x} > 0.0f ? {x} : 0.0f)",
    "gelu": "0.5f * {x} * (1.0f + erff({x} * 0.707106781f))",
    "silu": "{x} / (1.0f + expf(-{x}))",
}

CFC_MODES = ("default", "no_gate", "pure")
MAPPINGS = ("affine", "linear", None)

# -------------------------------------------------------------------------------------------- LTC
#: initial ranges of the LTC parameters (effective values, after the positivity map), as in ncps
LTC_INIT_RANGES: dict[str, tuple[float, float]] = {
    "gleak": (0.001, 1.0),
    "vleak": (-0.2, 0.2),
    "cm": (0.4, 0.6),
    "w": (0.001, 1.0),
    "sigma": (3.0, 8.0),
    "mu": (0.3, 0.8),
    "sensory_w": (0.001, 1.0),
    "sensory_sigma": (3.0, 8.0),
    "sensory_mu": (0.3, 0.8),
}
#: parameters stored raw and mapped through softplus, so they stay positive
POSITIVE_PARAMS = ("gleak", "cm", "w", "sensory_w")
#: a synapse matrix with at most this share of its N x N entries present is computed on an edge list
SPARSE_FRACTION = 0.35


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit Runge-Kutta method: stages ``c``, strictly lower-triangular ``a``, weights ``b``."""

    name: str
    order: int
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]

    def __post_init__(self) -> None:
        s = len(self.b)
        if len(self.c) != s or len(self.a) != s:
            raise ValueError(f"tableau {self.name}: a, b, c must all have {s} stages")
        if abs(sum(self.b) - 1.0) > 1e-12:
            raise ValueError(f"tableau {self.name}: weights b must sum to 1; got {sum(self.b)}")
        for i, row in enumerate(self.a):
            if len(row) != i:
                raise ValueError(f"tableau {self.name}: row {i} of a must have {i} entries (explicit method)")
            if abs(sum(row) - self.c[i]) > 1e-12:
                raise ValueError(f"tableau {self.name}: row {i} of a must sum to c[{i}]={self.c[i]}")

    @property
    def stages(self) -> int:
        return len(self.b)


EULER = ButcherTableau("euler", 1, ((),), (1.0,), (0.0,))
MIDPOINT = ButcherTableau("midpoint", 2, ((), (0.5,)), (0.0, 1.0), (0.0, 0.5))
HEUN = ButcherTableau("heun", 2, ((), (1.0,)), (0.5, 0.5), (0.0, 1.0))
RK4 = ButcherTableau(
    "rk4",
    4,
    ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    (1 / 6, 1 / 3, 1 / 3, 1 / 6),
    (0.0, 0.5, 0.5, 1.0),
)
#: the explicit solvers by name; "semi_implicit" (the fused semi-implicit Euler step) is not a tableau
TABLEAUX: dict[str, ButcherTableau] = {t.name: t for t in (EULER, MIDPOINT, HEUN, RK4)}
LTC_SOLVERS = ("semi_implicit", *TABLEAUX)


# ------------------------------------------------------------------------------------- validation
def check_int(name: str, value: object, lo: int) -> int:
    """``value`` as an int >= lo, or a ValueError that repeats it (bools are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < lo:
        raise ValueError(f"{name} must be an integer >= {lo}; got {value!r}")
    return int(value)


def check_choice(name: str, value: object, allowed: tuple[object, ...] | list[object]) -> object:
    """``value`` if it is one of ``allowed``, else a ValueError that shows both."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


# ------------------------------------------------------------------------------------ descriptions
@dataclass(frozen=True)
class CfCSpec:
    """A dense CfC cell: sizes and options, validated. ``backbone_units`` is 0 without a backbone."""

    input_size: int
    hidden_size: int
    mode: str = "default"
    backbone_activation: str = "lecun_tanh"
    backbone_units: int = 128
    backbone_layers: int = 1
    backbone_dropout: float = 0.0
    head_activation: str = "tanh"

    def __post_init__(self) -> None:
        check_int("input_size", self.input_size, 1)
        check_int("hidden_size", self.hidden_size, 1)
        check_int("backbone_layers", self.backbone_layers, 0)
        check_choice("mode", self.mode, CFC_MODES)
        if self.backbone_activation not in ACTIVATIONS:
            raise ValueError(
                f"backbone_activation must be one of {sorted(ACTIVATIONS)}; got {self.backbone_activation!r}"
            )
        check_choice("head_activation", self.head_activation, list(HEAD_ACTIVATIONS))
        if self.backbone_layers > 0:
            check_int("backbone_units", self.backbone_units, 1)
        if not 0.0 <= float(self.backbone_dropout) < 1.0:
            raise ValueError(f"backbone_dropout must be in [0, 1); got {self.backbone_dropout}")

    @property
    def width(self) -> int:
        """Inputs of the heads: the last backbone layer's units, or [x, h] without a backbone."""
        return self.backbone_units if self.backbone_layers > 0 else self.input_size + self.hidden_size

    @property
    def heads(self) -> int:
        """Rows of the stacked head weights: f1, f2, time_a, time_b (f1 alone in pure mode)."""
        return self.hidden_size if self.mode == "pure" else 4 * self.hidden_size

    def kernel_why_not(self, training: bool = False, sequence: bool = False) -> str | None:
        """Why no kernel runs this cell; None when one may (each kernel may still refuse: the fused
        torch kernel's backbone is tanh / lecun_tanh only).

        ``sequence``: for a sequence call, whose C kernel takes every mode, 0-4 backbone layers,
        either head activation and dropout masks; otherwise for the one-step kernels."""
        if sequence:
            if self.backbone_layers > 4:
                return f"backbone_layers={self.backbone_layers}: the C kernel takes at most 4"
            return None
        if self.mode not in ("default", "no_gate"):
            return f"mode={self.mode!r}"
        if self.backbone_layers > 1:
            return f"backbone_layers={self.backbone_layers}"
        if self.head_activation != "tanh":
            return f"head_activation={self.head_activation!r}"
        if self.backbone_dropout > 0 and training:
            return "backbone_dropout in training mode"
        return None


@dataclass(frozen=True)
class LTCSpec:
    """An LTC cell: sizes from its wiring, the mappings, the solver and its unfolds, validated."""

    state_size: int
    sensory_size: int
    motor_size: int
    input_mapping: str | None = "affine"
    output_mapping: str | None = "affine"
    ode_unfolds: int = 6
    epsilon: float = 1e-8
    solver: str = "semi_implicit"

    def __post_init__(self) -> None:
        check_choice("input_mapping", self.input_mapping, MAPPINGS)
        check_choice("output_mapping", self.output_mapping, MAPPINGS)
        check_int("ode_unfolds", self.ode_unfolds, 1)
        # the solver is checked by the front end: torch also takes a user's Solver instance by its name

    @property
    def tableau(self) -> ButcherTableau | None:
        """The explicit method's tableau; None for the semi-implicit step."""
        return TABLEAUX.get(self.solver)

    def kernel_why_not(self) -> str | None:
        """Why no fused sequence kernel (torch or C) runs this cell; None when one does (the
        semi-implicit step and every explicit solver: the kernels take its ``tableau``)."""
        if self.solver != "semi_implicit" and self.tableau is None:
            return f"solver={self.solver!r}: the kernels run the semi-implicit step and Butcher tableaux only"
        return None


@dataclass(frozen=True)
class CfCLayer:
    """One CfC (sub-)layer of a fused chain: sizes and options, no tensors (the kernels' view)."""

    hidden: int  # H
    width: int  # K: outputs of the first linear map (backbone units, or the heads: 4H, pure H)
    backbone: bool
    mode: str  # "default", "no_gate" or "pure"
    #: the backbone activation as the kernel applies it (a name of ACTIVATIONS): "tanh" also for a
    #: lecun_tanh whose constants are folded into the weights; "lecun_tanh" when they are not
    activation: str = "tanh"
    depth: int = 1  #: backbone layers (with ``backbone``); layers 1.. map K -> K
    head: str = "tanh"  #: the activation of f1 and f2: "tanh" or "lecun_tanh"
    dropout: bool = False  #: the job carries dropout multipliers for the backbone layers
    memory: bool = False  #: layer 0 of a chain with the mixed-memory LSTM before it (the job's ``lstm``)

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {self.activation!r}")
        if self.mode not in CFC_MODES:
            raise ValueError(f"mode must be one of {CFC_MODES}; got {self.mode!r}")
        if self.head not in ("tanh", "lecun_tanh"):
            raise ValueError(f"head must be tanh or lecun_tanh; got {self.head!r}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1; got {self.depth}")

    @property
    def layers(self) -> int:
        """Backbone layers (0 without a backbone)."""
        return self.depth if self.backbone else 0

    @property
    def heads(self) -> int:
        """Head columns: f1 alone in pure mode, else f1, f2, time_a, time_b."""
        return self.hidden if self.mode == "pure" else 4 * self.hidden

    @property
    def n_params(self) -> int:
        """Tensors per layer in a job's params: WxT, WhT, b, HwT, hb, then W_kT, b_k per backbone
        layer k >= 1, then A, w_tau in pure mode."""
        return 5 + 2 * max(0, self.layers - 1) + (2 if self.mode == "pure" else 0)

    @property
    def lecun(self) -> bool:
        """A backbone lecun_tanh not folded into the weights."""
        return self.backbone and self.activation == "lecun_tanh"


# ----------------------------------------------------------------------------------------- wirings
def ncp_layer_masks(wiring: Wiring) -> list[np.ndarray]:
    """Each layer's mask of a wired CfC: (inputs of the layer + its own neurons, its neurons).

    Layer 0 reads the sensory inputs through the wiring's sensory adjacency, layer l > 0 the
    previous layer's neurons through the adjacency matrix; every layer sees all of its own
    neurons' states (the recurrent part is dense). Absolute values: the signs are polarities.
    """
    if not wiring.is_built() or wiring.sensory_adjacency_matrix is None:
        raise ValueError("the wiring is not built: pass input_size or call wiring.build(input_dim)")
    masks = []
    prev: list[int] = []
    for layer_id in range(wiring.num_layers):
        neurons = wiring.get_neurons_of_layer(layer_id)
        if layer_id == 0:
            in_mask = wiring.sensory_adjacency_matrix[:, neurons]
        else:
            in_mask = wiring.adjacency_matrix[np.ix_(prev, neurons)]
        masks.append(np.abs(np.concatenate([in_mask, np.ones((len(neurons), len(neurons)))], axis=0)))
        prev = neurons
    return masks


__all__ = [
    "ACTIVATIONS",
    "CFC_MODES",
    "C_ACTIVATIONS",
    "EULER",
    "HEAD_ACTIVATIONS",
    "HEUN",
    "LECUN_A",
    "LECUN_B",
    "LTC_INIT_RANGES",
    "LTC_SOLVERS",
    "MAPPINGS",
    "MIDPOINT",
    "POSITIVE_PARAMS",
    "RK4",
    "SPARSE_FRACTION",
    "TABLEAUX",
    "ButcherTableau",
    "CfCLayer",
    "CfCSpec",
    "LTCSpec",
    "check_choice",
    "check_int",
    "ncp_layer_masks",
]
