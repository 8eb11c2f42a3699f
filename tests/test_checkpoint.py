"""liquidflow.checkpoint: safe single-file round trips and clear errors for bad files."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from liquidflow.checkpoint import load_model, read_checkpoint, save_model
from liquidflow.torch import LTC, CfC
from liquidflow.training import build_model
from liquidflow.wirings import AutoNCP


def _outputs(model, x, ts):
    with torch.no_grad():
        out = model(x, timespans=ts)
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize(
    "make",
    [
        lambda: build_model("cfc", 3, 2, units=10, wiring="autoncp"),
        lambda: build_model("ltc", 3, 2, units=6, task="forecast"),
        lambda: build_model("lstm", 3, 2, units=6),
        lambda: build_model("gru", 3, 2, units=6, task="regression"),
        lambda: build_model("transformer", 3, 2, units=8, num_heads=2),
        lambda: CfC(3, 8, proj_size=2, mixed_memory=True),
        lambda: LTC(3, AutoNCP(8, 2), solver="rk4"),
    ],
    ids=["cfc-ncp", "ltc", "lstm", "gru", "transformer", "bare-cfc", "bare-ltc"],
)
def test_round_trip_identical(tmp_path, make) -> None:
    torch.manual_seed(0)
    model = make().eval()
    if hasattr(model, "set_normalization"):
        model.set_normalization([1.0, 2.0, 3.0], [0.5, 1.5, 2.0])
    meta = {"features": ["a", "b", "c"], "epochs": 3, "nested": {"x": [1.5]}}
    path = save_model(model, tmp_path / "sub" / "m.lf", metadata=meta)
    loaded, got_meta = load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    assert got_meta == meta
    x, ts = torch.randn(2, 5, 3), torch.rand(2, 5) + 0.1
    torch.testing.assert_close(_outputs(loaded, x, ts), _outputs(model, x, ts), rtol=0, atol=0)
    assert [p.name for p in path.parent.iterdir()] == ["m.lf"]  # no temp file left behind
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_truncated_file_raises_value_error_naming_it(tmp_path) -> None:
    path = save_model(build_model("cfc", 2, 2, units=4), tmp_path / "m.lf")
    data = path.read_bytes()
    bad = tmp_path / "cut.lf"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.lf.*not a readable liquidflow checkpoint"):
        load_model(bad)


def test_foreign_files_are_refused(tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt"):
        load_model(text)
    other = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match=r"plain\.pt.*no 'liquidflow-checkpoint' format tag"):
        load_model(other)
    # a pickle that would run code on load is refused by weights_only loading
    evil = tmp_path / "evil.pt"

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    with open(evil, "wb") as f:
        pickle.dump({"format": "liquidflow-checkpoint", "x": Boom()}, f)
    with pytest.raises(ValueError, match=r"evil\.pt.*foreign/unsafe"):
        load_model(evil)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.lf")


def test_damaged_payload_and_version(tmp_path) -> None:
    path = save_model(build_model("gru", 2, 2, units=4), tmp_path / "m.lf")
    payload = torch.load(path, weights_only=True)
    payload["version"] = 99
    torch.save(payload, tmp_path / "future.lf")
    with pytest.raises(ValueError, match="format version 99"):
        load_model(tmp_path / "future.lf")
    payload["version"] = 1
    payload["state_dict"].pop(next(iter(payload["state_dict"])))
    torch.save(payload, tmp_path / "missing_w.lf")
    with pytest.raises(ValueError, match="weights do not match"):
        load_model(tmp_path / "missing_w.lf")
    assert read_checkpoint(path)["class_name"] == "SequenceModel"


def test_save_errors(tmp_path) -> None:
    with pytest.raises(TypeError, match="cannot save a Linear"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x.lf")
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        save_model(build_model("gru", 2, 2, units=4), tmp_path / "x.lf", metadata={"a": object()})
    assert not (tmp_path / "x.lf").exists()
