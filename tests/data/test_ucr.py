"""UCR/UEA .ts files: the parser against hand-written cases, folders and sktime wheels."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from liquidflow.data import read_ts, ucr_splits

TS = """# a comment
@problemName Tiny
@timeStamps false
@univariate false
@equalLength false
@classLabel true a b
@data
1.0,2.0,3.0:4.0,5.0,6.0:a
7.5,?:8.5,9.5:b
0,1,2,3:4,5,6,7:a
"""


def test_parse_cases_of_unequal_length_with_missing_values(tmp_path: Path) -> None:
    p = tmp_path / "Tiny_TRAIN.ts"
    p.write_text(TS)
    s = read_ts(p)
    assert len(s) == 3 and s.classes == ["a", "b"]
    v = [np.asarray(x) for x in s.values]
    np.testing.assert_array_equal(v[0], [[1, 4], [2, 5], [3, 6]])
    assert np.isnan(v[1][1, 0]) and v[1][1, 1] == 9.5 and v[1][0].tolist() == [7.5, 8.5]
    assert v[2].shape == (4, 2) and v[2][3].tolist() == [3, 7]
    assert [int(y) for y in s.labels] == [0, 1, 0] and [s.classes[int(y)] for y in s.labels] == ["a", "b", "a"]


def test_splits_from_a_folder_and_from_a_wheel(tmp_path: Path) -> None:
    (tmp_path / "Tiny").mkdir()
    for split in ("TRAIN", "TEST"):
        (tmp_path / "Tiny" / f"Tiny_{split}.ts").write_text(TS)
    train, test = ucr_splits("Tiny", tmp_path)
    assert len(train) == len(test) == 3
    wheel = tmp_path / "sktime-0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for split in ("TRAIN", "TEST"):
            z.writestr(f"sktime/datasets/data/Tiny/Tiny_{split}.ts", TS)
    wtrain, _ = ucr_splits("Tiny", wheel)
    for a, b in zip(wtrain.values, train.values, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(FileNotFoundError, match="Other_TRAIN.ts"):
        ucr_splits("Other", wheel)
    with pytest.raises(FileNotFoundError, match="no Other_TRAIN.ts"):
        ucr_splits("Other", tmp_path)


def test_bad_files_say_where(tmp_path: Path) -> None:
    p = tmp_path / "bad.ts"
    p.write_text("@classLabel true a\n@data\n1,x,3:a\n")
    with pytest.raises(ValueError, match=r"bad.ts, line 3: not a number"):
        read_ts(p)
    p.write_text("just text\n")
    with pytest.raises(ValueError, match="no @data line"):
        read_ts(p)


def test_ucr_source_trains_on_train_minus_validation_and_tests_on_test(tmp_path: Path) -> None:
    from liquidflow.training import TrainConfig, fit
    from liquidflow.training._pipeline import prepare_data

    rows = [f"{','.join(str(v) for v in np.sin(np.arange(12) * (k % 2 + 1)))}:{'ab'[k % 2]}" for k in range(10)]
    body = TS.split("@data")[0] + "@data\n" + "\n".join(rows) + "\n"
    for split in ("TRAIN", "TEST"):
        (tmp_path / f"Sine_{split}.ts").write_text(body.replace("@univariate false", "@univariate true"))
    data_cfg = {"source": "ucr", "name": "Sine", "path": str(tmp_path), "val_fraction": 0.3}
    trainer = {"epochs": 1, "batch_size": 4, "progress": False}
    cfg = TrainConfig.from_dict(
        {"data": data_cfg, "model": {"kind": "gru", "units": 4}, "trainer": trainer, "out_dir": str(tmp_path / "run")}
    )
    data = prepare_data(cfg.data)
    assert (len(data.train), len(data.val), len(data.test)) == (7, 3, 10)
    assert data.task == "classification" and data.output_size == 2 and data.classes == ["a", "b"]
    res = fit(cfg)
    assert 0.0 <= res["test"]["acc"] <= 1.0
    with pytest.raises(ValueError, match="data.name"):
        TrainConfig.from_dict({"data": {"source": "ucr", "path": str(tmp_path)}})
