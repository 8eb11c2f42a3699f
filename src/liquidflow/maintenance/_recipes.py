"""The tuned training recipes of the maintenance models (what ``liquidflow demo`` trains by default).

Found by ``benchmarks/maintenance_tune.py`` (every family the same Optuna budget, validation AUPRC on
the demo's fleet and machine split) and scored there on the test machines over 5 training seeds;
docs/evidence.md has the table. Each entry is the best trial of its family at the size listed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ._pipeline import TrainConfig

#: kind -> TrainConfig keywords (size included); docs/evidence.md, "Maintenance fleet"
TUNED: dict[str, dict[str, Any]] = {}


def tuned_recipes(seed: int = 0, epochs: int | None = None, units: int | None = None) -> dict[str, TrainConfig]:
    """One TrainConfig per model kind from :data:`TUNED`; ``epochs`` / ``units`` (liquid neurons)
    replace the recipes' own when given (e.g. a quick run)."""
    out = {}
    for kind, kw in TUNED.items():
        cfg = replace(TrainConfig(**kw), seed=seed)
        if epochs is not None:
            cfg = replace(cfg, epochs=epochs)
        if units is not None and kind in ("cfc", "ltc"):
            cfg = replace(cfg, units=units)
        out[kind] = cfg
    return out
