"""Each perturbation checked by value on a tiny series; the oscillator task; evaluate and the table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from liquidflow.data import IrregularSeries
from liquidflow.robustness import (
    Clean,
    Drift,
    DropBursts,
    DropRandom,
    GaussianNoise,
    ImpulseNoise,
    OscillatorTask,
    Resample,
    TimestampJitter,
    default_perturbations,
    evaluate,
    sweep,
)
from liquidflow.training import build_model


def tiny() -> IrregularSeries:
    values = [np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]]), np.array([[5.0, 50.0], [6.0, 60.0]])]
    spans = [np.array([0.5, 1.0, 2.0, 4.0]), np.array([1.0, 3.0])]
    labels = [np.array([0, 1, 0, 1]), np.array([1, 1])]
    return IrregularSeries.from_arrays(values, timespans=spans, labels=labels, label_level="step", classes=[0, 1])


class FixedRng:
    """Stands in for numpy's Generator with scripted draws, so each perturbation is checked by value."""

    def __init__(self, random=None, normal=None, geometric=None) -> None:
        self._random, self._normal, self._geometric = list(random or []), list(normal or []), list(geometric or [])

    def random(self, shape):
        return np.asarray(self._random.pop(0), dtype=float).reshape(shape)

    def standard_normal(self, shape):
        return np.asarray(self._normal.pop(0), dtype=float).reshape(shape)

    def geometric(self, p):
        return self._geometric.pop(0)


def feature_std(s: IrregularSeries) -> np.ndarray:
    return np.concatenate(s.values).std(0)


def test_gaussian_noise_by_value() -> None:
    s = tiny()
    n0, n1 = np.arange(8.0).reshape(4, 2) / 10, -np.ones((2, 2))
    out = GaussianNoise(0.5).apply(s, FixedRng(normal=[n0, n1]))
    std = feature_std(s)
    np.testing.assert_allclose(out.values[0], s.values[0] + n0 * 0.5 * std)
    np.testing.assert_allclose(out.values[1], s.values[1] + n1 * 0.5 * std)
    assert out.timespans[0] is s.timespans[0] and s.values[0][0, 0] == 1.0  # input untouched


def test_impulse_noise_by_value() -> None:
    s = tiny()
    hit0 = np.array([[0.0, 0.9], [0.9, 0.9], [0.9, 0.0], [0.9, 0.9]])  # < 0.1 -> spike at (0,0) and (2,1)
    sign0 = np.array([[0.2, 0.9], [0.9, 0.9], [0.9, 0.9], [0.9, 0.9]])  # < 0.5 -> negative
    rng = FixedRng(random=[hit0, sign0, np.ones((2, 2)), np.ones((2, 2))])
    out = ImpulseNoise(rate=0.1, magnitude=3.0).apply(s, rng)
    std = feature_std(s)
    expected = s.values[0].copy()
    expected[0, 0] -= 3.0 * std[0]
    expected[2, 1] += 3.0 * std[1]
    np.testing.assert_allclose(out.values[0], expected)
    np.testing.assert_allclose(out.values[1], s.values[1])


def test_drop_random_folds_dt_into_next_kept_step() -> None:
    s = tiny()
    # sequence 0: drop steps 0 and 2; sequence 1: drop both (the last step is kept so it is not empty)
    out = DropRandom(0.5).apply(s, FixedRng(random=[[0.1, 0.9, 0.2, 0.7], [0.0, 0.0]]))
    np.testing.assert_allclose(out.values[0], s.values[0][[1, 3]])
    np.testing.assert_allclose(out.timespans[0], [0.5 + 1.0, 2.0 + 4.0])  # elapsed time is preserved
    np.testing.assert_array_equal(out.labels[0], [1, 1])
    np.testing.assert_allclose(out.timespans[1], [4.0])
    np.testing.assert_allclose(out.values[1], [[6.0, 60.0]])
    np.testing.assert_allclose(out.times[0], s.times[0][[1, 3]])
    for a, b in zip(out.timespans, s.timespans, strict=True):
        assert a.sum() == pytest.approx(b.sum())


def test_drop_bursts_drops_runs() -> None:
    s = tiny()
    # sequence 0: a burst starts at step 1 and lasts 2 steps; sequence 1: no burst
    out = DropBursts(fraction=0.5, mean_burst=2.0).apply(
        s, FixedRng(random=[[0.9, 0.1, 0.9, 0.9], [0.9, 0.9]], geometric=[2])
    )
    np.testing.assert_allclose(out.values[0], s.values[0][[0, 3]])
    np.testing.assert_allclose(out.timespans[0], [0.5, 1.0 + 2.0 + 4.0])
    np.testing.assert_allclose(out.values[1], s.values[1])


def test_drop_bursts_fraction_on_long_sequences() -> None:
    s = IrregularSeries.from_arrays([np.zeros((4000, 1))])
    out = DropBursts(fraction=0.3, mean_burst=5.0).apply(s, np.random.default_rng(0))
    dropped = 1 - len(out.values[0]) / 4000
    assert 0.2 < dropped < 0.35  # overlapping bursts make it a little under the nominal fraction
    spans = out.timespans[0]
    burst_lengths = spans[spans > 1] - 1  # a span of L + 1 follows a burst of L dropped samples
    assert burst_lengths.mean() > 4  # runs, not isolated drops
    scattered = DropRandom(0.3).apply(s, np.random.default_rng(0)).timespans[0]
    assert (scattered[scattered > 1] - 1).mean() < 2


