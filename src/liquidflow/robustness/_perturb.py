"""Perturbations of an irregular dataset: noise, dropped samples, jitter, resampling, drift.

Every perturbation is a small frozen dataclass with ``apply(series, rng, source=None) -> series``;
``strength`` is its one knob (0 = no change) and ``name`` its family, so a sweep over strengths
draws one curve. A perturbation never changes the series it is given.

Units: noise and drift are relative to each feature's standard deviation over the series (so one
strength means the same on every feature); jitter is relative to the median timespan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

import numpy as np

from ..data import IrregularSeries


class Resamplable(Protocol):
    """A data source whose underlying continuous signals can be observed again at another rate."""

    @property
    def rate(self) -> float: ...

    def sample(self, rate: float | None = None, seed: int | None = None) -> IrregularSeries: ...


def _check_strength(name: str, value: float, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be <= {upper}; got {value!r}")
    return float(value)


def _feature_std(series: IrregularSeries) -> np.ndarray:
    allv = np.concatenate(series.values)
    std = np.nanstd(allv, axis=0)
    return np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)


def _keep_steps(series: IrregularSeries, keeps: list[np.ndarray]) -> IrregularSeries:
    """Keep the steps where ``keeps[i]`` is True; a dropped step's elapsed time folds into the next kept one."""
    vals, times, spans, labs = [], [], [], []
    for i, keep in enumerate(keeps):
        if not keep.any():  # never empty a sequence: keep its last reading
            keep = keep.copy()
            keep[-1] = True
        elapsed = np.cumsum(series.timespans[i])[keep]  # time since the sequence origin
        spans.append(np.diff(elapsed, prepend=0.0))
        vals.append(series.values[i][keep])
        times.append(series.times[i][keep])
        if series.labels is not None:
            y = series.labels[i]
            labs.append(y[keep] if series.label_level == "step" else y)
    return replace(
        series, values=vals, times=times, timespans=spans, labels=labs if series.labels is not None else None
    )


@dataclass(frozen=True)
class Perturbation:
    """Base class: ``apply(series, rng, source=None)``; ``label`` names it in tables (``name@strength``).

    A family names the field that is its strength in ``knob`` (checked to be a finite number >= 0,
    and <= ``knob_max`` when that is set); :func:`sweep` varies that field.
    """

    name = "none"
    knob: ClassVar[str] = ""
    knob_max: ClassVar[float | None] = None

    def __post_init__(self) -> None:
        if self.knob:
            _check_strength(self.knob, getattr(self, self.knob), self.knob_max)

    @property
    def strength(self) -> float:
        return getattr(self, self.knob) if self.knob else 0.0  # type: ignore[no-any-return]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.strength:g}"

    def apply(
        self, series: IrregularSeries, rng: np.random.Generator, source: Resamplable | None = None
    ) -> IrregularSeries:
        return series


@dataclass(frozen=True)
class Clean(Perturbation):
    """No change: the reference row of every table."""

    name = "clean"

    @property
    def label(self) -> str:
        return "clean"


@dataclass(frozen=True)
class GaussianNoise(Perturbation):
    """Add N(0, (std * feature std)^2) to every observed reading."""

    std: float = 0.1
    name = "gaussian_noise"
    knob = "std"

    def apply(
        self, series: IrregularSeries, rng: np.random.Generator, source: Resamplable | None = None
    ) -> IrregularSeries:
        scale = self.std * _feature_std(series)
        vals = [v + rng.standard_normal(v.shape) * scale for v in series.values]
        return replace(series, values=vals)


@dataclass(frozen=True)
class ImpulseNoise(Perturbation):
    """With probability ``rate`` per reading, add a spike of ``magnitude`` feature stds with a random sign."""

    rate: float = 0.05
    magnitude: float = 5.0
    name = "impulse_noise"
    knob = "rate"
    knob_max = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_strength("magnitude", self.magnitude)

    def apply(
        self, series: IrregularSeries, rng: np.random.Generator, source: Resamplable | None = None
    ) -> IrregularSeries:
        scale = self.magnitude * _feature_std(series)
        vals = []
        for v in series.values:
            hit = rng.random(v.shape) < self.rate
            sign = np.where(rng.random(v.shape) < 0.5, -1.0, 1.0)
            vals.append(v + hit * sign * scale)
        return replace(series, values=vals)


@dataclass(frozen=True)
class DropRandom(Perturbation):
    """Drop each sample with probability ``fraction`` (independently); its dt folds into the next kept step."""

    fraction: float = 0.2
    name = "drop_random"
    knob = "fraction"
    knob_max = 1.0

    def apply(
        self, series: IrregularSeries, rng: np.random.Generator, source: Resamplable | None = None
    ) -> IrregularSeries:
        return _keep_steps(series, [np.asarray(rng.random(v.shape[0]) >= self.fraction) for v in series.values])


@dataclass(frozen=True)
class DropBursts(Perturbation):
    """Drop runs of consecutive samples (sensor outages) covering about ``fraction`` of each sequence.

    Bursts start at random steps with probability ``fraction / mean_burst`` per step and last a
    geometric number of steps with mean ``mean_burst``; dropped dt folds into the next kept step.
    """

    fraction: float = 0.2
    mean_burst: float = 5.0
    name = "drop_bursts"
    knob = "fraction"
    knob_max = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.mean_burst, (int, float)) and self.mean_burst >= 1):
            raise ValueError(f"mean_burst must be a number >= 1; got {self.mean_burst!r}")

    def apply(
        self, series: IrregularSeries, rng: np.random.Generator, source: Resamplable | None = None
    ) -> IrregularSeries:
        keeps = []
        p_start = min(self.fraction / self.mean_burst, 1.0)
        for v in series.values:
            T = v.shape[0]
            keep = np.ones(T, dtype=bool)
            for s in np.flatnonzero(rng.random(T) < p_start):
                keep[s : s + int(rng.geometric(1.0 / self.mean_burst))] = False
            keeps.append(keep)
        return _keep_steps(series, keeps)


