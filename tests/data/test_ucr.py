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
    assert [str(y) for y in s.labels] == ["a", "b", "a"]


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
