"""The irregular-series container: values, timestamps, timespans, labels and entity ids.

One ``IrregularSeries`` holds N sequences of possibly different lengths. Sequence i has

- ``values[i]``: (T_i, F) float64, NaN where a feature was not observed at that step;
- ``times[i]``: (T_i,) strictly increasing timestamps (in the series' time unit);
- ``timespans[i]``: (T_i,) elapsed time before each step: ``times[i][k] - times[i][k-1]`` divided by
  ``time_scale``; the first step gets ``first_timespan`` (by default the median gap of all series);
- ``labels[i]`` (optional): one label per sequence (``label_level="sequence"``, shape () or (O,)) or
  one per step (``"step"``, shape (T_i,) or (T_i, O));
- ``entities[i]``: the entity (machine, patient ...) the sequence belongs to.

Every transformation (``windows``, ``forecast_targets``, ``subset``, splits) returns a new series
and never changes the one it was called on.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

LABEL_LEVELS = ("sequence", "step")


def compute_timespans(times: np.ndarray, first: float, scale: float = 1.0) -> np.ndarray:
    """Elapsed time before each step: ``[first, (t1 - t0)/scale, (t2 - t1)/scale, ...]`` (float64)."""
    t = np.asarray(times, dtype=np.float64)
    out = np.empty_like(t)
    if len(t):
        out[0] = first
        out[1:] = np.diff(t) / scale
    return out


def _check_times(t: np.ndarray, where: str) -> None:
    if t.ndim != 1:
        raise ValueError(f"timestamps of {where} must be 1-D; got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError(f"timestamps of {where} contain NaN or Inf")
    d = np.diff(t)
    if (d < 0).any():
        k = int(np.argmax(d < 0)) + 1
        raise ValueError(
            f"timestamps of {where} are not sorted: step {k} has {float(t[k])} after {float(t[k - 1])} "
            "(sort by time first, e.g. from_dataframe(..., sort=True))"
        )
    if (d == 0).any():
        k = int(np.argmax(d == 0)) + 1
        raise ValueError(
            f"timestamps of {where} contain a duplicate: {float(t[k])} at steps {k - 1} and {k} "
            "(aggregate readings taken at the same time first)"
        )


@dataclass(frozen=True)
class IrregularSeries:
    """N irregularly sampled sequences (see the module docstring); build with ``from_arrays``/``from_dataframe``."""

    values: list[np.ndarray]
    times: list[np.ndarray]
    timespans: list[np.ndarray]
    labels: list[np.ndarray] | None = None
    label_level: str | None = None
    entities: list[Any] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    classes: list[Any] | None = None  # original class labels when labels are class indices

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        values: np.ndarray | Sequence[np.ndarray],
        times: np.ndarray | Sequence[np.ndarray] | None = None,
        timespans: np.ndarray | Sequence[np.ndarray] | None = None,
        labels: np.ndarray | Sequence[Any] | None = None,
        label_level: str | None = None,
        entities: Sequence[Any] | None = None,
        feature_names: Sequence[str] | None = None,
        first_timespan: float | None = None,
        time_scale: float = 1.0,
        classes: Sequence[Any] | None = None,
    ) -> IrregularSeries:
        """Build from a (N, T, F) array or a list of (T_i, F) arrays.

        Give ``times`` (timestamps; timespans are their differences / ``time_scale``) or ``timespans``
        directly, or neither (every step 1.0 apart). ``labels``: one per sequence, or per step with
        ``label_level="step"`` (default: "step" when each label has the sequence's length).
        """
        vals = [np.asarray(v, dtype=np.float64) for v in values]
        if not vals:
            raise ValueError("values is empty; a series needs at least one sequence")
        F = None
        for i, v in enumerate(vals):
            if v.ndim == 1:
                vals[i] = v = v[:, None]
            if v.ndim != 2 or v.shape[0] == 0:
                raise ValueError(f"values[{i}] must be (T, F) with T >= 1; got shape {v.shape}")
            if F is None:
                F = v.shape[1]
            elif v.shape[1] != F:
                raise ValueError(
                    f"all sequences need the same number of features; values[{i}] has {v.shape[1]}, not {F}"
                )
        assert F is not None
        if not (time_scale > 0 and np.isfinite(time_scale)):
            raise ValueError(f"time_scale must be a positive finite number; got {time_scale!r}")
        N = len(vals)
        if times is not None and timespans is not None:
            raise ValueError("give times or timespans, not both")
        if times is not None:
            ts_list = [np.asarray(t, dtype=np.float64) for t in times]
            if len(ts_list) != N:
                raise ValueError(f"times has {len(ts_list)} sequences but values has {N}")
            for i, t in enumerate(ts_list):
                if t.shape != (vals[i].shape[0],):
                    raise ValueError(f"times[{i}] must have shape ({vals[i].shape[0]},); got {t.shape}")
                _check_times(t, f"sequence {i}")
            if first_timespan is None:
                gaps = np.concatenate([np.diff(t) for t in ts_list]) / time_scale
                first_timespan = float(np.median(gaps)) if gaps.size else 1.0
            spans = [compute_timespans(t, float(first_timespan), time_scale) for t in ts_list]
        elif timespans is not None:
            spans = [np.asarray(s, dtype=np.float64).reshape(-1) / time_scale for s in timespans]
            if len(spans) != N:
                raise ValueError(f"timespans has {len(spans)} sequences but values has {N}")
            for i, s in enumerate(spans):
                if s.shape != (vals[i].shape[0],):
                    raise ValueError(f"timespans[{i}] must have shape ({vals[i].shape[0]},); got {s.shape}")
                if not (np.isfinite(s).all() and (s > 0).all()):
                    raise ValueError(f"timespans[{i}] must be positive and finite; got min {s.min()!r}")
            ts_list = [np.cumsum(s) * time_scale for s in spans]
        else:
            spans = [np.ones(v.shape[0]) for v in vals]
            ts_list = [np.arange(v.shape[0], dtype=np.float64) for v in vals]
        if first_timespan is not None and not (first_timespan > 0 and np.isfinite(first_timespan)):
            raise ValueError(f"first_timespan must be positive and finite; got {first_timespan!r}")
        lab = None
        if labels is not None:
            lab = [np.asarray(y) for y in labels]
            if len(lab) != N:
                raise ValueError(f"labels has {len(lab)} entries but values has {N} sequences")
            if label_level is None:
                label_level = (
                    "step"
                    if all(y.ndim >= 1 and y.shape[0] == v.shape[0] for y, v in zip(lab, vals, strict=True))
                    else "sequence"
                )
            if label_level not in LABEL_LEVELS:
                raise ValueError(f"label_level must be one of {list(LABEL_LEVELS)}; got {label_level!r}")
            if label_level == "step":
                for i, y in enumerate(lab):
                    if y.ndim == 0 or y.shape[0] != vals[i].shape[0]:
                        raise ValueError(
                            f"labels[{i}] must have one entry per step ({vals[i].shape[0]}); got {y.shape}"
                        )
        ents = list(entities) if entities is not None else list(range(N))
        if len(ents) != N:
            raise ValueError(f"entities has {len(ents)} entries but values has {N} sequences")
        names = list(feature_names) if feature_names is not None else [f"x{k}" for k in range(F)]
        if len(names) != F:
            raise ValueError(f"feature_names has {len(names)} names but the data has {F} features")
        return cls(
            vals,
            ts_list,
            spans,
            lab,
            label_level if lab is not None else None,
            ents,
            names,
            list(classes) if classes is not None else None,
        )

    @classmethod
    def from_dataframe(
        cls,
        df: Any,
        entity: str | None = "entity",
        time: str = "timestamp",
        features: Sequence[str] | None = None,
        target: str | None = None,
        target_level: str = "step",
        target_kind: str = "auto",
        sort: bool = False,
        time_unit: str = "s",
        time_scale: float = 1.0,
        first_timespan: float | None = None,
    ) -> IrregularSeries:
        """Build from a long-format DataFrame: one row per (entity, timestamp) reading.

        ``features`` default to every numeric column other than entity, time and target. Missing
        readings are NaN. Datetime timestamps become numbers in ``time_unit`` ("s", "ms", "min",
        "h", "D"). ``target`` (optional): one value per row (``target_level="step"``) or constant per
        entity (``"sequence"``). ``target_kind``: "class" (labels become class indices, the original
        values are kept in ``classes``), "real", or "auto" (class when non-float). Unsorted rows are
        an error unless ``sort=True``; duplicate timestamps within an entity are always an error.
        """
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame; got {type(df).__name__}")
        df = df.reset_index(drop=True)  # row numbers in errors are 0-based positions
        needed = [c for c in (entity, time, target) if c is not None]
        if features is not None:
            needed += list(features)
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise ValueError(f"column(s) {missing} not found; the data has columns {list(df.columns)}")
        if target_level not in LABEL_LEVELS:
            raise ValueError(f"target_level must be one of {list(LABEL_LEVELS)}; got {target_level!r}")
        if target_kind not in ("auto", "class", "real"):
            raise ValueError(f"target_kind must be 'auto', 'class' or 'real'; got {target_kind!r}")
        if features is None:
            skip = {entity, time, target}
            features = [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]
            if not features:
                raise ValueError(f"no numeric feature columns found among {list(df.columns)}")
        features = list(features)
        for c in features:
            col = df[c]
            if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
                conv = pd.to_numeric(col, errors="coerce")
                bad = conv.isna() & col.notna()
                if bad.any():
                    row = bad.idxmax()
                    raise ValueError(
                        f"feature column {c!r} is not numeric: row {row} holds {col[row]!r} (dtype {col.dtype})"
                    )
        t = df[time]
        if pd.api.types.is_datetime64_any_dtype(t):
            units = {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0, "D": 86400.0}
            if time_unit not in units:
                raise ValueError(f"time_unit must be one of {sorted(units)}; got {time_unit!r}")
            tnum = (t - pd.Timestamp("1970-01-01", tz=getattr(t.dt, "tz", None))).dt.total_seconds() / units[time_unit]
        elif pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t):
            tnum = t.astype("float64")
        else:
            try:
                with warnings.catch_warnings():  # "could not infer format": dateutil parses each value, fine here
                    warnings.simplefilter("ignore", UserWarning)
                    parsed = pd.to_datetime(t)
            except (ValueError, TypeError) as e:
                raise ValueError(f"time column {time!r} is neither numeric nor parseable as dates: {e}") from e
            return cls.from_dataframe(
                df.assign(**{time: parsed}),
                entity,
                time,
                features,
                target,
                target_level,
                target_kind,
                sort,
                time_unit,
                time_scale,
                first_timespan,
            )
        if tnum.isna().any():
            raise ValueError(f"time column {time!r} has missing values (first at row {tnum.isna().idxmax()})")
        work = pd.DataFrame({"_t": tnum.to_numpy()}, index=df.index)
        work["_e"] = df[entity].to_numpy() if entity is not None else 0
        if sort:
            work = work.sort_values(["_e", "_t"], kind="stable")
        classes: list[Any] | None = None
        y_all = None
        if target is not None:
            ycol = df[target]
            if ycol.isna().any():
                raise ValueError(f"target column {target!r} has missing values (first at row {ycol.isna().idxmax()})")
            is_class = target_kind == "class" or (target_kind == "auto" and not pd.api.types.is_float_dtype(ycol))
            if is_class:
                classes = sorted(ycol.unique().tolist(), key=lambda v: (str(type(v)), v))
                lookup = {c: i for i, c in enumerate(classes)}
                y_all = ycol.map(lookup).to_numpy(dtype=np.int64)
            else:
                y_all = pd.to_numeric(ycol, errors="raise").to_numpy(dtype=np.float64)
        feat = df[features].apply(pd.to_numeric).to_numpy(dtype=np.float64)
        vals, times_l, labs, ents = [], [], [], []
        for ent, g in work.groupby("_e", sort=False):
            rows = g.index.to_numpy()
            tt = g["_t"].to_numpy()
            _check_times(tt, f"entity {ent!r}")
            vals.append(feat[rows])
            times_l.append(tt)
            ents.append(ent)
            if y_all is not None:
                y = y_all[rows]
                if target_level == "sequence":
                    if (y != y[0]).any():
                        raise ValueError(
                            f"target {target!r} changes within entity {ent!r} but target_level='sequence' "
                            "needs one value per entity"
                        )
                    y = y[0]
                labs.append(y)
        return cls.from_arrays(
            vals,
            times=times_l,
            labels=labs if y_all is not None else None,
            label_level=target_level if y_all is not None else None,
            entities=ents,
            feature_names=features,
            first_timespan=first_timespan,
            time_scale=time_scale,
            classes=classes,
        )

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], **kw: Any) -> IrregularSeries:
        """Read a long-format CSV file (see ``from_dataframe`` for the keywords)."""
        import pandas as pd

        if not os.path.isfile(path):
            raise FileNotFoundError(f"CSV file {str(path)!r} does not exist")
        return cls.from_dataframe(pd.read_csv(path), **kw)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str], **kw: Any) -> IrregularSeries:
        """Read a long-format Parquet file (see ``from_dataframe`` for the keywords)."""
        import pandas as pd

        if not os.path.exists(path):
            raise FileNotFoundError(f"Parquet file {str(path)!r} does not exist")
        return cls.from_dataframe(pd.read_parquet(path), **kw)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.values)

    @property
    def num_features(self) -> int:
        return int(self.values[0].shape[1])

    @property
    def lengths(self) -> np.ndarray:
        return np.array([v.shape[0] for v in self.values], dtype=np.int64)

    def subset(self, indices: Sequence[int] | np.ndarray) -> IrregularSeries:
        """The sequences at ``indices`` (in that order)."""
        idx = [int(i) for i in indices]
        return replace(
            self,
            values=[self.values[i] for i in idx],
            times=[self.times[i] for i in idx],
            timespans=[self.timespans[i] for i in idx],
            labels=None if self.labels is None else [self.labels[i] for i in idx],
            entities=[self.entities[i] for i in idx],
        )

    # ------------------------------------------------------------------ transformations
    def windows(
        self, length: int, stride: int | None = None, label: str = "keep", min_length: int | None = None
    ) -> IrregularSeries:
        """Cut every sequence into windows of ``length`` steps, starting every ``stride`` steps.

        Windows never cross sequences (nor entities). A sequence shorter than ``length`` gives one
        window of its whole length if it has at least ``min_length`` steps (default ``length``: it
        is dropped). ``label``: "keep" (step labels are sliced, sequence labels copied) or "last"
        (the step label at the window's last step becomes the window's sequence label).
        The first step of a window keeps its timespan from the original sequence.
        """
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be an integer >= 1; got {length!r}")
        stride = length if stride is None else stride
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be an integer >= 1; got {stride!r}")
        if label not in ("keep", "last"):
            raise ValueError(f"label must be 'keep' or 'last'; got {label!r}")
        if label == "last" and self.label_level != "step":
            raise ValueError("label='last' needs per-step labels (label_level='step')")
        min_length = length if min_length is None else min_length
        vals, times, spans, labs, ents = [], [], [], [], []
        for i, v in enumerate(self.values):
            T = v.shape[0]
            starts = list(range(0, T - length + 1, stride)) if T >= length else ([0] if T >= min_length else [])
            for s in starts:
                e = min(s + length, T)
                vals.append(v[s:e])
                times.append(self.times[i][s:e])
                spans.append(self.timespans[i][s:e])
                ents.append(self.entities[i])
                if self.labels is not None:
                    y = self.labels[i]
                    if self.label_level == "step":
                        labs.append(y[e - 1] if label == "last" else y[s:e])
                    else:
                        labs.append(y)
        if not vals:
            raise ValueError(
                f"no window of length {length} fits: the longest sequence has {int(self.lengths.max())} steps"
            )
        level = self.label_level if label == "keep" else "sequence"
        return replace(
            self,
            values=vals,
            times=times,
            timespans=spans,
            labels=labs if self.labels is not None else None,
            label_level=level if self.labels is not None else None,
            entities=ents,
        )

    def forecast_targets(
        self, horizon: int = 1, features: Sequence[str] | None = None, add_next_timespan: bool = True
    ) -> IrregularSeries:
        """Per-step targets = the readings ``horizon`` steps later (the last ``horizon`` steps are dropped).

        With ``add_next_timespan`` an input channel ``next_dt`` tells each step how far ahead the
        target lies (the time until that future reading), which an irregular forecast needs.
        """
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1; got {horizon!r}")
        names = list(features) if features is not None else list(self.feature_names)
        unknown = [n for n in names if n not in self.feature_names]
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; the series has {self.feature_names}")
        cols = [self.feature_names.index(n) for n in names]
        vals, times, spans, labs, ents = [], [], [], [], []
        for i, v in enumerate(self.values):
            T = v.shape[0]
            if T <= horizon:
                continue
            x = v[: T - horizon]
            if add_next_timespan:
                s = self.timespans[i]
                ahead = np.array([s[k + 1 : k + 1 + horizon].sum() for k in range(T - horizon)])
                x = np.concatenate([x, ahead[:, None]], axis=1)
            vals.append(x)
            times.append(self.times[i][: T - horizon])
            spans.append(self.timespans[i][: T - horizon])
            labs.append(v[horizon:, cols])
            ents.append(self.entities[i])
        if not vals:
            raise ValueError(f"every sequence has <= {horizon} steps; nothing to forecast")
        fnames = list(self.feature_names) + (["next_dt"] if add_next_timespan else [])
        return IrregularSeries(vals, times, spans, labs, "step", ents, fnames, None)

    def split_by_entity(
        self, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
    ) -> tuple[IrregularSeries, ...]:
        """Split into parts by entity (no entity is in two parts); ``fractions`` of entities, shuffled by ``seed``.

        Every part gets at least one entity when there are enough of them.
        """
        fr = np.asarray(fractions, dtype=np.float64)
        if fr.ndim != 1 or len(fr) < 2 or (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
            raise ValueError(f"fractions must be >= 2 non-negative numbers summing to 1; got {list(fractions)}")
        uniq = list(dict.fromkeys(self.entities))
        if len(uniq) < len(fr):
            raise ValueError(f"cannot split {len(uniq)} entities into {len(fr)} parts")
        order = np.random.default_rng(seed).permutation(len(uniq))
        counts = np.floor(fr * len(uniq)).astype(int)
        counts[(fr > 0) & (counts == 0)] = 1
        while counts.sum() > len(uniq):
            counts[int(np.argmax(counts))] -= 1
        counts[0] += len(uniq) - counts.sum()
        bounds = np.concatenate([[0], np.cumsum(counts)])
        part_of = {}
        for p in range(len(fr)):
            for k in order[bounds[p] : bounds[p + 1]]:
                part_of[uniq[int(k)]] = p
        return tuple(self.subset([i for i, e in enumerate(self.entities) if part_of[e] == p]) for p in range(len(fr)))

    def split_random(self, fractions: Sequence[float] = (0.8, 0.2), seed: int = 0) -> tuple[IrregularSeries, ...]:
        """Split sequences at random (for data where every sequence is its own entity)."""
        fr = np.asarray(fractions, dtype=np.float64)
        if fr.ndim != 1 or (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
            raise ValueError(f"fractions must be non-negative numbers summing to 1; got {list(fractions)}")
        order = np.random.default_rng(seed).permutation(len(self))
        bounds = np.round(np.cumsum(np.concatenate([[0.0], fr])) * len(self)).astype(int)
        return tuple(self.subset(np.sort(order[bounds[p] : bounds[p + 1]])) for p in range(len(fr)))

    def summary(self) -> dict[str, Any]:
        """Counts and ranges, for logs and the CLI."""
        lengths = self.lengths
        allv = np.concatenate(self.values)
        allspans = np.concatenate(self.timespans)
        return {
            "sequences": len(self),
            "entities": len(set(self.entities)),
            "features": list(self.feature_names),
            "length_min": int(lengths.min()),
            "length_max": int(lengths.max()),
            "missing_fraction": float(np.isnan(allv).mean()),
            "timespan_min": float(allspans.min()),
            "timespan_max": float(allspans.max()),
            "label_level": self.label_level,
            "classes": self.classes,
        }
