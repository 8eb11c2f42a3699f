"""The papers' data protocols: Walker2d splits from a folder, the event-based XOR generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liquidflow.data import walker2d_splits
from liquidflow.data.synthetic import xor_events


def _rollouts(folder: Path, n: int = 12, T: int = 50, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for k in range(n):
        a = np.cumsum(rng.normal(size=(T + k, 17)), axis=0)
        np.save(folder / f"rollout_{k:03d}.npy", a)
        arrays.append(a)
    return arrays


def test_walker2d_split_windows_and_targets(tmp_path: Path) -> None:
    arrays = _rollouts(tmp_path)
    train, val, test = walker2d_splits(tmp_path, seq_len=8, stride=4)
    # the paper's file split: 15 % test, 10 % validation (int() of the fractions), by RandomState(125487)
    order = sorted(tmp_path.glob("*.npy"))
    np.random.RandomState(125487).shuffle(order)  # type: ignore[arg-type]
    n_test, n_valid = int(0.15 * 12), int(0.25 * 12)
    assert (n_test, n_valid) == (1, 3)
    # every window: the next true state as target, elapsed steps that match the kept positions
    lookup = {int(p.stem.split("_")[1]): arrays[int(p.stem.split("_")[1])] for p in order}
    for series in (train, val, test):
        for x, dt, y in zip(series.values, series.timespans, series.labels, strict=True):  # type: ignore[arg-type]
            assert x.shape == (8, 17) and np.asarray(y).shape == (8, 17)
            assert set(np.unique(dt)) <= set(range(1, 20))
            src = next(a for a in lookup.values() if any(np.array_equal(x[0], r) for r in a))
            start = next(i for i, r in enumerate(src) if np.array_equal(x[0], r))
            pos = start + np.concatenate([[0], np.cumsum(dt[1:])]).astype(int)
            np.testing.assert_array_equal(x, src[pos])
            np.testing.assert_array_equal(np.asarray(y), src[pos + 1])
    # about 10 % of the steps are dropped (elapsed > 1 after a drop)
    spans = np.concatenate([np.asarray(t)[1:] for t in train.timespans])
    assert 0.03 < np.mean(spans > 1) < 0.2
    again = walker2d_splits(tmp_path, seq_len=8, stride=4)
    np.testing.assert_array_equal(np.stack(again[0].values), np.stack(train.values))


def test_walker2d_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        walker2d_splits(tmp_path / "nope")
    _rollouts(tmp_path / "few", n=5)
    with pytest.raises(ValueError, match="needs at least 8"):
        walker2d_splits(tmp_path / "few")
    _rollouts(tmp_path / "short", n=10, T=5)
    with pytest.raises(ValueError, match="no rollout longer than seq_len=64"):
        walker2d_splits(tmp_path / "short")
    bad = tmp_path / "bad"
    _rollouts(bad, n=10)
    np.save(bad / "rollout_003.npy", np.zeros((20, 5)))
    with pytest.raises(ValueError, match=r"rollout_003.npy: a Walker2d rollout is \(T >= 2, 17\)"):
        walker2d_splits(bad)


def _paper_reference(n: int, seed: int, pad: int = 32) -> list[tuple[list[float], list[float], int]]:
    """The paper's event-based sampler, transcribed from its description (numpy RandomState)."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        label, last, counter, ev, el = 0, -1, 0, [], []
        length = rng.randint(low=2, high=pad)
        char = 0
        for _i in range(length):
            counter += 1
            char = int(rng.randint(low=0, high=2))
            label += char
            if last != char:
                ev.append(float(char))
                el.append(float(counter))
                counter = 0
                if len(ev) >= pad - 1:
                    break
            last = char
        if counter > 0:
            ev.append(float(char))
            el.append(float(counter))
        out.append((ev, el, label % 2))
    return out


def test_xor_paper_encoding_matches_the_papers_sampler() -> None:
    s = xor_events(300, 31, seed=1234984, encoding="paper")
    ref = _paper_reference(300, 1234984)
    for v, t, y, (ev, el, lab) in zip(s.values, s.timespans, s.labels, ref, strict=True):  # type: ignore[arg-type]
        assert v[:, 0].tolist() == ev
        np.testing.assert_allclose(np.asarray(t) * 32, el)
        assert int(y) == lab
    # the label is recoverable from the events: run k-1 lasts dt[k]; the last run one step more
    for v, t, y in zip(s.values, s.timespans, s.labels, strict=True):  # type: ignore[arg-type]
        e, d = v[:, 0], np.rint(np.asarray(t) * 32)
        ones = float(np.sum(e[:-1] * d[1:])) + float(e[-1])
        assert int(ones) % 2 == int(y)
    with pytest.raises(ValueError, match="encoding must be 'run' or 'paper'"):
        xor_events(3, encoding="events")


def test_xor_time_scale_sets_the_unit_of_elapsed_time() -> None:
    from liquidflow.training import TrainConfig
    from liquidflow.training._pipeline import prepare_data

    base = {"source": "xor", "xor_encoding": "paper", "max_bits": 31, "n_train": 20, "n_val": 5, "n_test": 5}
    default = prepare_data(TrainConfig.from_dict({"data": base}).data)
    steps = prepare_data(TrainConfig.from_dict({"data": {**base, "xor_time_scale": 1.0}}).data)
    for a, b in zip(default.train.series.timespans, steps.train.series.timespans, strict=True):
        np.testing.assert_allclose(np.asarray(a) * 32, b)


def test_walker2d_text_file_named_npy(tmp_path: Path) -> None:
    _rollouts(tmp_path, n=10)
    (tmp_path / "rollout_004.npy").write_text("hello\n")
    with pytest.raises(ValueError, match=r"rollout_004.npy: not a numpy .npy array"):
        walker2d_splits(tmp_path)
