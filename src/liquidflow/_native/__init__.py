"""Native (C) kernels, compiled on this machine at first use and cached.

The sequence kernels of :mod:`liquidflow.torch._fused` spend most of their time in per-operation
overhead (a few µs per torch call, thousands of calls per batch). The C files next to this module
run the same loops with no per-step calls at all. They are plain C11 (no Python or torch headers):
building one takes about a second with ``gcc``/``cc``, so they are compiled here, on first use, with
``-O3 -march=native -fopenmp``, and cached under ``$LIQUIDFLOW_CACHE`` (default
``~/.cache/liquidflow``) by a hash of the sources, the compiler, the flags and the CPU.
``make venv`` (and ``python -m liquidflow._native``) builds them ahead of time.

Without a C compiler, or with ``LIQUIDFLOW_NATIVE=0``, :func:`load` returns None and the callers
fall back to their torch implementations (same results, slower); :func:`status` says why.

OpenMP: the library links ``libgomp.so.1`` by soname; torch's CPU wheels load their own
``libgomp.so.1`` first, so both share one OpenMP runtime (one thread pool, no oversubscription).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["SOURCES", "build", "cache_dir", "enabled", "load", "status", "use_native"]

HERE = Path(__file__).resolve().parent
#: the kernel libraries: name -> C file next to this module (each includes lf_common.h)
SOURCES = ("ltc", "cfc", "step")
FLAGS = ["-O3", "-std=gnu11", "-fPIC", "-shared", "-fopenmp", "-fno-math-errno", "-fno-trapping-math",
         "-Wall", "-Wno-unknown-pragmas"]  # fmt: skip
ARCH_FLAGS = ["-march=native"]

_log = logging.getLogger("liquidflow.native")
_lock = threading.Lock()
_errors: dict[str, str] = {}
_SWITCH = True
# read once at import: enabled() runs on every streaming step, where os.environ costs ~0.5 µs
_ENV_ON = os.environ.get("LIQUIDFLOW_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def enabled() -> bool:
    """False when the process started with ``LIQUIDFLOW_NATIVE=0`` or inside ``use_native(False)``."""
    return _SWITCH and _ENV_ON


@contextlib.contextmanager
def use_native(on: bool = True) -> Iterator[None]:
    """Turn the native kernels on or off inside a ``with`` block (tests compare both paths)."""
    global _SWITCH
    old, _SWITCH = _SWITCH, bool(on)
    try:
        yield
    finally:
        _SWITCH = old


def cache_dir() -> Path:
    root = os.environ.get("LIQUIDFLOW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "liquidflow"
    )
    return Path(root) / "native"


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc and shutil.which(cc):
        return cc
    for name in ("gcc", "cc", "clang"):
        if shutil.which(name):
            return name
    return None


@functools.cache
def _compiler_id(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30, check=False)
        return out.stdout.splitlines()[0] if out.stdout else cc
    except (OSError, subprocess.SubprocessError):
        return cc


@functools.cache
def _cpu_id() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _key(name: str, cc: str, flags: list[str]) -> str:
    h = hashlib.sha256()
    for part in (name, cc, _compiler_id(cc), " ".join(flags), _cpu_id(), platform.machine(), sys.platform):
        h.update(part.encode() + b"\0")
    for f in [HERE / f"{name}.c", *sorted(HERE.glob("*.h"))]:  # the library's source and the shared headers
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:20]


def build(name: str, force: bool = False) -> Path:
    """Compile ``<name>.c`` into the cache (once) and return the shared library's path.

    Raises RuntimeError with the compiler's message when it fails."""
    if name not in SOURCES:
        raise ValueError(f"unknown native library {name!r}; one of {SOURCES}")
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (gcc, cc or clang on PATH, or $CC); install gcc")
    src = HERE / f"{name}.c"
    last_err = ""
    for arch in (ARCH_FLAGS, []):  # -march=native first; some compilers/CPUs refuse it
        flags = FLAGS + arch
        out = cache_dir() / _key(name, cc, flags) / f"liblf_{name}.so"
        if out.exists() and not force:
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
        os.close(fd)
        try:
            cmd = [cc, *flags, "-I", str(HERE), str(src), "-o", tmp, "-lm"]
            _log.info("compiling liquidflow's native kernel %r (once per machine and version): %s", name, " ".join(cmd))
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
            if res.returncode == 0:
                os.replace(tmp, out)  # atomic: concurrent builders race harmlessly
                return out
            last_err = f"{' '.join(cmd)}\n{res.stderr.strip()}"
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise RuntimeError(f"compiling liquidflow's native kernel {name!r} failed:\n{last_err}")


@functools.cache
def _load(name: str) -> ctypes.CDLL | None:
    try:
        import torch  # noqa: F401  (load torch's libgomp first so both share one OpenMP runtime)

        return ctypes.CDLL(str(build(name)))
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        _errors[name] = str(e)
        return None


def load(name: str) -> ctypes.CDLL | None:
    """The compiled library ``name`` (see :data:`SOURCES`), or None when unavailable (see :func:`status`)."""
    if not enabled():
        return None
    with _lock:
        return _load(name)


def status() -> dict[str, str]:
    """For each kernel library: ``"ok: <path>"``, ``"disabled (...)"`` or ``"unavailable: <reason>"``."""
    out = {}
    for name in SOURCES:
        if not enabled():
            out[name] = "disabled (LIQUIDFLOW_NATIVE=0)"
        elif load(name) is not None:
            out[name] = f"ok: {build(name)}"
        else:
            out[name] = f"unavailable: {_errors.get(name, 'unknown error')}"
    return out
