"""The CfC paper's Walker2d imitation task, read from a folder of rollouts the user gives.

Protocol (Hasani et al., "Closed-form continuous-time neural networks", Nature Machine Intelligence
4, 992-1003 (2022), Table 7; the rollouts and the protocol come from Lechner & Hasani, "Learning
long-term dependencies in irregularly-sampled time series", NeurIPS 2020): each ``rollout_NNN.npy``
is a (T, 17) array of MuJoCo Walker2d joint states. The sorted file list is shuffled with
``RandomState(125487)``; 15 % of the files are the test split, the next 10 % validation, the rest
training. Every sequence predicts the next state from the current one (x = states[:-1],
y = states[1:]). Each step is kept with probability 0.9 (``RandomState(891374)``, drawn over the
training, validation and test files in that order); a kept step's elapsed time counts the steps since
the previous kept one (1, or 2, 3 … after drops) and its target stays the true next state. Sequences
are cut into windows of 64 steps with stride 16 (``range(0, T - 64, 16)``). Metric: MSE over all
windows, steps and joints, in the data's own units.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._series import IrregularSeries

FILE_SEED = 125487
DROP_SEED = 891374
FEATURES = 17


def _rollout_files(folder: str | os.PathLike[str]) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"Walker2d data folder {str(root)!r} does not exist (give the folder of rollout_*.npy)")
    files = sorted(p for p in root.iterdir() if p.suffix == ".npy")
    if len(files) < 8:  # 15 % / 10 % of the files must each be at least one file
        raise ValueError(f"{root}: found {len(files)} .npy rollouts; the split needs at least 8 (the paper has 400)")
    return files


def _load(files: list[Path]) -> list[np.ndarray]:
    out = []
    for f in files:
        try:
            arr = np.load(f, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"{f}: not a numpy .npy array (numpy cannot read it as one without pickle)") from e
        if arr.ndim != 2 or arr.shape[1] != FEATURES or arr.shape[0] < 2:
            raise ValueError(f"{f}: a Walker2d rollout is (T >= 2, {FEATURES}); got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{f}: contains NaN or Inf")
        out.append(arr)
    return out


def _perturb(seqs: list[np.ndarray], rng: np.random.RandomState, keep: float) -> list[tuple[np.ndarray, ...]]:
    """Drop steps at random: (x, elapsed, y) per sequence, as the paper's ``perturb_sequences``."""
    out: list[tuple[np.ndarray, ...]] = []
    for arr in seqs:
        x, y = arr[:-1], arr[1:]
        kept, spans = [], []
        skip = 0
        for t in range(x.shape[0]):
            skip += 1
            if rng.rand() < keep:
                kept.append(t)
                spans.append(skip)
                skip = 0
        idx = np.asarray(kept, dtype=np.int64)
        out.append((x[idx], np.asarray(spans, dtype=np.float64), y[idx]))
    return out


def _windows(parts: list[tuple[np.ndarray, ...]], seq_len: int, stride: int) -> IrregularSeries | None:
    xs, ts, ys = [], [], []
    for x, t, y in parts:
        for s in range(0, y.shape[0] - seq_len, stride):
            xs.append(x[s : s + seq_len])
            ts.append(t[s : s + seq_len])
            ys.append(y[s : s + seq_len])
    if not xs:
        return None
    names = [f"q{k}" for k in range(FEATURES)]
    return IrregularSeries.from_arrays(xs, timespans=ts, labels=ys, label_level="step", feature_names=names)


def walker2d_splits(
    folder: str | os.PathLike[str], seq_len: int = 64, stride: int | None = None, keep: float = 0.9
) -> tuple[IrregularSeries, IrregularSeries, IrregularSeries]:
    """(train, val, test) windows of the Walker2d rollouts in ``folder`` by the paper's protocol
    (module docstring). ``seq_len``/``stride`` (default ``seq_len // 4``) set the windows, ``keep``
    the probability that a step is observed. Labels are the next states, per step (forecast)."""
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 2:
        raise ValueError(f"seq_len must be an integer >= 2; got {seq_len!r}")
    stride = seq_len // 4 if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1; got {stride!r}")
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1]; got {keep!r}")
    files = _rollout_files(folder)
    order = list(files)
    np.random.RandomState(FILE_SEED).shuffle(order)  # type: ignore[arg-type]  # the paper's file split
    n_test = int(0.15 * len(order))
    n_valid = int(0.25 * len(order))
    groups = {"test": order[:n_test], "val": order[n_test:n_valid], "train": order[n_valid:]}
    rng = np.random.RandomState(DROP_SEED)
    out = {}
    for name in ("train", "val", "test"):  # the paper draws the drops in this order
        parts = _perturb(_load(groups[name]), rng, keep)
        series = _windows(parts, seq_len, stride)
        if series is None:
            raise ValueError(
                f"{folder}: the {name} split ({len(groups[name])} files) has no rollout longer than "
                f"seq_len={seq_len} steps after dropping; use more or longer rollouts, or a smaller seq_len"
            )
        out[name] = series
    return out["train"], out["val"], out["test"]