@dataclass(frozen=True)
class TimestampJitter(Perturbation):
    """Report each timestamp off by N(0, (std * median dt)^2); the readings stay those of the true times.

    Jittered timestamps are kept strictly increasing (each at least 1e-3 median dt after the previous).
    """

    std: float = 0.2
    name = "timestamp_jitter"
    knob = "std"

    def apply(
        self, series: IrregularSeries, rng: np.random.Generator, source: Resamplable | None = None
    ) -> IrregularSeries:
        med = float(np.median(np.concatenate(series.timespans)))
        gap = 1e-3 * med
        spans, times = [], []
        for i, s in enumerate(series.timespans):
            c = np.cumsum(s)
            cj = c + rng.standard_normal(c.shape) * self.std * med
            cj[0] = max(cj[0], gap)
            for k in range(1, len(cj)):
                cj[k] = max(cj[k], cj[k - 1] + gap)
            spans.append(np.diff(cj, prepend=0.0))
            t = series.times[i]
            ratio = (t[-1] - t[0]) / (c[-1] - c[0]) if len(t) > 1 and c[-1] > c[0] else 1.0
            times.append(t + (cj - c) * ratio)
        return replace(series, timespans=spans, times=times)


@dataclass(frozen=True)
class Drift(Perturbation):
    """Slow sensor drift: gain 1 -> 1 + gain and offset 0 -> offset feature stds, linearly over each sequence.

    ``strength`` is ``max(gain, offset)``; ``Drift.both(s)`` drifts both by ``s``.
    """

    gain: float = 0.0
    offset: float = 0.0
    name = "drift"

    def __post_init__(self) -> None:
        if not (isinstance(self.gain, (int, float)) and np.isfinite(self.gain) and self.gain > -1):
            raise ValueError(f"gain must be a finite number > -1; got {self.gain!r}")
        if not (isinstance(self.offset, (int, float)) and np.isfinite(self.offset)):
            raise ValueError(f"offset must be a finite number; got {self.offset!r}")

    @classmethod
    def both(cls, strength: float) -> Drift:
        return cls(gain=float(strength), offset=float(strength))

    @property
    def strength(self) -> float:
        return float(max(abs(self.gain), abs(self.offset)))

    def apply(
        self, series: IrregularSeries, rng: np.random.Generator, source: Resamplable | None = None
    ) -> IrregularSeries:
        fstd = _feature_std(series)
        vals = []
        for v, s in zip(series.values, series.timespans, strict=True):
            c = np.cumsum(s)
            ramp = ((c - c[0]) / (c[-1] - c[0]) if c[-1] > c[0] else np.zeros_like(c))[:, None]
            vals.append(v * (1.0 + self.gain * ramp) + self.offset * fstd * ramp)
        return replace(series, values=vals)


@dataclass(frozen=True)
class Resample(Perturbation):
    """Observe the same underlying continuous signals at ``factor`` times the training rate.

    Needs a ``source`` that can be re-sampled (e.g. :class:`OscillatorTask`); the series passed in
    is only used for its length. ``strength`` is the factor (1 = the training rate).
    """

    factor: float = 1.0
    name = "sampling_rate"
    knob = "factor"  # checked below (> 0, not >= 0); strength is float(factor)

    def __post_init__(self) -> None:
        if not (isinstance(self.factor, (int, float)) and np.isfinite(self.factor) and self.factor > 0):
            raise ValueError(f"factor must be a positive finite number; got {self.factor!r}")

    @property
    def strength(self) -> float:
        return float(self.factor)

    def apply(
        self, series: IrregularSeries, rng: np.random.Generator, source: Resamplable | None = None
    ) -> IrregularSeries:
        if source is None or not hasattr(source, "sample"):
            raise ValueError(
                "Resample needs a data source whose continuous signals can be observed again "
                "(an object with sample(rate, seed), e.g. liquidflow.robustness.OscillatorTask); "
                "a fixed IrregularSeries cannot be re-sampled"
            )
        return source.sample(rate=source.rate * self.factor, seed=int(rng.integers(2**31)))


def sweep(kind: type[Perturbation], strengths: list[float], **kw: Any) -> list[Perturbation]:
    """One perturbation family at several strengths: ``sweep(GaussianNoise, [0.1, 0.3])``."""
    families = (GaussianNoise, ImpulseNoise, DropRandom, DropBursts, TimestampJitter, Resample)
    if kind is Drift:
        return [Drift.both(s) for s in strengths]
    if kind not in families:
        raise ValueError(f"sweep supports {sorted(k.__name__ for k in [*families, Drift])}; got {kind!r}")
    return [kind(**{kind.knob: s}, **kw) for s in strengths]


def default_perturbations(resample: bool = True) -> list[Perturbation]:
    """The sweep used by ``liquidflow robustness`` and docs/robustness.md."""
    out: list[Perturbation] = [Clean()]
    if resample:
        out += [Resample(0.1), Resample(10.0)]
    out += sweep(GaussianNoise, [0.1, 0.3, 1.0])
    out += sweep(ImpulseNoise, [0.02, 0.1])
    out += sweep(DropRandom, [0.2, 0.5])
    out += sweep(DropBursts, [0.2, 0.5])
    out += sweep(TimestampJitter, [0.2, 0.5])
    out += sweep(Drift, [0.2, 0.5])
    return out
