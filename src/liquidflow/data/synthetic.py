"""Synthetic tasks that need continuous time: event-based XOR and irregularly observed damped spirals.

Event-based bit-stream XOR (Hasani et al., "Closed-form continuous-time neural networks", Nature
Machine Intelligence 2022, the "event-based XOR" experiment): a stream of random bits is compressed
into events, one per run of equal bits, each carrying the bit and the run's length as its elapsed
time. The label is the parity of the ones in the original stream, so a model must count run lengths
it only sees as elapsed time: a model that ignores time cannot beat chance. The paper's protocol
uses streams of 2..31 bits, events padded to 32 with a mask, elapsed time divided by 32, 100k train
and 10k test sequences and 200 epochs; ``max_bits`` makes the task shorter and easier.

Damped spirals: x(t) = A e^(-g t) cos(w t + p), y(t) = A e^(-g t) sin(w t + p), observed at random
times (exponential gaps), with optional noise and missing readings. Sequence-level regression
targets are (w, g); ``series.forecast_targets()`` turns it into a forecasting task.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._series import IrregularSeries


def xor_events(
    n: int,
    max_bits: int = 31,
    min_bits: int = 2,
    seed: int = 0,
    time_scale: float | None = None,
    encoding: str = "run",
) -> IrregularSeries:
    """``n`` event-compressed bit streams of ``min_bits..max_bits`` random bits; label = parity of ones.

    ``encoding="run"``: one event per run of equal bits, carrying the bit, with the run's length /
    ``time_scale`` as its timespan (default ``time_scale = max_bits + 1``, i.e. 32 for the paper's
    protocol). ``encoding="paper"``: the CfC paper's generator (raminmh/CfC
    ``irregular_sampled_datasets.XORData``, event-based): an event at every change of the bit whose
    timespan is the time since the previous event, plus a last event for the trailing run, drawn
    with ``numpy.random.RandomState(seed)`` in the paper's order (its training set is seed 1234984,
    its test set 48736, with ``min_bits=2, max_bits=31``). Pad batches to ``max_bits + 1`` events to
    match the paper (``make_loader(..., pad_to=max_bits + 1)``).
    """
    if encoding not in ("run", "paper"):
        raise ValueError(f"encoding must be 'run' or 'paper'; got {encoding!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1; got {n!r}")
    if not (isinstance(min_bits, int) and isinstance(max_bits, int) and 1 <= min_bits <= max_bits):
        raise ValueError(f"need integers 1 <= min_bits <= max_bits; got min_bits={min_bits!r}, max_bits={max_bits!r}")
    scale = float(max_bits + 1) if time_scale is None else float(time_scale)
    if encoding == "paper":
        return _xor_paper(n, min_bits, max_bits, seed, scale)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_bits, max_bits + 1, size=n)
    values, spans, labels = [], [], []
    for L in lengths:
        bits = rng.integers(0, 2, size=int(L))
        change = np.flatnonzero(np.diff(bits)) + 1
        starts = np.concatenate([[0], change])
        runs = np.diff(np.concatenate([starts, [L]]))
        values.append(bits[starts].astype(np.float64)[:, None])
        spans.append(runs.astype(np.float64))
        labels.append(np.int64(bits.sum() % 2))
    return _bit_series(values, spans, labels, scale)


def _bit_series(values: list[np.ndarray], spans: list[np.ndarray], labels: list[np.int64],
                scale: float) -> IrregularSeries:  # fmt: skip
    """One feature ``bit``, a parity label per sequence."""
    return IrregularSeries.from_arrays(values, timespans=spans, labels=labels, label_level="sequence",
                                       feature_names=["bit"], time_scale=scale, classes=[0, 1])  # fmt: skip


def _xor_paper(n: int, min_bits: int, max_bits: int, seed: int, scale: float) -> IrregularSeries:
    """The paper's event-based XOR samples (see :func:`xor_events`), same draws for the same seed."""
    rng = np.random.RandomState(seed)
    pad = max_bits + 1
    values, spans, labels = [], [], []
    for _ in range(n):
        length = int(rng.randint(low=min_bits, high=max_bits + 1))
        events: list[float] = []
        elapsed: list[float] = []
        last, counter, ones, char = -1, 0, 0, 0
        for _i in range(length):
            counter += 1
            char = int(rng.randint(low=0, high=2))
            ones += char
            if char != last:
                events.append(float(char))
                elapsed.append(float(counter))
                counter = 0
                if len(events) >= pad - 1:
                    break
            last = char
        if counter > 0:  # the trailing run: its length arrives with a last event
            events.append(float(char))
            elapsed.append(float(counter))
        values.append(np.asarray(events)[:, None])
        spans.append(np.asarray(elapsed))
        labels.append(np.int64(ones % 2))
    return _bit_series(values, spans, labels, scale)


