"""Property-based fuzzing (hypothesis, fixed budget, derandomized): layers, data loaders, checkpoint loader.

The property everywhere: bad input raises ValueError/TypeError (FileNotFoundError for paths); good input
gives finite outputs of the promised shape. Nothing else may escape, and nothing may be silently NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from liquidflow.checkpoint import load_model, save_model
from liquidflow.data import IrregularSeries, Preprocessor, SeriesDataset, make_loader
from liquidflow.torch import LTC, CfC
from liquidflow.training import DtGRU, build_model
from liquidflow.wirings import AutoNCP

torch.set_num_threads(1)
FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

torch.manual_seed(0)
LAYERS = {
    "ltc": LTC(3, 5, ode_unfolds=2),
    "cfc": CfC(3, 5, backbone_units=8),
    "cfc_pure_mixed": CfC(3, 5, backbone_units=8, mode="pure", mixed_memory=True),
    "wired_cfc": CfC(3, AutoNCP(7, 2)),
    "gru": DtGRU(3, 5),
}

values = st.one_of(
    st.floats(-1e4, 1e4, allow_nan=False, width=32),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, 1e30]),
)
spans = st.one_of(
    st.floats(0.0001220703125, 1024.0, width=32), st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 1e-30, 1e6])
)


@st.composite
def layer_calls(draw):  # type: ignore[no-untyped-def]
    B, T = draw(st.integers(1, 3)), draw(st.integers(0, 5))
    F = draw(st.sampled_from([3, 3, 3, 2, 4]))
    dense = draw(st.booleans())
    elements = st.floats(-3, 3, width=32) if dense else values
    x = np.array(draw(st.lists(elements, min_size=B * T * F, max_size=B * T * F)), dtype=np.float32)
    x = x.reshape(B, T, F)
    kind = draw(st.sampled_from(["none", "float", "tensor"]))
    ts = None if kind == "none" else draw(spans) if kind == "float" else None
    if kind == "tensor":
        ts = np.array(draw(st.lists(spans, min_size=B * T, max_size=B * T)), dtype=np.float32).reshape(B, T)
    mask = np.array(draw(st.lists(st.booleans(), min_size=B * T, max_size=B * T))).reshape(B, T)
    return x, ts, mask if draw(st.booleans()) else None


@pytest.mark.parametrize("name", list(LAYERS))
@FUZZ
@given(call=layer_calls())
def test_fuzz_layers(name: str, call) -> None:  # type: ignore[no-untyped-def]
    layer = LAYERS[name]
    x, ts, mask = call
    ts_arg = torch.from_numpy(ts) if isinstance(ts, np.ndarray) else ts
    mask_arg = None if mask is None else torch.from_numpy(mask)
    try:
        with torch.no_grad():
            out, state = layer(torch.from_numpy(x), timespans=ts_arg, mask=mask_arg)
    except (ValueError, TypeError) as e:
        assert str(e)  # a message, never a bare error
        event("rejected")
        return
    event("accepted")
    # accepted: the input was valid, so the output must be finite with the promised shape
    B, T, _ = x.shape
    assert out.shape[:2] == (B, T)
    assert torch.isfinite(out).all()
    h = state[0] if isinstance(state, tuple) else state
    assert torch.isfinite(h).all()


@st.composite
def raw_series(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(1, 4))
    F = draw(st.integers(1, 3))
    vals, times = [], []
    for _ in range(n):
        T = draw(st.integers(0, 6))
        reading = st.one_of(st.floats(-100, 100), st.floats(-100, 100), st.floats(-100, 100), st.just(float("nan")))
        v = draw(st.lists(reading, min_size=T * F, max_size=T * F))
        vals.append(np.array(v, dtype=np.float64).reshape(T, F))
        if draw(st.booleans()):  # well-formed: increasing timestamps (gaps may be tiny or huge)
            gaps = draw(st.lists(st.floats(1e-6, 1e6), min_size=T, max_size=T))
            times.append(np.cumsum(np.array(gaps, dtype=np.float64)))
        else:  # anything: unsorted, duplicates, NaN
            t = draw(st.lists(st.one_of(st.floats(-10, 10), st.just(float("nan"))), min_size=T, max_size=T))
            times.append(np.array(t, dtype=np.float64))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return vals, times, labels


@FUZZ
@given(data=raw_series())
def test_fuzz_data_loaders(data) -> None:  # type: ignore[no-untyped-def]
    vals, times, labels = data
    try:
        series = IrregularSeries.from_arrays(vals, times=times, labels=labels, label_level="sequence")
        prep = Preprocessor.fit(series)
    except ValueError as e:
        assert str(e)
        event("rejected")
        return
    event("accepted")
    assert all((s > 0).all() and np.isfinite(s).all() for s in series.timespans)
    ds = SeriesDataset(prep.transform(series), task="classification")
    seen = 0
    for batch in make_loader(ds, batch_size=2):
        assert torch.isfinite(batch["x"]).all() and torch.isfinite(batch["timespans"]).all()
        assert (batch["timespans"] > 0).all()
        lengths = batch["mask"].sum(1)
        assert lengths.tolist() == [len(vals[int(i)]) for i in batch["index"]]
        seen += len(batch["index"])
    assert seen == len(vals)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    path = save_model(build_model("ltc", 2, 2, units=4, ode_unfolds=1), tmp_path_factory.mktemp("ck") / "m.lf")
    return path.read_bytes()


@FUZZ
@given(
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
)
def test_fuzz_checkpoint_loader(checkpoint_bytes: bytes, tmp_path_factory, cut, flips) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(checkpoint_bytes)
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    if cut is not None:
        data = data[: cut % len(data)]
    path: Path = tmp_path_factory.mktemp("fz") / "m.lf"
    path.write_bytes(bytes(data))
    try:
        model, meta = load_model(path)
    except ValueError as e:
        assert str(path) in str(e)  # the error names the file
        event("rejected")
        return
    event("accepted")
    # a flip that only touched tensor bytes still loads: the model is the same architecture
    assert sum(p.numel() for p in model.parameters()) > 0 and isinstance(meta, dict)
