"""One test per bad-input class, at every public entry point: the error names the argument and the problem.

Layers (LTC, CfC, wired CfC, the dt-aware baselines, SequenceModel), the data containers and loaders,
the checkpoint loader, configs and the C export prefix. The core's own shape/timespan checks are
tested in tests/test_bad_input.py; this file covers what sits around them.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from liquidflow.checkpoint import VERSION, load_model, read_checkpoint, save_model
from liquidflow.data import IrregularSeries, SeriesDataset, collate_series, make_loader
from liquidflow.torch import LTC, CfC
from liquidflow.training import DtGRU, DtLSTM, build_model
from liquidflow.wirings import AutoNCP

torch.set_num_threads(1)


def layers() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "ltc": LTC(3, 6, ode_unfolds=2),
        "cfc": CfC(3, 6, backbone_units=8),
        "cfc_mixed": CfC(3, 6, backbone_units=8, mixed_memory=True),
        "wired_cfc": CfC(3, AutoNCP(8, 2)),
        "lstm": DtLSTM(3, 6),
        "gru": DtGRU(3, 6),
    }


LAYERS = list(layers())


@pytest.fixture(params=LAYERS)
def layer(request) -> torch.nn.Module:
    return layers()[request.param]


# ---------------------------------------------------------------------------------------- values
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_input_raises_with_location(layer, bad: float) -> None:
    x = torch.randn(2, 5, 3)
    x[1, 3, 2] = bad
    with pytest.raises(ValueError, match=rf"input contains {bad} at batch 1, step 3, feature 2; NaN/Inf inputs"):
        layer(x)


def test_nonfinite_input_at_masked_step_is_ignored(layer) -> None:
    """The documented way to skip a missing reading: mask=False there; its value does not matter."""
    torch.manual_seed(1)
    x = torch.randn(2, 5, 3)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[0, 2] = False
    ts = torch.rand(2, 5) + 0.1
    clean, _ = layer(x, timespans=ts, mask=mask)
    x_nan = x.clone()
    x_nan[0, 2] = float("nan")
    dirty, _ = layer(x_nan, timespans=ts, mask=mask)
    assert torch.isfinite(dirty).all()
    torch.testing.assert_close(dirty, clean, rtol=0, atol=0)
    with pytest.raises(ValueError, match="input contains nan at batch 0, step 2, feature 0"):
        layer(x_nan, timespans=ts)  # without the mask it is an error


def test_nonfinite_state_raises() -> None:
    layer = LTC(3, 6, ode_unfolds=2)
    hx = torch.zeros(2, 6)
    hx[1, 4] = float("nan")
    with pytest.raises(ValueError, match=r"hx contains NaN or Inf \(first at index \(1, 4\)\)"):
        layer(torch.randn(2, 5, 3), hx=hx)
    mixed = CfC(3, 6, backbone_units=8, mixed_memory=True)
    with pytest.raises(ValueError, match=r"hx\[1\] contains NaN or Inf"):
        mixed(torch.randn(2, 5, 3), hx=(torch.zeros(2, 6), torch.full((2, 6), float("inf"))))


@pytest.mark.parametrize("grad", [True, False])  # without gradients step() takes a fused fast path
def test_step_rejects_nan_and_bad_dt(grad: bool) -> None:
    torch.set_grad_enabled(grad)
    try:
        _check_step(CfC(3, 6, backbone_units=8))
        _check_step(LTC(3, 6, ode_unfolds=2))
    finally:
        torch.set_grad_enabled(True)


def _check_step(layer: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="input contains nan at batch 0, step 0, feature 1"):
        layer.step(torch.tensor([[0.0, float("nan"), 0.0]]), None, 0.1)
    with pytest.raises(ValueError, match=r"hx contains NaN or Inf \(first at index \(0, 2\)\)"):
        layer.step(torch.zeros(1, 3), torch.tensor([[0.0, 0.0, float("inf"), 0.0, 0.0, 0.0]]), 0.1)
    for dt, match in ((0.0, "got 0.0"), (-1.0, "got -1.0"), (float("nan"), "got nan")):
        with pytest.raises(ValueError, match=f"timespans must be a positive finite number; {match}"):
            layer.step(torch.zeros(1, 3), None, dt)
    with pytest.raises(ValueError, match="timespans must be positive and finite; got -0.5 at batch 1, step 0"):
        layer.step(torch.zeros(2, 3), None, torch.tensor([0.1, -0.5]))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_baselines_validate_time_like_the_core(kind: str) -> None:
    layer = layers()[kind]
    ts = torch.ones(2, 5)
    ts[0, 4] = 0.0
    with pytest.raises(ValueError, match="timespans must be positive and finite; got 0 at batch 0, step 4"):
        layer(torch.randn(2, 5, 3), timespans=ts)
    with pytest.raises(ValueError, match=r"input must be 3-D \(B, T, F\) or 2-D \(T, F\) unbatched; got shape \(3,\)"):
        layer(torch.randn(3))
    with pytest.raises(ValueError, match="input has 4 features .* expects input_size=3"):
        layer(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="input has 0 time steps"):
        layer(torch.randn(2, 0, 3))


# ------------------------------------------------------------------------------- dtype and device
def test_dtype_and_device_mismatch(layer) -> None:
    if isinstance(layer, (LTC, CfC)):
        with pytest.raises(TypeError, match="input has dtype torch.float64 but the module's parameters are"):
            layer(torch.randn(2, 5, 3, dtype=torch.float64))
        with pytest.raises(ValueError, match="input is on meta but the module is on cpu; move one of them"):
            layer(torch.empty(2, 5, 3, device="meta"))
    else:  # the baselines leave dtype to torch's own RNN kernels, which refuse with a clear message too
        with pytest.raises(ValueError, match=r"input dtype \(torch.float64\) does not match weight dtype"):
            layer(torch.randn(2, 5, 3, dtype=torch.float64))


# ------------------------------------------------------------------------------- lengths
def test_one_step_sequences_match_streaming_step(layer) -> None:
    x = torch.randn(4, 1, 3)
    out, h = layer(x, timespans=0.3)
    if isinstance(layer, (LTC, CfC)):
        y, h2 = layer.step(x[:, 0], None, 0.3)
        torch.testing.assert_close(out[:, 0], y)
        torch.testing.assert_close(h, h2)
    assert out.shape[:2] == (4, 1) and torch.isfinite(out).all()


def test_sequence_model_entry_point() -> None:
    model = build_model("cfc", 3, 2, units=6, backbone_units=8)
    with pytest.raises(TypeError, match="x must be a torch.Tensor; got ndarray"):
        model(np.zeros((2, 5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"input has 5 features .* expects input_size=3; got shape \(2, 4, 5\)"):
        model(torch.zeros(2, 4, 5))
    x = torch.zeros(2, 4, 3)
    x[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="input contains nan at batch 0, step 1, feature 0"):
        model(x)
    with pytest.raises(ValueError, match=r"mean must hold 3 finite values"):
        model.set_normalization([0.0, float("nan"), 0.0], None)


# ------------------------------------------------------------------------------- data
def test_series_timestamps_unsorted_duplicate_nonfinite() -> None:
    v = [np.zeros((3, 1))]
    with pytest.raises(ValueError, match=r"timestamps of sequence 0 are not sorted: step 2 has 1.0 after 2.0"):
        IrregularSeries.from_arrays(v, times=[np.array([0.0, 2.0, 1.0])])
    with pytest.raises(ValueError, match="timestamps of sequence 0 contain a duplicate: 1.0 at steps 0 and 1"):
        IrregularSeries.from_arrays(v, times=[np.array([1.0, 1.0, 2.0])])
    with pytest.raises(ValueError, match="timestamps of sequence 0 contain NaN or Inf"):
        IrregularSeries.from_arrays(v, times=[np.array([0.0, np.nan, 2.0])])
    with pytest.raises(ValueError, match=r"timespans\[0\] must be positive and finite"):
        IrregularSeries.from_arrays(v, timespans=[np.array([1.0, 0.0, 1.0])])


def test_series_empty_and_ragged() -> None:
    with pytest.raises(ValueError, match="values is empty; a series needs at least one sequence"):
        IrregularSeries.from_arrays([])
    with pytest.raises(ValueError, match=r"values\[1\] must be \(T, F\) with T >= 1; got shape \(0, 2\)"):
        IrregularSeries.from_arrays([np.zeros((2, 2)), np.zeros((0, 2))])
    with pytest.raises(ValueError, match=r"all sequences need the same number of features; values\[1\] has 3, not 2"):
        IrregularSeries.from_arrays([np.zeros((2, 2)), np.zeros((2, 3))])


def test_dataframe_missing_columns_and_bad_values() -> None:
    df = pd.DataFrame({"entity": [0, 0, 1], "timestamp": [0.0, 1.0, 0.0], "a": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"column\(s\) \['b'\] not found; the data has columns"):
        IrregularSeries.from_dataframe(df, features=["a", "b"])
    with pytest.raises(ValueError, match=r"column\(s\) \['label'\] not found"):
        IrregularSeries.from_dataframe(df, target="label")
    bad = df.assign(a=["1", "x", "3"])
    with pytest.raises(ValueError, match="feature column 'a' is not numeric: row 1 holds 'x'"):
        IrregularSeries.from_dataframe(bad, features=["a"])
    unsorted = pd.DataFrame({"entity": [0, 0], "timestamp": [1.0, 0.0], "a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="timestamps of entity 0 are not sorted"):
        IrregularSeries.from_dataframe(unsorted)
    assert len(IrregularSeries.from_dataframe(unsorted, sort=True)) == 1
    with pytest.raises(ValueError, match="time column 'timestamp' has missing values"):
        IrregularSeries.from_dataframe(df.assign(timestamp=[0.0, None, 1.0]))


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CSV file .*nope.csv' does not exist"):
        IrregularSeries.from_csv(tmp_path / "nope.csv")


def test_loaders_refuse_nan_and_bad_arguments() -> None:
    s = IrregularSeries.from_arrays([np.array([[1.0], [np.nan]])], labels=[0], label_level="sequence")
    with pytest.raises(ValueError, match=r"sequence 0 \(entity 0\) has missing values \(NaN\); fill them"):
        SeriesDataset(s)
    ok = SeriesDataset(IrregularSeries.from_arrays([np.ones((3, 1))], labels=[0], label_level="sequence"))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        make_loader(ok, batch_size=0)
    with pytest.raises(ValueError, match=r"pad_to=2 is shorter than the longest sequence in the batch \(3 steps\)"):
        collate_series([ok[0]], pad_to=2)


# ------------------------------------------------------------------------------- checkpoints
@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return save_model(build_model("cfc", 3, 2, units=6, backbone_units=8), tmp_path / "m.lf", {"note": "x"})


def test_checkpoint_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint .*absent.lf' does not exist"):
        load_model(tmp_path / "absent.lf")


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, 0.9])
def test_checkpoint_truncated(saved: Path, keep: float) -> None:
    data = saved.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    saved.write_bytes(data[:n])
    with pytest.raises(ValueError, match="is not a readable liquidflow checkpoint .truncated, corrupted or a foreign"):
        load_model(saved)


def test_checkpoint_foreign_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.lf"
    text.write_text("hello")
    with pytest.raises(ValueError, match="is not a readable liquidflow checkpoint"):
        load_model(text)
    plain = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), plain)  # a valid torch file, but not ours
    with pytest.raises(ValueError, match="is not a liquidflow checkpoint .no 'liquidflow-checkpoint' format tag"):
        load_model(plain)
    other = tmp_path / "dict.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ValueError, match="no 'liquidflow-checkpoint' format tag"):
        load_model(other)
    z = tmp_path / "archive.lf"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("data.txt", "not torch")
    with pytest.raises(ValueError, match="is not a readable liquidflow checkpoint"):
        load_model(z)


def _rewrite(path: Path, **changes) -> None:
    payload = torch.load(path, weights_only=True)
    payload.update(changes)
    torch.save(payload, path)


def test_checkpoint_future_version_and_damaged_fields(saved: Path) -> None:
    _rewrite(saved, version=VERSION + 1)
    msg = f"has checkpoint format version {VERSION + 1}; this liquidflow reads <= {VERSION}"
    with pytest.raises(ValueError, match=msg):
        read_checkpoint(saved)
    _rewrite(saved, version=VERSION, config="{not json")
    with pytest.raises(ValueError, match="is damaged: its config/metadata is not valid JSON"):
        read_checkpoint(saved)
    _rewrite(saved, config=json.dumps({"core_class": "Evil", "core": {}, "head": None, "task": "classification"}))
    with pytest.raises(ValueError, match="cannot rebuild SequenceModel from its config: unknown core class 'Evil'"):
        load_model(saved)


def test_checkpoint_weights_that_do_not_fit(saved: Path) -> None:
    payload = torch.load(saved, weights_only=True)
    sd = payload["state_dict"]
    key = next(k for k in sd if k.endswith("weight"))
    sd[key] = torch.zeros(1)
    torch.save(payload, saved)
    with pytest.raises(ValueError, match="weights do not match the SequenceModel config"):
        load_model(saved)
    buf = io.BytesIO()
    torch.save({"format": "liquidflow-checkpoint", "version": 1, "class_name": 3}, buf)
    saved.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="is damaged: field 'class_name' is missing or not a str"):
        load_model(saved)


# ------------------------------------------------------------------------------- configs
def test_config_files(tmp_path: Path) -> None:
    from liquidflow.training import TrainConfig

    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {kind: cfc\n")
    with pytest.raises(ValueError, match="bad.yaml: not a valid YAML config"):
        TrainConfig.from_file(bad)
    badj = tmp_path / "bad.json"
    badj.write_text("{")
    with pytest.raises(ValueError, match="bad.json: not a valid JSON config"):
        TrainConfig.from_file(badj)
    unknown = tmp_path / "u.yaml"
    unknown.write_text("trainer: {epochz: 3}\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epochz'\] in section 'trainer'"):
        TrainConfig.from_file(unknown)
