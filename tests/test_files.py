"""liquidflow._files: atomic writes leave the old file or the new one, never half of one, and no litter."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from liquidflow._files import atomic_path, atomic_write


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_bytes_and_text(tmp_path: Path) -> None:
    p = tmp_path / "a.bin"
    assert atomic_write(p, b"\x00\x01\xff") == p
    assert p.read_bytes() == b"\x00\x01\xff"
    atomic_write(str(p), "µs\nline two\n")  # str is UTF-8, no newline translation
    assert p.read_bytes() == "µs\nline two\n".encode()
    assert _names(tmp_path) == ["a.bin"]


def test_permissions(tmp_path: Path) -> None:
    # a new file has mkstemp's 0o600, as liquidflow's writers have always produced; mode= sets others
    p = atomic_write(tmp_path / "a.txt", "x")
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    atomic_write(p, "y", mode=0o644)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
    with atomic_path(tmp_path / "b.txt", mode=0o640) as tmp:
        tmp.write_text("z")
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o640


def test_writer_that_raises_leaves_the_old_file(tmp_path: Path) -> None:
    p = tmp_path / "model.lf"
    p.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"), atomic_path(p) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".model.lf.") and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"half of the new")
        raise OSError("disk full")
    assert p.read_bytes() == b"old"
    assert _names(tmp_path) == ["model.lf"]  # no temporary file left behind
    with pytest.raises(KeyboardInterrupt), atomic_path(p) as tmp:  # not only Exceptions
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert p.read_bytes() == b"old" and _names(tmp_path) == ["model.lf"]


def test_failed_rename_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "x.c"
    p.write_text("old")

    def power_cut(src: str, dst: str) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        atomic_write(p, "new")
    monkeypatch.undo()
    assert p.read_text() == "old" and _names(tmp_path) == ["x.c"]


def test_a_writer_may_replace_the_temporary_file(tmp_path: Path) -> None:
    """As a linker does with ``-o``: it unlinks the file and creates its own."""
    p = tmp_path / "lib.so"
    with atomic_path(p) as tmp:
        tmp.unlink()
        tmp.write_bytes(b"ELF")
    assert p.read_bytes() == b"ELF" and _names(tmp_path) == ["lib.so"]


def test_a_writer_that_leaves_no_file_fails(tmp_path: Path) -> None:
    p = tmp_path / "out"
    p.write_text("old")
    with pytest.raises(FileNotFoundError), atomic_path(p) as tmp:
        tmp.unlink()
    assert p.read_text() == "old" and _names(tmp_path) == ["out"]


def test_bad_data_type(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="data must be bytes or str; got list"):
        atomic_write(tmp_path / "a", [1, 2])  # type: ignore[arg-type]
    assert _names(tmp_path) == []


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "no" / "such" / "a.txt", "x")


def test_imports_stay_light() -> None:
    """_files and _build are imported by torch-free code paths (the native build, the C export)."""
    code = "import sys, liquidflow._files, liquidflow._build; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
