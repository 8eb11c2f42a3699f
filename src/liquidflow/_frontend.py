"""Option rules of the sequence layers shared by the torch and keras front ends (no framework).

Both ``CfC`` layers take ``units`` as an int (a dense cell with a backbone MLP) or a wiring (a wired
cell: no backbone, tanh heads); the checks, defaults and configuration keys live here once so the
two front ends cannot drift apart.
"""

from __future__ import annotations

from typing import Any

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


def cfc_options(layer: Any) -> dict[str, Any]:
    """The CfC layer options of ``layer``'s configuration (after ``units``), in this order."""
    return {name: getattr(layer, name) for name in CFC_OPTIONS}
