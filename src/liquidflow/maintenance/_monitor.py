"""Streaming monitor: one state per machine, readings one at a time, in any order across machines."""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..training import RiskModel, risk_from_output, rul_from_output
from ._pipeline import State

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def timestamp_hours(value: Any) -> float:
    """A timestamp as float hours: numbers are hours already; datetimes / ISO strings count from the epoch."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"timestamp must be a number (hours) or a datetime; got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"timestamp must be finite; got {value!r}")
        return v
    if isinstance(value, _dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    try:
        ns = np.datetime64(value, "ns").astype(np.int64)
    except (ValueError, TypeError) as e:
        raise ValueError(f"timestamp must be a number (hours) or a datetime / ISO string; got {value!r}") from e
    return float(ns) / 3.6e12


@dataclass
class Reading:
    """What the monitor says about one reading."""

    machine_id: str
    timestamp: Any
    risk: float  #: probability of failing within the horizon
    rul_days: float  #: predicted remaining useful life (capped at the model's rul_cap_days)
    alarm: bool  #: risk above the alarm threshold
    onset: bool  #: the alarm turned on at this reading
    new_machine: bool  #: the first reading of this machine (fresh state)


class Monitor:
    """Streaming failure-risk monitor over a fleet.

    ``Monitor(model, threshold=None)`` takes a trained :class:`RiskModel` (or the path of a checkpoint
    saved by ``liquidflow maintenance train`` or the demo); ``threshold`` defaults to the alarm threshold saved with the
    model (set at the false-alarm budget on validation machines), else 0.5.

    ``update(machine_id, timestamp, features)`` feeds one reading and returns a :class:`Reading`.
    Readings of different machines can arrive in any order; one machine's readings must arrive in
    time order (an earlier or equal timestamp raises a ValueError). An unseen machine id starts
    from a fresh state, exactly as the batched model starts each machine's sequence.
    """

    def __init__(self, model: RiskModel | str | os.PathLike[str], threshold: float | None = None) -> None:
        extra: dict[str, Any] = {}
        if isinstance(model, (str, os.PathLike)):
            from ._models import load_risk_model

            model, extra = load_risk_model(model)
        if not isinstance(model, RiskModel):
            raise TypeError(f"model must be a RiskModel or a path to one; got {type(model).__name__}")
        self.model = model.eval()
        if threshold is None:
            threshold = float(extra.get("threshold", 0.5))
        self.threshold = float(threshold)
        self._state: dict[str, State] = {}
        self._last: dict[str, float] = {}
        self._alarm: dict[str, bool] = {}

    @property
    def features(self) -> list[str]:
        return list(self.model.features)

    @property
    def machines(self) -> list[str]:
        """Ids of the machines seen so far."""
        return list(self._last)

    def reset(self, machine_id: str | None = None) -> None:
        """Forget one machine (e.g. after a repair) or all of them."""
        if machine_id is None:
            self._state.clear()
            self._last.clear()
            self._alarm.clear()
        else:
            for d in (self._state, self._last, self._alarm):
                d.pop(str(machine_id), None)

    def _vector(self, features: Mapping[str, float] | Sequence[float] | np.ndarray) -> torch.Tensor:
        names = self.model.features
        if isinstance(features, Mapping):
            missing = [n for n in names if n not in features]
            if missing:
                raise ValueError(f"reading is missing features {missing}; the model needs {names}")
            vals = [float(features[n]) for n in names]
        else:
            vals = [float(v) for v in np.asarray(features, dtype=np.float64).ravel()]
            if len(vals) != len(names):
                raise ValueError(f"reading has {len(vals)} features; the model needs {len(names)}: {names}")
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"reading features must be finite; got {dict(zip(names, vals))}")
        return torch.tensor([vals], dtype=torch.float32)

    def update(
        self, machine_id: Any, timestamp: Any, features: Mapping[str, float] | Sequence[float] | np.ndarray
    ) -> Reading:
        """Feed one reading; returns the risk, predicted RUL and alarm state of its machine."""
        mid = str(machine_id)
        t = timestamp_hours(timestamp)
        new = mid not in self._last
        if new:
            dt = self.model.first_dt_h
        else:
            dt = t - self._last[mid]
            if dt <= 0:
                raise ValueError(
                    f"reading for machine {mid!r} at {timestamp!r} is not after its previous reading "
                    f"({dt:+.4g} hours); one machine's readings must arrive in time order"
                )
        x = self._vector(features)
        out, state = self.model.step(x, torch.tensor([dt], dtype=torch.float32), self._state.get(mid))
        self._state[mid] = state
        self._last[mid] = t
        risk = float(risk_from_output(out)[0])
        rul = float(rul_from_output(out, self.model.rul_cap_days)[0])
        alarm = risk > self.threshold
        onset = alarm and not self._alarm.get(mid, False)
        self._alarm[mid] = alarm
        return Reading(mid, timestamp, risk, rul, alarm, onset, new)

    def run(self, df: pd.DataFrame, entity: str = "machine_id", time_col: str = "timestamp") -> pd.DataFrame:
        """Feed every row of ``df`` in its order; returns one row of results per reading."""
        import pandas as pd

        missing = [c for c in (entity, time_col, *self.model.features) if c not in df.columns]
        if missing:
            raise ValueError(f"readings are missing columns {missing}; got {list(df.columns)}")
        X = df[self.model.features].to_numpy(dtype=np.float64)
        out = [self.update(m, t, X[i]) for i, (m, t) in enumerate(zip(df[entity], df[time_col]))]
        return pd.DataFrame(
            {
                entity: [r.machine_id for r in out],
                time_col: df[time_col].to_numpy(),
                "risk": [r.risk for r in out],
                "rul_days": [r.rul_days for r in out],
                "alarm": [r.alarm for r in out],
            },
            index=df.index,
        )
