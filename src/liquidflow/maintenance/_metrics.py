"""Metrics for failure prediction on a fleet: ranking (AUROC, AUPRC) and alarms (lead time at a
false-alarm budget per machine-month). Plain numpy, so each number can be checked by hand.

Definitions (docs/maintenance.md):

- a reading is *positive* when its machine fails within the horizon H after it (``fails_within_h``);
- an alarm is *on* at a reading when its score exceeds the threshold tau; an alarm *onset* is a
  reading where the alarm is on and was off at the machine's previous reading (or it is the first);
- a *false alarm* is an onset at a negative reading; the false-alarm rate is their number divided by
  the machine-months of negative operation (the sum, per machine, of the intervals that end at a
  negative reading, over 30 days);
- tau is the lowest threshold such that every threshold at or above it keeps the false-alarm rate
  within the budget (scanning candidate thresholds from the top);
- a failing machine's *lead time* is the RUL (days) at its first positive reading with the alarm on,
  0 if the alarm never fires within H before the failure (so lead time <= H).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAYS_PER_MONTH = 30.0


def _check(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(bool).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores must have the same length; got {y.shape[0]} and {s.shape[0]}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (no NaN or inf)")
    return y, s


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties counted as one half); NaN if one class is empty."""
    y, s = _check(y, score)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties
    bounds = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(s)]])
    avg = (starts + ends + 1) / 2.0  # 1-based mean rank of each tie group
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auprc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision: sum over distinct thresholds of (recall step) x precision; NaN without positives."""
    y, s = _check(y, score)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]
    tp = np.cumsum(ys)[last_of_group]
    fp = (last_of_group + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / n_pos
    d_recall = np.diff(np.r_[0.0, recall])
    return float((d_recall * precision).sum())


@dataclass
class AlarmFrame:
    """Readings of a fleet sorted by machine then time, as arrays (built by :func:`alarm_frame`)."""

    machine: np.ndarray  #: integer machine index per reading
    t_days: np.ndarray  #: reading time in days
    positive: np.ndarray  #: fails within H
    rul_days: np.ndarray  #: remaining useful life (inf if the machine does not fail)
    first: np.ndarray  #: True at each machine's first reading
    exposure_months: float  #: machine-months of negative operation


def alarm_frame(machine: np.ndarray, t_days: np.ndarray, positive: np.ndarray, rul_days: np.ndarray) -> AlarmFrame:
    """Prepare per-reading arrays (must already be sorted by machine, then time)."""
    machine = np.asarray(machine)
    _, mid = np.unique(machine, return_inverse=True)
    t = np.asarray(t_days, dtype=np.float64)
    pos = np.asarray(positive).astype(bool)
    first = np.r_[True, mid[1:] != mid[:-1]]
    if np.any(~first & (np.diff(t, prepend=t[0]) < 0)):
        raise ValueError("readings must be sorted by machine, then by time")
    gaps = np.where(first, 0.0, np.diff(t, prepend=t[0]))
    exposure = float(gaps[~pos].sum()) / DAYS_PER_MONTH
    return AlarmFrame(mid, t, pos, np.asarray(rul_days, dtype=np.float64), first, exposure)


def false_alarm_rate(frame: AlarmFrame, score: np.ndarray, tau: float) -> tuple[int, float]:
    """Number of false alarms and false alarms per machine-month at threshold tau."""
    on = np.asarray(score) > tau
    prev = np.r_[False, on[:-1]] & ~frame.first
    onsets = on & ~prev
    n = int((onsets & ~frame.positive).sum())
    return n, n / max(frame.exposure_months, 1e-12)


def alarm_threshold(frame: AlarmFrame, score: np.ndarray, budget: float, n_candidates: int = 400) -> float:
    """The lowest threshold with the false-alarm rate within ``budget`` per machine-month for it and
    every candidate threshold above it."""
    if budget < 0:
        raise ValueError(f"budget (false alarms per machine-month) must be >= 0; got {budget}")
    s = np.asarray(score, dtype=np.float64)
    uniq = np.unique(s)
    if len(uniq) > n_candidates:
        uniq = np.unique(np.quantile(s, np.linspace(0.0, 1.0, n_candidates)))
    tau = float(uniq[-1])  # nothing is above the maximum: no alarms
    for cand in uniq[::-1]:
        _, rate = false_alarm_rate(frame, s, float(cand))
        if rate > budget:
            break
        tau = float(cand)
    return tau


def lead_times(frame: AlarmFrame, score: np.ndarray, tau: float) -> np.ndarray:
    """Lead time (days) of each failing machine (machines with a positive reading), in machine order."""
    on = np.asarray(score) > tau
    out = []
    for m in np.unique(frame.machine[frame.positive]):
        sel = (frame.machine == m) & frame.positive
        hits = np.flatnonzero(sel & on)
        out.append(float(frame.rul_days[hits[0]]) if len(hits) else 0.0)
    return np.asarray(out)


def alarm_metrics(frame: AlarmFrame, score: np.ndarray, budget: float) -> dict[str, float]:
    """Threshold at the budget, then lead time, detections and the false-alarm rate achieved."""
    tau = alarm_threshold(frame, score, budget)
    leads = lead_times(frame, score, tau)
    n_fa, rate = false_alarm_rate(frame, score, tau)
    return {
        "threshold": tau,
        "lead_time_days": float(leads.mean()) if len(leads) else float("nan"),
        "median_lead_time_days": float(np.median(leads)) if len(leads) else float("nan"),
        "detected": int((leads > 0).sum()),
        "failures": len(leads),
        "false_alarms": n_fa,
        "false_alarms_per_machine_month": rate,
    }
