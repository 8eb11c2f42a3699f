"""Native (C) kernels, compiled on this machine at first use and cached.

The sequence kernels of :mod:`liquidflow._ops.fused` spend most of their time in per-operation
overhead (a few µs per torch call, thousands of calls per batch). The C files next to this module
run the same loops with no per-step calls at all. They are plain C11 (no Python or torch headers):
building one takes about a second with ``gcc``/``cc``, so they are compiled here, on first use, with
``-O3 -march=native -fopenmp``, and cached under ``$LIQUIDFLOW_CACHE/native`` (default
``~/.cache/liquidflow/native``) by a hash of the sources, the compiler, the flags and the CPU
(:mod:`liquidflow._build`, the build pipeline shared with the C export).
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
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from .. import _build

__all__ = ["SOURCES", "build", "cache_dir", "enabled", "load", "status", "use_native"]

HERE = Path(__file__).resolve().parent
#: the kernel libraries: name -> C file next to this module (each includes lf_common.h)
SOURCES = ("ltc", "cfc", "step")
# compile flags (the library is linked with -fopenmp too; liquidflow._build adds -fPIC and -shared)
FLAGS = ["-O3", "-std=gnu11", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wno-unknown-pragmas"]
LINK_FLAGS = ["-fopenmp"]
ARCH_FLAGS = ["-march=native"]

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
    """Where the kernel libraries are cached: ``$LIQUIDFLOW_CACHE/native`` (default ``~/.cache/liquidflow/native``)."""
    return _build.cache_dir("native")


def build(name: str, force: bool = False) -> Path:
    """Compile ``<name>.c`` into the cache (once) and return the shared library's path.

    Raises RuntimeError with the compiler's message when it fails."""
    if name not in SOURCES:
        raise ValueError(f"unknown native library {name!r}; one of {SOURCES}")
    cc = _build.find_compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (gcc, cc or clang on PATH, or $CC); install gcc")

    def compile_with(arch: list[str]) -> Path:
        return _build.build_library(
            [HERE / f"{name}.c"],
            f"liblf_{name}.so",
            cache=cache_dir(),
            cc=cc,
            cflags=[*FLAGS, *arch],
            ldflags=LINK_FLAGS,
            include=[HERE],
            headers=sorted(HERE.glob("*.h")),  # the shared headers every kernel includes
            force=force,
            what=f"compiling liquidflow's native kernel {name!r}",
        )

    try:
        return compile_with(ARCH_FLAGS)
    except _build.ToolError:  # some compilers/CPUs refuse -march=native; a failure here names the command
        return compile_with([])


@functools.cache
def _load(name: str) -> ctypes.CDLL | None:
    try:
        import torch  # noqa: F401  (load torch's libgomp first so both share one OpenMP runtime)

        return ctypes.CDLL(str(build(name)))
    except (RuntimeError, OSError) as e:  # no compiler, a compiler error (ToolError), a library that will not load
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