def damped_spirals(
    n: int,
    length: int = 48,
    mean_gap: float = 0.25,
    noise: float = 0.0,
    missing: float = 0.0,
    seed: int = 0,
) -> IrregularSeries:
    """``n`` damped 2-D spirals observed at ``length`` random times; labels (omega, gamma) per sequence.

    Gaps between observations are exponential with mean ``mean_gap`` (at least 0.01). ``noise`` adds
    Gaussian noise of that std; ``missing`` is the probability that a reading is NaN (each channel
    independently; the first reading of each channel is always observed).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1; got {n!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an integer >= 2; got {length!r}")
    if not 0.0 <= missing < 1.0:
        raise ValueError(f"missing must be in [0, 1); got {missing!r}")
    rng = np.random.default_rng(seed)
    omega = rng.uniform(0.5, 2.5, size=n)
    gamma = rng.uniform(0.05, 0.5, size=n)
    amp = rng.uniform(0.5, 1.5, size=n)
    phase = rng.uniform(0.0, 2 * np.pi, size=n)
    gaps = np.maximum(rng.exponential(mean_gap, size=(n, length)), 0.01)
    t = np.cumsum(gaps, axis=1)
    env = amp[:, None] * np.exp(-gamma[:, None] * t)
    arg = omega[:, None] * t + phase[:, None]
    vals = np.stack([env * np.cos(arg), env * np.sin(arg)], axis=-1)  # (n, length, 2)
    if noise > 0:
        vals = vals + rng.normal(0.0, noise, size=vals.shape)
    if missing > 0:
        drop = rng.random(vals.shape) < missing
        drop[:, 0, :] = False
        vals = np.where(drop, np.nan, vals)
    labels = np.stack([omega, gamma], axis=1)
    return IrregularSeries.from_arrays(
        list(vals),
        times=list(t),
        labels=list(labels),
        label_level="sequence",
        feature_names=["x", "y"],
        first_timespan=float(mean_gap),
    )


def sensor_readings_frame(
    n_machines: int = 20,
    readings: int = 120,
    mean_gap_hours: float = 1.0,
    missing: float = 0.05,
    fault_fraction: float = 0.5,
    seed: int = 0,
) -> Any:
    """A long-format pandas DataFrame of machine sensor readings at irregular times, with faults.

    Columns: ``machine``, ``timestamp`` (datetimes, exponential gaps), ``temperature``, ``vibration``,
    ``pressure`` (NaN where a reading is missing) and ``fault`` (0/1 per row: 1 once a machine's
    degradation has started). Degrading machines drift slowly upwards in temperature and vibration
    with growing noise; healthy ones fluctuate around their own baseline. Used by the CSV guide.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    frames = []
    start = pd.Timestamp("2024-01-01")
    for m in range(n_machines):
        gaps = np.maximum(rng.exponential(mean_gap_hours, size=readings), 0.05)
        hours = np.cumsum(gaps)
        base = rng.normal([60.0, 1.0, 5.0], [3.0, 0.1, 0.3])
        faulty = rng.random() < fault_fraction
        onset = rng.uniform(0.3, 0.7) * hours[-1] if faulty else np.inf
        since = np.clip(hours - onset, 0.0, None)
        temp = base[0] + 0.8 * np.sin(hours / 12.0) + 0.15 * since + rng.normal(0, 0.5, readings)
        vib = base[1] + 0.02 * since * (1 + 0.5 * rng.standard_normal(readings)) + rng.normal(0, 0.05, readings)
        pres = base[2] + rng.normal(0, 0.2, readings) - 0.01 * since
        vals = np.stack([temp, vib, pres], axis=1)
        vals[rng.random(vals.shape) < missing] = np.nan
        frames.append(
            pd.DataFrame(
                {
                    "machine": f"m{m:03d}",
                    "timestamp": start + pd.to_timedelta(hours, unit="h"),
                    "temperature": vals[:, 0],
                    "vibration": vals[:, 1],
                    "pressure": vals[:, 2],
                    "fault": (hours >= onset).astype(int),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