def test_timestamp_jitter_by_value_and_monotone() -> None:
    s = tiny()
    med = float(np.median(np.concatenate(s.timespans)))  # 1.5
    e0 = np.array([0.1, -0.2, 0.0, 0.3])
    out = TimestampJitter(1.0).apply(s, FixedRng(normal=[e0, np.array([0.0, -10.0])]))
    c = np.cumsum(s.timespans[0]) + e0 * med
    np.testing.assert_allclose(out.timespans[0], np.diff(c, prepend=0.0))
    np.testing.assert_allclose(out.values[0], s.values[0])  # readings are those of the true times
    assert (out.timespans[1] > 0).all()  # a huge negative jitter is clamped: timestamps stay increasing
    np.testing.assert_allclose(out.timespans[1], [1.0, 1e-3 * med])


def test_drift_by_value() -> None:
    s = tiny()
    out = Drift(gain=0.5, offset=2.0).apply(s, np.random.default_rng(0))
    c = np.cumsum(s.timespans[0])
    ramp = ((c - c[0]) / (c[-1] - c[0]))[:, None]
    np.testing.assert_allclose(out.values[0], s.values[0] * (1 + 0.5 * ramp) + 2.0 * feature_std(s) * ramp)
    np.testing.assert_allclose(out.values[0][0], s.values[0][0])  # no drift at the first reading
    assert Drift.both(0.3).strength == 0.3


def test_clean_and_labels() -> None:
    s = tiny()
    assert Clean().apply(s, np.random.default_rng(0)) is s
    assert Clean().label == "clean"
    assert GaussianNoise(0.3).label == "gaussian_noise@0.3"
    assert [p.label for p in sweep(DropRandom, [0.1, 0.2])] == ["drop_random@0.1", "drop_random@0.2"]
    assert default_perturbations()[0].label == "clean"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: GaussianNoise(-1.0), "std must be a finite number >= 0; got -1.0"),
        (lambda: DropRandom(1.5), "fraction must be <= 1.0; got 1.5"),
        (lambda: DropBursts(0.2, mean_burst=0.5), "mean_burst must be a number >= 1"),
        (lambda: Resample(0.0), "factor must be a positive finite number; got 0.0"),
        (lambda: Drift(gain=-2.0), "gain must be a finite number > -1"),
        (lambda: ImpulseNoise(rate=float("nan")), "rate must be a finite number >= 0"),
    ],
)
def test_bad_perturbation_arguments(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_resample_needs_a_source() -> None:
    with pytest.raises(ValueError, match="Resample needs a data source whose continuous signals can be observed"):
        Resample(10.0).apply(tiny(), np.random.default_rng(0))


def test_oscillator_task_resamples_the_same_signals() -> None:
    task = OscillatorTask.make(6, rate=10.0, duration=4.0, seed=3)
    base = task.series
    assert base.lengths.tolist() == [40] * 6
    fast = Resample(10.0).apply(base, np.random.default_rng(0), task)
    slow = Resample(0.1).apply(base, np.random.default_rng(0), task)
    assert fast.lengths.tolist() == [400] * 6 and slow.lengths.tolist() == [4] * 6
    for s in (base, fast, slow):
        for i in range(6):  # the readings are the same continuous signal, observed at other times
            t = np.cumsum(s.timespans[i])
            x = task.amp[i] * np.exp(-task.gamma[i] * t) * np.cos(task.omega[i] * t + task.phase[i])
            np.testing.assert_allclose(s.values[i][:, 0], x)
        assert [int(y) for y in s.labels] == task.labels.tolist()
    np.testing.assert_allclose(np.mean(np.concatenate(fast.timespans)), 0.01, rtol=0.05)
    # the bands (rad/s) hold the frequencies
    for w, k in zip(task.omega, task.labels, strict=True):
        lo, hi = ((0.6, 1.0), (1.4, 1.8), (2.2, 2.6))[k]
        assert lo <= w <= hi


class Oracle(torch.nn.Module):
    """A 'model' that reads the label off the first feature: accuracy is known exactly."""

    task = "classification"
    per_step = False

    def forward(self, x, timespans=None, mask=None):
        first = x[:, 0, 0]
        return torch.stack([-first, first], dim=-1)


def test_evaluate_table_and_plot(tmp_path) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=40)
    values = [np.full((5, 1), 1.0 if y else -1.0) for y in labels]
    s = IrregularSeries.from_arrays(values, labels=list(labels), label_level="sequence", classes=[0, 1])
    model = build_model("gru", 1, 2, units=4)
    table = evaluate({"oracle": Oracle(), "gru": model}, s, [GaussianNoise(0.0), GaussianNoise(100.0)], seed=1)
    assert table.value("oracle", "clean") == 1.0
    assert table.value("oracle", "gaussian_noise@0") == 1.0
    assert 0.3 < table.value("oracle", "gaussian_noise@100") < 0.7  # noise 100x the signal: a coin flip
    md = table.to_markdown()
    assert md.splitlines()[0] == "| perturbation | mean steps | oracle | gru |"
    assert "| clean | 5 | 1.000 |" in md
    frame = table.to_frame()
    assert len(frame) == 6 and set(frame["model"]) == {"oracle", "gru"}
    png = table.plot(tmp_path / "plot.png")
    assert png.stat().st_size > 1000
    with pytest.raises(ValueError, match="models is empty"):
        evaluate({}, s, [])
