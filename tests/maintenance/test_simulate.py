"""The fleet simulator: determinism, labels, sampling statistics, degradation, burst features."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from liquidflow.maintenance import FEATURES, FleetConfig, SamplingConfig, burst_features, simulate, simulate_fleet
from liquidflow.maintenance._simulate import _degradation, _delivered, _wake_times


@pytest.fixture(scope="module")
def fleet():
    return simulate_fleet(
        n_machines=8, days=30.0, seed=5, fault_prob=0.8, growth_days=(5.0, 15.0), onset_days=(0.0, 15.0)
    )


def test_same_seed_same_fleet_other_seed_differs():
    a = simulate(3, 6.0, seed=11)
    b = simulate(3, 6.0, seed=11)
    pd.testing.assert_frame_equal(a, b)
    c = simulate(3, 6.0, seed=12)
    assert len(a) != len(c) or not np.allclose(a["rms"].to_numpy(), c["rms"].to_numpy())


def test_columns_and_long_format(fleet):
    df = fleet.readings
    assert list(df.columns) == [
        "machine_id",
        "timestamp",
        *FEATURES,
        "fault_type",
        "severity",
        "rul_days",
        "fails_within_h",
    ]
    assert pd.api.types.is_datetime64_any_dtype(df["timestamp"])
    for _, g in df.groupby("machine_id"):
        assert g["timestamp"].is_monotonic_increasing and g["timestamp"].is_unique


def test_labels_match_failure_times(fleet):
    df, machines, H = fleet.readings, fleet.machines.set_index("machine_id"), fleet.config.horizon_days
    n_failing = 0
    for mid, g in df.groupby("machine_id"):
        info = machines.loc[mid]
        if pd.isna(info["failure_time"]):
            assert np.isinf(g["rul_days"]).all() and (g["fails_within_h"] == 0).all()
            assert info["fault_type"] == "none" or (g["severity"] < 1).all()
            continue
        n_failing += 1
        expected = (info["failure_time"] - g["timestamp"]).dt.total_seconds().to_numpy() / 86400.0
        np.testing.assert_allclose(g["rul_days"].to_numpy(), expected, atol=2.0 / 86400)  # timestamps are whole seconds
        assert (g["rul_days"] > 0).all(), "a machine reports nothing after it fails"
        np.testing.assert_array_equal(g["fails_within_h"].to_numpy(), (g["rul_days"] <= H).astype(int))
    assert n_failing >= 3


def test_degradation_is_monotone_and_reaches_one_at_failure():
    cfg = FleetConfig(fault_prob=1.0)
    grid = np.arange(0.0, 24.0 * 120, 1.0)
    for seed in range(20):
        s, t_fail, kind = _degradation(np.random.default_rng(seed), cfg, grid)
        assert kind in ("bearing", "imbalance")
        assert np.all(np.diff(s) >= 0) and s[0] == 0.0
        if math.isfinite(t_fail):
            assert s[grid < t_fail - 1.0].max() < 1.0 and s[grid >= t_fail + 1.0].min() == 1.0
    healthy, t_none, kind = _degradation(np.random.default_rng(0), FleetConfig(fault_prob=0.0), grid)
    assert kind == "none" and t_none == math.inf and not healthy.any()


def test_severity_is_monotone_per_machine_in_the_readings(fleet):
    for _, g in fleet.readings.groupby("machine_id"):
        assert np.all(np.diff(g["severity"].to_numpy()) >= 0)


@pytest.mark.parametrize(
    "cfg", [SamplingConfig(), SamplingConfig(wake_period_h=1.0, jitter=0.5, sleep_prob=0.1, sleep_mean_h=6.0)]
)
def test_wakeup_interval_matches_configuration(cfg):
    t = _wake_times(np.random.default_rng(1), cfg, 24.0 * 4000)
    mean = float(np.diff(t).mean())
    assert mean == pytest.approx(cfg.mean_interval_h(), rel=0.03)
    assert np.diff(t).min() >= cfg.wake_period_h * (1 - cfg.jitter) - 1e-9


@pytest.mark.parametrize(
    "cfg", [SamplingConfig(), SamplingConfig(loss_good=0.0, loss_bad=1.0, p_good_to_bad=0.1, p_bad_to_good=0.2)]
)
def test_packet_loss_rate_and_burstiness_match_configuration(cfg):
    ok = _delivered(np.random.default_rng(2), cfg, 200_000)
    assert 1 - ok.mean() == pytest.approx(cfg.loss_rate(), abs=0.01)
    lost = ~ok
    # bursts: a loss is followed by a loss more often than the average loss rate
    p_loss_after_loss = lost[1:][lost[:-1]].mean()
    assert p_loss_after_loss > 1.5 * lost.mean()


def test_fleet_readings_per_wakeup_follow_the_loss_rate():
    f = simulate_fleet(n_machines=6, days=20.0, seed=0, fault_prob=0.0, loss_good=0.1, loss_bad=0.1)
    m = f.machines
    assert m["n_readings"].sum() / m["n_wakeups"].sum() == pytest.approx(0.9, abs=0.03)
    assert len(f.readings) == m["n_readings"].sum()


def test_burst_features_of_a_pure_sine_by_hand():
    cfg = FleetConfig()
    t = np.arange(cfg.burst_len) / cfg.fs_hz
    fr = 25.0  # 1500 rpm: exactly 5 periods in 2048 samples at 10240 Hz, so the tone sits on a bin
    x = (0.3 * np.sin(2 * np.pi * fr * t))[None, :].astype(np.float32)
    f = burst_features(cfg, x, np.array([1500.0]))
    assert f["rms"][0] == pytest.approx(0.3 / math.sqrt(2), rel=1e-4)
    assert f["peak"][0] == pytest.approx(0.3, rel=1e-3)
    assert f["crest_factor"][0] == pytest.approx(math.sqrt(2), rel=1e-3)
    assert f["kurtosis"][0] == pytest.approx(1.5, rel=1e-3)  # E[sin^4] / E[sin^2]^2 = (3/8) / (1/4)
    assert f["amp_1x"][0] == pytest.approx(0.3, rel=0.02)  # bin-centred tone, Hann-window corrected
    assert f["env_bpfo"][0] < 1e-3


def test_fault_signatures_differ():
    f = simulate_fleet(
        n_machines=40,
        days=40.0,
        seed=1,
        fault_prob=1.0,
        growth_days=(5.0, 10.0),
        onset_days=(0.0, 10.0),
        machine_spread=0.0,
    )
    df = f.readings
    late = df[df["severity"] > 0.5]
    early = df[df["severity"] == 0]
    bear, imb = late[late.fault_type == "bearing"], late[late.fault_type == "imbalance"]
    assert len(bear) and len(imb) and len(early)
    # bearing: impulsive (kurtosis) with envelope energy at BPFO; imbalance: 1x amplitude, not impulsive
    assert bear["kurtosis"].median() > 3 * early["kurtosis"].median()
    assert bear["env_bpfo"].median() > 10 * early["env_bpfo"].median()
    assert imb["amp_1x"].median() > 3 * early["amp_1x"].median()
    assert imb["kurtosis"].median() < 2.0 and imb["env_bpfo"].median() < 2 * early["env_bpfo"].median()


def test_raw_bursts_on_request():
    df = simulate(2, 3.0, seed=0, return_bursts=True)
    bursts = df.attrs["bursts"]
    assert bursts.shape == (len(df), FleetConfig().burst_len)
    rms = np.sqrt((bursts.astype(np.float64) ** 2).mean(axis=1))
    np.testing.assert_allclose(rms, df["rms"].to_numpy(), rtol=0.1)  # features carry 2 % noise


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="n_machines must be an integer >= 1"):
        simulate(0, 5.0)
    with pytest.raises(ValueError, match="sampling.jitter must be in"):
        simulate(2, 5.0, jitter=1.5)
    with pytest.raises(ValueError, match="unknown FleetConfig fields"):
        simulate(2, 5.0, warp_speed=9)


def test_the_data_module_reads_the_fleet():
    from liquidflow.data import IrregularSeries
    from liquidflow.maintenance import to_sequences

    df = simulate(3, 8.0, seed=2)
    series = IrregularSeries.from_dataframe(
        df,
        entity="machine_id",
        time="timestamp",
        features=list(FEATURES),
        target="fails_within_h",
        target_level="step",
        time_unit="h",
    )
    seqs = to_sequences(df, FEATURES)
    assert [str(e) for e in series.entities] == seqs.ids
    for i in range(len(series)):
        n = int(seqs.lengths[i])
        np.testing.assert_allclose(np.asarray(series.values[i]), seqs.x[i, :n], rtol=1e-6)
        np.testing.assert_allclose(np.asarray(series.timespans[i])[1:], seqs.dt_h[i, 1:n], rtol=1e-5)
