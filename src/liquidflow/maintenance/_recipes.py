"""The tuned training recipes of the maintenance models (what ``liquidflow demo`` trains by default).

Found by ``benchmarks/maintenance_tune.py`` (every family the same Optuna budget, validation AUPRC on
the demo's fleet and machine split) and scored there on the test machines over 5 training seeds;
docs/evidence.md has the table. Each entry is the best trial of its family at the size listed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ._pipeline import TrainConfig

#: kind -> TrainConfig keywords (size included); docs/evidence.md, "Maintenance fleet". Test AUPRC over
#: 5 seeds there: ltc 0.885 ± 0.005 (1,026 parameters less wiring zeros), cfc 0.866 ± 0.011 (2,506),
#: gru 0.886 ± 0.005 (1,426), lstm 0.881 ± 0.009 (5,826), transformer 0.888 ± 0.003 (714).
TUNED: dict[str, dict[str, Any]] = {
    "ltc": {"units": 32, "lr": 0.00735, "epochs": 35, "chunk": 32, "rul_weight": 0.349, "batch_size": 10,
            "liquid_options": {"mixed_memory": False, "ode_unfolds": 3}},
    "cfc": {"units": 16, "lr": 0.0259, "epochs": 25, "chunk": 64, "rul_weight": 0.471, "batch_size": 10,
            "liquid_options": {"mixed_memory": True, "mode": "default"}},
    "gru": {"hidden": 16, "lr": 0.00963, "epochs": 30, "chunk": 32, "rul_weight": 0.979, "batch_size": 25},
    "lstm": {"hidden": 32, "lr": 0.00802, "epochs": 30, "chunk": 32, "rul_weight": 0.437, "batch_size": 10},
    "transformer": {"hidden": 8, "lr": 0.00231, "epochs": 40, "chunk": 32, "rul_weight": 0.161, "batch_size": 10},
}  # fmt: skip


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
