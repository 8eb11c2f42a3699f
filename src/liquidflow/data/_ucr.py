"""UCR/UEA time-series classification sets in the ``.ts`` format (sktime's and timeseriesclassification.com's).

:func:`read_ts` parses one ``.ts`` file; :func:`ucr_splits` finds ``<name>_TRAIN.ts`` and
``<name>_TEST.ts`` in a folder (``<folder>/<name>/`` or ``<folder>/`` itself) or inside an sktime
wheel (``sktime-*.whl``, a zip archive whose ``sktime/datasets/data/<name>/`` holds a few sets, e.g.
GunPoint and PLAID), so that the sets can be used without installing sktime.

The format (sktime's documentation, "Loading data"): comment lines start with ``#``; header lines
start with ``@`` (``@problemName``, ``@timeStamps false``, ``@univariate``, ``@equalLength``,
``@classLabel true <labels...>``, ``@data``); after ``@data`` each line is one case: dimensions
separated by ``:``, values by ``,``, ``?`` for a missing value, and the class label last. Cases of
unequal length (PLAID) stay unequal: each is a sequence of its own length, steps 1.0 apart.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ._series import IrregularSeries

_WHEEL_DATA = "sktime/datasets/data"


def parse_ts(text: str, source: str = "<text>") -> tuple[list[np.ndarray], list[str], list[str]]:
    """(values per case (T_i, D), label per case, the header's class labels) from a ``.ts`` text."""
    classes: list[str] = []
    has_labels = True
    values: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            low = line.lower()
            if low.startswith("@classlabel"):
                parts = line.split()
                has_labels = len(parts) > 1 and parts[1].lower() == "true"
                classes = parts[2:] if has_labels else []
            elif low.startswith("@timestamps") and line.split()[-1].lower() == "true":
                raise ValueError(f"{source}: timestamped .ts files (@timeStamps true) are not supported")
            elif low.startswith("@data"):
                in_data = True
            continue
        fields = line.split(":")
        if has_labels:
            fields, label = fields[:-1], fields[-1].strip()
            labels.append(label)
        dims = []
        for d in fields:
            try:
                dims.append(np.array([np.nan if v.strip() == "?" else float(v) for v in d.split(",")]))
            except ValueError as e:
                raise ValueError(f"{source}, line {lineno}: not a number in {d[:40]!r}: {e}") from e
        length = max(len(col) for col in dims)
        case = np.full((length, len(dims)), np.nan)
        for j, col in enumerate(dims):  # a shorter dimension is missing at its end
            case[: len(col), j] = col
        values.append(case)
    if not in_data:
        raise ValueError(f"{source}: no @data line; not a .ts file")
    if not values:
        raise ValueError(f"{source}: no cases after @data")
    return values, labels, classes


def read_ts(path: str | os.PathLike[str], text: str | None = None) -> IrregularSeries:
    """One ``.ts`` file as an :class:`IrregularSeries` (labels per sequence, the header's classes; ``?`` is NaN)."""
    body = Path(path).read_text() if text is None else text
    values, labels, classes = parse_ts(body, str(path))
    dim = values[0].shape[1]
    names = classes or sorted(set(labels))
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise ValueError(f"{path}: labels {unknown[:5]} are not among the header's classes {names}")
    index = {c: i for i, c in enumerate(names)}
    return IrregularSeries.from_arrays(
        values,  # NaN: missing (the series' convention)
        labels=[index[y] for y in labels] or None,  # class indices; the names are in ``classes``
        label_level="sequence" if labels else None,
        feature_names=[f"dim{j}" for j in range(dim)],
        classes=names or None,
    )


def _wheel_member(wheel: Path, name: str, split: str) -> str | None:
    try:
        with zipfile.ZipFile(wheel) as z:
            member = f"{_WHEEL_DATA}/{name}/{name}_{split}.ts"
            return z.read(member).decode() if member in z.namelist() else None
    except zipfile.BadZipFile as e:
        raise ValueError(f"{wheel}: not a wheel (zip) file: {e}") from e


def ucr_splits(name: str, source: str | os.PathLike[str]) -> tuple[IrregularSeries, IrregularSeries]:
    """(train, test) of the UCR/UEA set ``name`` from a folder or an sktime wheel (see the module doc)."""
    src = Path(source)
    out = []
    for split in ("TRAIN", "TEST"):
        if src.is_file() and src.suffix == ".whl":
            text = _wheel_member(src, name, split)
            if text is None:
                raise FileNotFoundError(f"{src} has no {_WHEEL_DATA}/{name}/{name}_{split}.ts")
            out.append(read_ts(f"{src}!{name}_{split}.ts", text))
            continue
        for folder in (src / name, src):
            path = folder / f"{name}_{split}.ts"
            if path.is_file():
                out.append(read_ts(path))
                break
        else:
            raise FileNotFoundError(f"no {name}_{split}.ts in {src / name} or {src} (nor is {src} an sktime .whl)")
    return out[0], out[1]
