"""Option rules of the sequence layers shared by the torch and keras front ends (no framework).

Both ``CfC`` layers take ``units`` as an int (a dense cell with a backbone MLP) or a wiring (a wired
cell: no backbone, tanh heads); the checks, defaults and configuration keys (of ``LTC`` too) live
here once so the two front ends, and the converters between them, cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._spec import POSITIVE_PARAMS

if TYPE_CHECKING:
    from .wirings import Wiring

LTC_OPTIONS = ("input_mapping", "output_mapping", "ode_unfolds", "epsilon", "solver")
CFC_OPTIONS = ("mode", "activation", "backbone_units", "backbone_layers", "backbone_dropout", "head_activation")


def check_wired_cfc_options(
    backbone_units: int | None, backbone_layers: int | None, backbone_dropout: float | None, head_activation: str
) -> None:
    """A wired CfC has no backbone and tanh heads: refuse options that ask for either."""
    if backbone_units is not None or backbone_layers is not None or backbone_dropout is not None:
        raise ValueError("backbone_units/layers/dropout cannot be used with a wiring (wired CfC has no backbone)")
    if head_activation != "tanh":
        raise ValueError(f"head_activation={head_activation!r} needs a dense CfC (units an int); "
                         "wired CfC heads use tanh")  # fmt: skip


def cfc_backbone(
    backbone_units: int | None, backbone_layers: int | None, backbone_dropout: float | None
) -> tuple[int, int, float]:
    """A dense CfC's backbone (units, layers, dropout), with the defaults 128, 1 and 0.0."""
    return (
        128 if backbone_units is None else backbone_units,
        1 if backbone_layers is None else backbone_layers,
        0.0 if backbone_dropout is None else backbone_dropout,
    )


class WiringSizes:
    """Sizes an LTC cell of either front end takes from its wiring: the state is every neuron, the
    output the motor neurons (all of them when the wiring names no ``output_dim``)."""

    wiring: Wiring

    @property
    def state_size(self) -> int:
        return self.wiring.units

    @property
    def motor_size(self) -> int:
        return self.wiring.output_dim if self.wiring.output_dim is not None else self.wiring.units

    @property
    def output_size(self) -> int:
        return self.motor_size


class WiredCfCSizes:
    """Sizes a wired CfC cell of either front end takes from its wiring: one CfC layer per wiring
    layer (``layer_sizes`` neurons each), the state is every neuron, the output the last layer."""

    wiring: Wiring
    layer_sizes: list[int]

    @staticmethod
    def wiring_layer_sizes(wiring: Wiring) -> list[int]:
        return [len(wiring.get_neurons_of_layer(i)) for i in range(wiring.num_layers)]

    @property
    def state_size(self) -> int:
        return self.wiring.units

    @property
    def output_size(self) -> int:
        return self.layer_sizes[-1]

    @property
    def num_layers(self) -> int:
        return len(self.layer_sizes)


#: an LTC cell's parameters in the order of docs/math.md (a ``POSITIVE_PARAMS`` one is stored as
#: ``<name>_raw`` and enters the equations through softplus), then the optional input/output mapping
LTC_PARAMETERS = ("gleak", "vleak", "cm", "w", "sigma", "mu", "erev", "sensory_w", "sensory_sigma", "sensory_mu",
                  "sensory_erev", "sparsity_mask", "sensory_sparsity_mask")  # fmt: skip
LTC_MAPPING_PARAMETERS = ("input_w", "input_b", "output_w", "output_b")


def ltc_effective_parameters(cell: Any, softplus: Callable[[Any], Any]) -> dict[str, Any]:
    """All parameters of an LTC cell (either front end) as they enter the equations: positives
    through ``softplus`` (the front end's), mapping parameters only where the cell has them."""
    out = {
        name: softplus(getattr(cell, f"{name}_raw")) if name in POSITIVE_PARAMS else getattr(cell, name)
        for name in LTC_PARAMETERS
    }
    for name in LTC_MAPPING_PARAMETERS:
        p = getattr(cell, name)
        if p is not None:
            out[name] = p
    return out


def _pick(source: Any, names: tuple[str, ...]) -> dict[str, Any]:
    if isinstance(source, dict):
        return {name: source[name] for name in names}
    return {name: getattr(source, name) for name in names}


def cfc_options(layer: Any) -> dict[str, Any]:
    """The options of a ``CfC`` layer (or of its configuration dict) after ``units``, in config order."""
    return _pick(layer, CFC_OPTIONS)


def ltc_options(cell: Any) -> dict[str, Any]:
    """The options of a Keras ``LTCCell`` (or of an ``LTC`` configuration dict), in config order."""
    return _pick(cell, LTC_OPTIONS)
