"""Metrics and the amplitude-threshold baseline, checked against numbers computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liquidflow.maintenance import (
    AmplitudeAlarm,
    alarm_frame,
    alarm_metrics,
    auprc,
    auroc,
    false_alarm_rate,
    lead_times,
    score_metrics,
    to_sequences,
)


def test_auroc_and_auprc_by_hand():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    # pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4): 3 of 4
    assert auroc(y, s) == pytest.approx(0.75)
    # ranked: 0.8 (+) P=1 R=.5; 0.4 (-); 0.35 (+) P=2/3 R=1 -> AP = .5 * 1 + .5 * 2/3
    assert auprc(y, s) == pytest.approx(0.5 + 1 / 3)
    # ties count one half
    assert auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert np.isnan(auroc([1, 1], [0.2, 0.3]))
    with pytest.raises(ValueError, match="same length"):
        auroc([0, 1], [0.1])


def _toy() -> pd.DataFrame:
    """Two machines, readings every day. A fails at day 10 (H = 3 days); B never fails."""
    rows = []
    rms_a = [1, 1, 5, 1, 1, 1, 2, 4, 6, 8]  # a spike at day 2 (false), rising from day 6
    for d, v in enumerate(rms_a):
        rows.append(("A", float(d * 24), v, 10.0 - d))
    rms_b = [1, 2, 1, 3, 1, 1, 3, 1, 1, 1]
    for d, v in enumerate(rms_b):
        rows.append(("B", float(d * 24), v, np.inf))
    df = pd.DataFrame(rows, columns=["machine_id", "timestamp", "rms", "rul_days"])
    df["fails_within_h"] = (df["rul_days"] <= 3.0).astype(int)
    return df


def test_alarm_metrics_by_hand():
    df = _toy()
    seqs = to_sequences(df, ["rms"], horizon_days=3.0)
    assert seqs.y is not None and seqs.rul is not None
    frame = alarm_frame(np.repeat([0, 1], 10), seqs.flat(seqs.t_days), seqs.flat(seqs.y), seqs.flat(seqs.rul))
    # negative operation: A days 0..6 (6 intervals end at a negative reading) + B 9 intervals = 15 days
    assert frame.exposure_months == pytest.approx(15 / 30)
    score = seqs.flat(seqs.x[:, :, 0])
    # tau = 2.5: onsets at A day 2 (5, false), A day 7 (4, true: rul 3), B days 3 and 6 (3, false)
    n, rate = false_alarm_rate(frame, score, 2.5)
    assert (n, rate) == (3, pytest.approx(3 / 0.5))
    np.testing.assert_allclose(lead_times(frame, score, 2.5), [3.0])
    # budget 2 per machine-month over 0.5 months allows 1 false alarm. tau = 3: only A's spike (5) is a
    # false onset (B's 3s are not > 3); the first positive reading above 3 is A day 7 (4): lead 3 days.
    # tau = 2 would add B days 3 and 6: 3 false alarms, over budget.
    m = alarm_metrics(frame, score, budget=2.0)
    assert m["threshold"] == pytest.approx(3.0)
    assert m["lead_time_days"] == pytest.approx(3.0)
    assert (m["detected"], m["failures"], m["false_alarms"]) == (1, 1, 1)
    # no false alarm allowed: tau = 5 (A's spike is not > 5); the alarm fires at A day 8 (6): lead 2 days
    m = alarm_metrics(frame, score, budget=0.0)
    assert m["threshold"] == pytest.approx(5.0)
    assert m["lead_time_days"] == pytest.approx(2.0)
    assert m["false_alarms"] == 0
    # 6 per month allows 3: tau = 2 (tau = 1 adds A day 6 and B day 1: 5 false alarms)
    m = alarm_metrics(frame, score, budget=6.0)
    assert m["threshold"] == pytest.approx(2.0)
    assert m["false_alarms"] == 3


def test_amplitude_alarm_smoothing_and_tuning_by_hand():
    df = _toy()
    seqs = to_sequences(df, ["rms"], horizon_days=3.0)
    # EMA with span 3 (alpha 0.5) per machine
    ema_a = [1, 1, 3, 2, 1.5, 1.25, 1.625, 2.8125, 4.40625, 6.203125]
    ema_b = [1, 1.5, 1.25, 2.125, 1.5625, 1.28125, 2.140625, 1.5703125, 1.28515625, 1.142578125]
    alarm = AmplitudeAlarm(feature="rms", span=3, feature_names=["rms"])
    np.testing.assert_allclose(alarm.score(seqs), ema_a + ema_b)
    # budget 2: span 3 -> tau = 2.140625 (B's peak, 1 false alarm: A's smoothed spike 3), A alarmed at day 7
    m = score_metrics(seqs, alarm.score(seqs), budget=2.0)
    assert m["threshold"] == pytest.approx(2.140625)
    assert m["lead_time_days"] == pytest.approx(3.0)
    # budget 0: raw rms (span 1) needs tau = 5 -> lead 2; span 3 needs tau = 3 -> A day 8 (4.4) -> lead 2;
    # span 5 (alpha 1/3): B's EMA peaks at 1.91 and A's spike shrinks to 2.33, so tau = 2.33; A's EMA
    # 1, 1, 2.33, 1.89, 1.59, 1.40, 1.60, 2.40, 3.60, 5.07 crosses it at day 7 (2.40): lead 3. Tuning picks 5.
    fitted = AmplitudeAlarm().fit(seqs, ["rms"], budget=0.0, spans=(1, 3, 5))
    assert (fitted.feature, fitted.span) == ("rms", 5)
    assert score_metrics(seqs, fitted.score(seqs), budget=0.0)["lead_time_days"] == pytest.approx(3.0)


def test_unsorted_frame_is_rejected():
    with pytest.raises(ValueError, match="sorted by machine, then by time"):
        alarm_frame(np.array([0, 0]), np.array([2.0, 1.0]), np.array([0, 0]), np.array([np.inf, np.inf]))
