"""Atomic file writes: the one helper every liquidflow writer goes through.

A file is written to a temporary file in the destination's folder (same file system), flushed to
disk, then renamed over the destination with ``os.replace``. A reader, a build or a resumed run
never sees a half-written file; a crash or an exception in the writer leaves the old file (or no
file) in place and no temporary file behind.

* :func:`atomic_write` writes bytes or text;
* :func:`atomic_path` is for writers that want a path of their own (``torch.save``, ``onnx.save``,
  Lightning's ``save_checkpoint``, a compiler's ``-o``).

Temporary files are named ``.<name>.<random>.tmp`` and created by :func:`tempfile.mkstemp`, so a
new file has mode ``0o600`` unless ``mode`` says otherwise (a writer that replaces the temporary
file, as a linker does, sets its own). Neither function creates the destination's folder.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write"]


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is synced and renamed over ``path``.

    The temporary file exists (empty) when the block starts; the writer may overwrite or replace it.
    If the block raises (or leaves no file there), ``path`` is untouched and the temporary file is
    removed. ``mode``: the permission bits of the result (default: what the writer left).

    Example::

        with atomic_path("model.onnx") as tmp:
            onnx.save(proto, tmp)
    """
    dest = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        _fsync(tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None) -> Path:
    """Write ``data`` (``str`` is written as UTF-8) to ``path`` atomically; returns ``path`` as a Path.

    ``mode``: the permission bits of the file (default ``0o600``, from :func:`tempfile.mkstemp`)."""
    if not isinstance(data, (bytes, str)):
        raise TypeError(f"data must be bytes or str; got {type(data).__name__}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    dest = Path(path)
    with atomic_path(dest, mode=mode) as tmp, open(tmp, "wb") as f:
        f.write(raw)
    return dest
