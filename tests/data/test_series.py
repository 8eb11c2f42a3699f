"""liquidflow.data: timespans, masks, forward fill, windows, splits, padding, readers, synthetic tasks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from liquidflow.data import (
    IGNORE_INDEX,
    IrregularSeries,
    Preprocessor,
    SeriesDataset,
    collate_series,
    forward_fill,
    make_loader,
)
from liquidflow.data.synthetic import damped_spirals, xor_events


def _long_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity": ["a", "a", "a", "b", "b", "c", "c", "c", "c"],
            "timestamp": [0.0, 0.5, 2.0, 10.0, 10.25, 1.0, 1.1, 1.7, 3.0],
            "temp": [1.0, np.nan, 3.0, 4.0, 5.0, np.nan, 7.0, np.nan, 9.0],
            "load": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
            "label": ["ok", "ok", "fail", "ok", "ok", "ok", "fail", "fail", "ok"],
        }
    )


def test_timespans_equal_timestamp_differences_exactly() -> None:
    s = IrregularSeries.from_dataframe(_long_frame(), target="label", first_timespan=0.3)
    assert s.entities == ["a", "b", "c"]
    for t, dt in zip(s.times, s.timespans, strict=True):
        assert dt[0] == 0.3
        assert np.array_equal(dt[1:], np.diff(t))
    assert np.array_equal(s.timespans[0], [0.3, 0.5, 1.5])
    scaled = IrregularSeries.from_dataframe(_long_frame(), time_scale=0.5)
    gaps = np.concatenate([np.diff(t) for t in scaled.times]) / 0.5
    assert scaled.timespans[2][0] == np.median(gaps)  # default first timespan: the median gap
    assert np.array_equal(scaled.timespans[2][1:], np.diff(np.array([1.0, 1.1, 1.7, 3.0])) / 0.5)


def test_datetime_timestamps_in_minutes_and_sequence_targets() -> None:
    df = pd.DataFrame(
        {
            "id": [1, 1, 1, 2, 2],
            "when": pd.to_datetime(
                ["2024-01-01 00:00", "2024-01-01 00:02", "2024-01-01 00:07", "2024-01-02 10:00", "2024-01-02 10:30"]
            ),
            "v": [1, 2, 3, 4, 5],
            "broken": [0, 0, 0, 1, 1],
        }
    )
    s = IrregularSeries.from_dataframe(
        df, entity="id", time="when", target="broken", target_level="sequence", time_unit="min", first_timespan=1.0
    )
    assert np.array_equal(s.timespans[0], [1.0, 2.0, 5.0])
    assert np.array_equal(s.timespans[1], [1.0, 30.0])
    assert s.label_level == "sequence" and [int(y) for y in s.labels] == [0, 1] and s.classes == [0, 1]
    assert s.feature_names == ["v"]
    # string timestamps are parsed as dates
    s2 = IrregularSeries.from_dataframe(
        df.assign(when=df["when"].astype(str)), entity="id", time="when", time_unit="min", first_timespan=1.0
    )
    assert np.array_equal(s2.timespans[0], s.timespans[0])


def test_clear_errors_for_bad_frames() -> None:
    df = _long_frame()
    with pytest.raises(ValueError, match=r"column\(s\) \['pressure'\] not found"):
        IrregularSeries.from_dataframe(df, features=["pressure"])
    unsorted = df.iloc[[1, 0, 2, 3, 4, 5, 6, 7, 8]]
    with pytest.raises(ValueError, match=r"entity 'a' are not sorted: step 1 has 0\.0 after 0\.5"):
        IrregularSeries.from_dataframe(unsorted)
    fixed = IrregularSeries.from_dataframe(unsorted, sort=True, first_timespan=1.0)
    assert np.array_equal(fixed.times[0], [0.0, 0.5, 2.0])
    dup = df.copy()
    dup.loc[4, "timestamp"] = 10.0
    with pytest.raises(ValueError, match=r"entity 'b' contain a duplicate: 10\.0 at steps 0 and 1"):
        IrregularSeries.from_dataframe(dup)
    text = df.astype({"load": object})
    text.loc[3, "load"] = "high"
    with pytest.raises(ValueError, match="feature column 'load' is not numeric: row 3 holds 'high'"):
        IrregularSeries.from_dataframe(text, features=["temp", "load"])
    with pytest.raises(ValueError, match="changes within entity 'a'"):
        IrregularSeries.from_dataframe(df, target="label", target_level="sequence")
    with pytest.raises(ValueError, match="neither numeric nor parseable"):
        IrregularSeries.from_dataframe(df.assign(timestamp="soon"))
    with pytest.raises(ValueError, match="timespans\\[0\\] must be positive"):
        IrregularSeries.from_arrays([np.zeros((2, 1))], timespans=[np.array([1.0, 0.0])])


def test_csv_and_parquet_match_dataframe(tmp_path) -> None:
    df = _long_frame()
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    ref = IrregularSeries.from_dataframe(df, target="label")
    for s in (
        IrregularSeries.from_csv(tmp_path / "d.csv", target="label"),
        IrregularSeries.from_parquet(tmp_path / "d.parquet", target="label"),
    ):
        assert s.entities == ref.entities and s.classes == ["fail", "ok"]
        for a, b in zip(s.values, ref.values, strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(s.labels, ref.labels, strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        IrregularSeries.from_csv(tmp_path / "nope.csv")


def test_forward_fill_by_value() -> None:
    v = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan], [4.0, 5.0], [np.nan, np.nan]])
    expected = np.array([[np.nan, 1.0], [2.0, 1.0], [2.0, 1.0], [4.0, 5.0], [4.0, 5.0]])
    np.testing.assert_array_equal(forward_fill(v), expected)


def test_preprocessor_fits_on_train_only_and_adds_indicators() -> None:
    s = IrregularSeries.from_dataframe(_long_frame(), target="label", first_timespan=1.0)
    train, other = s.subset([0, 2]), s.subset([1])
    prep = Preprocessor.fit(train)
    temp_train = np.array([1.0, 3.0, 7.0, 9.0])  # observed temp readings of entities a and c
    load_train = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9])
    np.testing.assert_allclose(prep.mean, [temp_train.mean(), load_train.mean()])
    np.testing.assert_allclose(prep.std, [temp_train.std(), load_train.std()])
    assert prep.input_names == ["temp", "load", "temp_missing"]
    np.testing.assert_allclose(prep.input_mean, [temp_train.mean(), load_train.mean(), 0.0])
    np.testing.assert_allclose(prep.input_std[2], 1.0)
    out = prep.transform(train)
    # entity c: temp [nan, 7, nan, 9] -> leading gap gets the train mean, then forward fill
    np.testing.assert_allclose(out.values[1][:, 0], [temp_train.mean(), 7.0, 7.0, 9.0])
    np.testing.assert_array_equal(out.values[1][:, 2], [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(out.values[0][:, 0], [1.0, 1.0, 3.0])
    assert prep.transform(other).values[0].shape == (2, 3)
    again = Preprocessor.from_dict(prep.to_dict())
    np.testing.assert_array_equal(again.transform(train).values[1], out.values[1])
    no_ff = Preprocessor.fit(train, forward_fill=False, indicators=False).transform(train)
    np.testing.assert_allclose(no_ff.values[1][:, 0], [temp_train.mean(), 7.0, temp_train.mean(), 9.0])
    with pytest.raises(ValueError, match="missing values"):
        SeriesDataset(train)


def test_windows_with_stride_and_last_label() -> None:
    vals = [np.arange(7.0)[:, None], np.arange(3.0)[:, None] + 100]
    labels = [np.arange(7) % 2, np.array([1, 1, 0])]
    s = IrregularSeries.from_arrays(
        vals, times=[np.arange(7.0) * 2, np.arange(3.0)], labels=labels, entities=["m1", "m2"], first_timespan=9.0
    )
    w = s.windows(3, stride=2, label="last")
    assert [x[:, 0].tolist() for x in w.values] == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [100, 101, 102]]
    assert [int(y) for y in w.labels] == [0, 0, 0, 0] and w.label_level == "sequence"
    assert w.entities == ["m1", "m1", "m1", "m2"]
    assert w.timespans[0].tolist() == [9.0, 2.0, 2.0] and w.timespans[1].tolist() == [2.0, 2.0, 2.0]
    kept = s.windows(4, stride=3, min_length=3)
    assert [x[:, 0].tolist() for x in kept.values] == [[0, 1, 2, 3], [3, 4, 5, 6], [100, 101, 102]]
    assert kept.labels[1].tolist() == [1, 0, 1, 0]
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        s.windows(3, stride=0)


def test_split_by_entity_has_no_leak() -> None:
    s = IrregularSeries.from_arrays([np.zeros((2, 1))] * 40, entities=[f"e{i // 2}" for i in range(40)])
    parts = s.split_by_entity((0.6, 0.2, 0.2), seed=3)
    sets = [set(p.entities) for p in parts]
    assert [len(x) for x in sets] == [12, 4, 4]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sum(len(p) for p in parts) == 40
    assert [set(p.entities) for p in s.split_by_entity((0.6, 0.2, 0.2), seed=3)] == sets  # seeded


def test_collate_pads_with_masks() -> None:
    s = IrregularSeries.from_arrays(
        [np.ones((3, 2)), 2 * np.ones((1, 2))],
        timespans=[np.array([0.5, 1.5, 2.0]), np.array([0.25])],
        labels=[np.array([1, 0, 1]), np.array([2])],
        label_level="step",
        classes=[0, 1, 2],
    )
    ds = SeriesDataset(s, "step_classification")
    b = collate_series([ds[0], ds[1]], pad_to=4, per_step=True)
    assert b["mask"].tolist() == [[True, True, True, False], [True, False, False, False]]
    assert b["timespans"].tolist() == [[0.5, 1.5, 2.0, 1.0], [0.25, 1.0, 1.0, 1.0]]
    assert b["y"].tolist() == [[1, 0, 1, IGNORE_INDEX], [2, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]]
    assert b["x"][1, 1:].abs().sum() == 0 and b["x"][1, 0].tolist() == [2.0, 2.0]
    loader = make_loader(ds, batch_size=2)
    assert next(iter(loader))["x"].shape == (2, 3, 2)
    with pytest.raises(ValueError, match="pad_to=2 is shorter"):
        collate_series([ds[0]], pad_to=2)


def test_xor_events_encode_runs_and_parity() -> None:
    s = xor_events(300, max_bits=31, seed=5)
    assert s.lengths.max() <= 31 and s.classes == [0, 1]
    for v, dt, y in zip(s.values, s.timespans, s.labels, strict=True):
        runs = np.rint(dt * 32).astype(int)
        np.testing.assert_allclose(runs / 32, dt)  # elapsed = run length / 32
        assert 2 <= runs.sum() <= 31
        bits = v[:, 0]
        assert np.all(bits[1:] != bits[:-1])  # consecutive events alternate
        assert int(y) == int(np.sum(bits * runs)) % 2
    short = xor_events(50, max_bits=8, seed=0)
    assert all(np.rint(dt * 9).sum() <= 8 for dt in short.timespans)


def test_damped_spirals_follow_the_formula() -> None:
    s = damped_spirals(4, length=20, seed=1)
    for v, t, y in zip(s.values, s.times, s.labels, strict=True):
        omega, gamma = y
        r = np.hypot(v[:, 0], v[:, 1])
        np.testing.assert_allclose(np.log(r[1:] / r[:-1]), -gamma * np.diff(t), atol=1e-9)  # exp decay
        z = v[:, 0] + 1j * v[:, 1]
        turn = np.angle(z[1:] / z[:-1] * np.exp(-1j * omega * np.diff(t)))  # rotation left after omega*dt
        np.testing.assert_allclose(turn, 0.0, atol=1e-9)
    holes = damped_spirals(10, length=30, missing=0.3, seed=2)
    frac = np.isnan(np.concatenate(holes.values)).mean()
    assert 0.2 < frac < 0.4


def test_forecast_targets_are_next_readings() -> None:
    s = IrregularSeries.from_arrays(
        [np.arange(5.0)[:, None] ** 2], times=[np.array([0.0, 1.0, 3.0, 4.0, 8.0])], first_timespan=1.0
    )
    f = s.forecast_targets(horizon=1)
    assert f.values[0][:, 0].tolist() == [0, 1, 4, 9]
    assert f.values[0][:, 1].tolist() == [1.0, 2.0, 1.0, 4.0]  # next_dt channel
    assert f.labels[0][:, 0].tolist() == [1, 4, 9, 16] and f.feature_names == ["x0", "next_dt"]
    ds = SeriesDataset(f, "forecast")
    assert ds[0]["y"].shape == (4, 1) and ds[0]["y"].dtype == torch.float32


def test_sharded_sampler_orders_and_shards(monkeypatch) -> None:
    from liquidflow.data import ShardedSampler

    s = ShardedSampler(10, shuffle=True, seed=3)
    first = list(s)
    assert sorted(first) == list(range(10)) and list(s) == first  # same epoch, same order
    s.set_epoch(1)
    assert list(s) != first and list(ShardedSampler(10, shuffle=True, seed=3)) == first
    assert list(ShardedSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]
    shards = []
    for rank in (0, 1, 2):
        monkeypatch.setattr(ShardedSampler, "_world", staticmethod(lambda r=rank: (r, 3)))
        shards.append(list(ShardedSampler(10, shuffle=False)))
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]  # padded by wrapping to equal counts
    assert len(ShardedSampler(10)) == 4
