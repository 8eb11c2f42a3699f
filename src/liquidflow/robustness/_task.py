"""A continuous-time task whose signals can be observed at any rate: damped oscillators by frequency band.

Each sequence is one damped oscillator ``x(t) = A e^(-g t) cos(w t + p)`` observed on [0, duration]
at irregular times (gaps uniform in [0.5, 1.5] / rate). The label is the frequency band of ``w``
(``bands``, rad/s); amplitude, damping and phase are nuisances. Only one channel is observed, so a
model must relate the change between readings to the time elapsed between them: a model that counts
steps instead of integrating time sees a different frequency at another sampling rate.

The default bands stay below the Nyquist frequency of 1 Hz sampling (pi rad/s), so the task is
still solvable at 0.1x the 10 Hz training rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import IrregularSeries

DEFAULT_BANDS: tuple[tuple[float, float], ...] = ((0.6, 1.0), (1.4, 1.8), (2.2, 2.6))


@dataclass(frozen=True)
class OscillatorTask:
    """``n`` damped oscillators (fixed by ``seed``) that :meth:`sample` observes at any ``rate`` (Hz)."""

    omega: np.ndarray
    gamma: np.ndarray
    amp: np.ndarray
    phase: np.ndarray
    labels: np.ndarray
    duration: float
    rate: float
    seed: int

    @classmethod
    def make(
        cls,
        n: int,
        rate: float = 10.0,
        duration: float = 10.0,
        bands: tuple[tuple[float, float], ...] = DEFAULT_BANDS,
        seed: int = 0,
    ) -> OscillatorTask:
        """Draw ``n`` oscillators (balanced over ``bands``); ``rate`` (Hz) is the rate of :attr:`series`."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1; got {n!r}")
        for name, value in (("rate", rate), ("duration", duration)):
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number; got {value!r}")
        if not bands or any(len(b) != 2 or not 0 < b[0] < b[1] for b in bands):
            raise ValueError(f"bands must be (low, high) pairs with 0 < low < high; got {bands!r}")
        rng = np.random.default_rng(seed)
        labels = rng.permutation(np.arange(n) % len(bands)).astype(np.int64)
        lo = np.array([bands[k][0] for k in labels])
        hi = np.array([bands[k][1] for k in labels])
        return cls(
            omega=rng.uniform(lo, hi),
            gamma=rng.uniform(0.0, 0.15, size=n),
            amp=rng.uniform(0.5, 1.5, size=n),
            phase=rng.uniform(0.0, 2 * np.pi, size=n),
            labels=labels,
            duration=float(duration),
            rate=float(rate),
            seed=int(seed),
        )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def signal(self, i: int, t: np.ndarray) -> np.ndarray:
        """The continuous signal of sequence ``i`` at times ``t`` -> (len(t), 1)."""
        x = self.amp[i] * np.exp(-self.gamma[i] * t) * np.cos(self.omega[i] * t + self.phase[i])
        return x[:, None]

    def sample(self, rate: float | None = None, seed: int | None = None) -> IrregularSeries:
        """Observe every oscillator at mean ``rate`` Hz (default: the task's rate) at irregular times."""
        rate = self.rate if rate is None else rate
        if not (isinstance(rate, (int, float)) and np.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive finite number (Hz); got {rate!r}")
        rng = np.random.default_rng(self.seed + 7919 if seed is None else seed)
        steps = max(round(self.duration * rate), 2)
        values, spans = [], []
        for i in range(len(self)):
            gaps = rng.uniform(0.5, 1.5, size=steps) / rate  # the first gap: time since t = 0
            values.append(self.signal(i, np.cumsum(gaps)))
            spans.append(gaps)
        return IrregularSeries.from_arrays(
            values,
            timespans=spans,
            labels=list(self.labels),
            label_level="sequence",
            feature_names=["x"],
            classes=list(range(self.num_classes)),
        )

    @property
    def series(self) -> IrregularSeries:
        """The observations at the task's own rate (fixed: the same on every call)."""
        return self.sample()
