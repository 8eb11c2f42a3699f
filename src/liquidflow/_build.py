"""Compile C on this machine and cache the result: the one build pipeline of liquidflow.

Used by the native kernels (:mod:`liquidflow._native`), the compiled stepper
(:class:`liquidflow.export.CompiledStepper`) and the export toolchain (host and ARM builds, the QEMU
plugin):

* :func:`find_compiler`: ``$CC`` when it names a program, else the first of gcc, cc, clang on PATH;
* :func:`compiler_id`: the compiler's ``--version`` line and, for ``-march=native`` style flags, the
  macros it predefines for them (they name the instruction sets it targets);
* :func:`cache_key`: a hash of the source texts, the headers they include, the compiler's identity,
  the flags and the machine (its CPU features too when the flags target "native");
* :func:`cache_dir`: ``$LIQUIDFLOW_CACHE`` (default ``$XDG_CACHE_HOME/liquidflow`` or
  ``~/.cache/liquidflow``), one subfolder per user of the cache (``native``, ...);
* :func:`run`: a tool run under a timeout; a failure raises :class:`ToolError` naming the command
  and the tail of its output;
* :func:`build_library`: all of the above: a shared library compiled once into the cache.

Concurrent builders need no lock: each links into its own temporary file and renames it over the
cached name (:func:`liquidflow._files.atomic_path`); two processes building the same key at once
both compile, and either identical result wins.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ._files import atomic_path

__all__ = [
    "COMPILERS",
    "ToolError",
    "build_library",
    "cache_dir",
    "cache_key",
    "compiler_id",
    "find_compiler",
    "run",
]

#: compilers tried, in order, when ``$CC`` names none
COMPILERS = ("gcc", "cc", "clang")
# flags whose code depends on the CPU this runs on: the cache key then holds the CPU's features
_NATIVE_FLAGS = ("-march=native", "-mcpu=native", "-mtune=native")
_KEY_VERSION = "liquidflow-build-1"  # bump to invalidate every cached build
_TAIL = 4000  # characters of a failed tool's stdout and stderr kept in the error

_log = logging.getLogger("liquidflow.build")


class ToolError(RuntimeError):
    """A compiler (or another external tool: emulator, binutils) failed or timed out; the message
    holds its command and the tail of its output."""


def run(
    cmd: Sequence[str | os.PathLike[str]], *, timeout: float = 300.0, cwd: Path | None = None, what: str = "command"
) -> str:
    """Run ``cmd`` (stdin closed) and return its stdout; :class:`ToolError` when it cannot start,
    exits non-zero or runs past ``timeout`` seconds. ``what`` starts the error message."""
    args = [os.fspath(c) for c in cmd]
    shown = " ".join(args)
    try:
        res = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"{what} timed out after {timeout:.0f}s: {shown}") from e
    except OSError as e:
        raise ToolError(f"{what} could not start: {shown}\n{e}") from e
    if res.returncode != 0:
        raise ToolError(f"{what} failed ({res.returncode}): {shown}\n{res.stdout[-_TAIL:]}{res.stderr[-_TAIL:]}")
    return res.stdout


def find_compiler() -> str | None:
    """``$CC`` when it names a program (on PATH or a path), else the first of :data:`COMPILERS` on
    PATH; None when there is none."""
    cc = os.environ.get("CC")
    if cc and shutil.which(cc):
        return cc
    for name in COMPILERS:
        if shutil.which(name):
            return name
    return None


def _native_flags(flags: Sequence[str]) -> tuple[str, ...]:
    return tuple(f for f in flags if f in _NATIVE_FLAGS)


@functools.cache
def _compiler_id(cc: str, native: tuple[str, ...]) -> str:
    try:
        ident = run([cc, "--version"], timeout=60).split("\n")[0] or cc
    except ToolError:
        return cc  # the build itself will fail with the compiler's message
    if native:
        try:  # the predefined macros name the instruction sets (and tuning) -march=native resolves to
            ident += "\n" + run([cc, *native, "-E", "-dM", "-x", "c", os.devnull], timeout=60)
        except ToolError:
            pass
    return ident


def compiler_id(cc: str, flags: Sequence[str] = ()) -> str:
    """The compiler's identity: its ``--version`` line (``cc`` itself when that fails), plus the
    macros it predefines for any ``-march=native``-style flag in ``flags``. Cached per process."""
    return _compiler_id(cc, _native_flags(flags))


@functools.cache
def _cpu_features() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def cache_dir(user: str) -> Path:
    """The cache folder of one user of the cache (``native``, ``stepper``, ...), not created here:
    ``$LIQUIDFLOW_CACHE/<user>``, by default ``~/.cache/liquidflow/<user>`` (or under
    ``$XDG_CACHE_HOME``)."""
    root = os.environ.get("LIQUIDFLOW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "liquidflow"
    )
    return Path(root) / user


def cache_key(
    files: Sequence[Path],
    *,
    cc: str,
    flags: Sequence[str],
    extra: Sequence[str] = (),
) -> str:
    """A hash (24 hex digits) of ``files`` (names and contents: sources and the headers they
    include), the compiler and its :func:`compiler_id`, ``flags``, ``extra`` strings and the machine
    (OS and architecture; the CPU's features too when a flag targets "native").

    Folders are left out (sources generated in a temporary folder hash the same every time)."""
    h = hashlib.sha256()
    native = _native_flags(flags)
    parts = [_KEY_VERSION, cc, compiler_id(cc, flags), " ".join(flags), platform.machine(), sys.platform, *extra]
    if native:
        parts.append(_cpu_features())
    for part in parts:
        h.update(part.encode() + b"\0")
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def build_library(
    sources: Sequence[Path],
    name: str,
    *,
    cache: Path,
    cc: str,
    cflags: Sequence[str],
    ldflags: Sequence[str] = (),
    libs: Sequence[str] = ("-lm",),
    include: Sequence[Path] = (),
    headers: Sequence[Path] = (),
    force: bool = False,
    timeout: float = 300.0,
    what: str = "compiling a C library",
) -> Path:
    """Compile ``sources`` into the shared library ``<cache>/<stem>-<key><suffix>`` (``name`` gives
    stem and suffix, :func:`cache_key` the key) unless it is there already; returns its path.

    Each source is compiled alone (``cc <cflags> -fPIC -I<include> -c``) and the objects are linked
    with ``cc -shared <ldflags> ... <libs>``: math flags such as ``-ffast-math`` never reach the link
    (gcc < 13 then links ``crtfastmath.o``, which switches the whole process to flush denormals to
    zero when the library is loaded). ``headers`` are the files the sources include, hashed into the
    key. ``force`` rebuilds a cached library. Raises :class:`ToolError` (command and compiler output)
    when a step fails; ``what`` starts that message.
    """
    key = cache_key([*sources, *headers], cc=cc, flags=[*cflags, "|", *ldflags, *libs], extra=[name])
    stem, dot, suffix = name.partition(".")
    out = cache / f"{stem}-{key}{dot}{suffix}"
    if out.exists() and not force:
        return out
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="liquidflow-build-") as tmp:
        objs = []
        for i, src in enumerate(sources):
            obj = Path(tmp) / f"{i}-{src.stem}.o"
            cmd = [cc, *cflags, "-fPIC", *[f"-I{d}" for d in include], "-c", str(src), "-o", str(obj)]
            _log.info("%s: %s", what, " ".join(cmd))
            run(cmd, timeout=timeout, what=what)
            objs.append(str(obj))
        with atomic_path(out) as lib:
            run([cc, "-shared", *ldflags, *objs, "-o", str(lib), *libs], timeout=timeout, what=what)
    return out
