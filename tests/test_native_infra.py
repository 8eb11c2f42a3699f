"""The native-kernel build machinery (liquidflow._native): compile, cache, switches, failures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from liquidflow import _build, _native

IN_CI = os.environ.get("CI", "").lower() == "true"


def _require_native() -> None:
    if _native.load("ltc") is None:
        reason = f"native kernels unavailable: {_native.status()['ltc']}"
        if IN_CI:
            pytest.fail(reason)  # users depend on the fast path: CI must have a C compiler
        pytest.skip(reason)


def test_every_library_builds_and_loads() -> None:
    _require_native()
    st = _native.status()
    assert set(st) == set(_native.SOURCES)
    for name, s in st.items():
        assert s.startswith("ok: "), (name, s)
        assert os.path.exists(s[4:])


def test_cache_is_reused(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_native()
    monkeypatch.setenv("LIQUIDFLOW_CACHE", str(tmp_path))
    first = _native.build("step")
    assert str(first).startswith(str(tmp_path))
    mtime = first.stat().st_mtime_ns
    assert _native.build("step") == first  # no rebuild
    assert first.stat().st_mtime_ns == mtime
    assert _native.build("step", force=True) == first  # forced rebuild, same place


def test_switches_turn_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with _native.use_native(False):
        assert not _native.enabled()
        assert _native.load("ltc") is None
        assert all(s.startswith("disabled") for s in _native.status().values())
    code = "from liquidflow import _native; print(_native.enabled(), _native.load('cfc'))"
    for flag, expect in (("0", "False None"), ("off", "False None")):
        env = dict(os.environ, LIQUIDFLOW_NATIVE=flag)  # read once when the module is imported
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert res.stdout.strip() == expect


def test_missing_compiler_is_a_clear_error(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQUIDFLOW_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH either
    with pytest.raises(RuntimeError, match="no C compiler found"):
        _native.build("ltc")


def test_unknown_library_name() -> None:
    with pytest.raises(ValueError, match="unknown native library"):
        _native.build("nope")


def test_compiler_errors_are_reported(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_native()
    fake = tmp_path / "badcc"  # type: ignore[operator]
    fake.write_text("#!/bin/sh\necho 'broken compiler says no' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("LIQUIDFLOW_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(fake))
    with pytest.raises(RuntimeError, match="broken compiler says no"):
        _native.build("cfc")


def test_fallback_without_native_gives_the_same_numbers() -> None:
    """A process with LIQUIDFLOW_NATIVE=0 (torch kernels) and one with native kernels agree."""
    code = (
        "import torch, liquidflow.torch as lt\n"
        "torch.manual_seed(0); m = lt.CfC(5, 8).double(); x = torch.randn(3, 7, 5, dtype=torch.float64)\n"
        "y, h = m(x); (y.square().mean()).backward()\n"
        "print(repr(float(y.sum())), repr(float(m.rnn_cell.backbone[0].weight.grad.sum())))\n"
    )
    outs = []
    for flag in ("0", "1"):
        env = dict(os.environ, LIQUIDFLOW_NATIVE=flag)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        outs.append([float(v) for v in res.stdout.split()])
    assert outs[0] == pytest.approx(outs[1], rel=1e-10, abs=1e-12)


def test_module_main_builds(tmp_path: pytest.TempPathFactory) -> None:
    _require_native()
    env = dict(os.environ, LIQUIDFLOW_CACHE=str(tmp_path))
    res = subprocess.run([sys.executable, "-m", "liquidflow._native"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    for name in _native.SOURCES:
        assert f"native kernel {name}: {tmp_path}" in res.stdout


# ------------------------------------------------------------------ liquidflow._build, the shared build pipeline
FAKE_CC = """#!/bin/sh
# a stand-in compiler: logs its arguments, writes the file named by -o, fails on request
echo "$*" >> "{log}"
case "$1" in --version) echo "fakecc 1.0"; exit 0;; esac
[ -f "{fail}" ] && {{ echo "fakecc: error: $(cat "{fail}")" >&2; exit 3; }}
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
[ -n "$out" ] && echo "built: $*" > "$out"
exit 0
"""


@pytest.fixture
def fake_cc(tmp_path: Path) -> Callable[[], list[str]]:
    """A fake compiler at tmp_path/fakecc; calling the fixture's value returns its calls so far."""
    log, fail = tmp_path / "cc.log", tmp_path / "cc.fail"
    cc = tmp_path / "fakecc"
    cc.write_text(FAKE_CC.format(log=log, fail=fail))
    cc.chmod(0o755)
    return lambda: log.read_text().splitlines() if log.exists() else []


def _lib(tmp_path: Path, flags: Sequence[str] = ("-O2",), src: Path | None = None, **kw: Any) -> Path:
    src = src or tmp_path / "src" / "k.c"
    return _build.build_library(
        [src], "libk.so", cache=tmp_path / "cache", cc=str(tmp_path / "fakecc"), cflags=flags,
        headers=[src.parent / "k.h"], **kw,
    )  # fmt: skip


def _sources(tmp_path: Path, folder: str = "src", body: str = "int k(void) { return K; }\n") -> Path:
    d = tmp_path / folder
    d.mkdir(exist_ok=True)
    (d / "k.h").write_text("#define K 1\n")
    (d / "k.c").write_text('#include "k.h"\n' + body)
    return d / "k.c"


def test_build_cache_is_hit_without_calling_the_compiler(tmp_path: Path, fake_cc: Callable[[], list[str]]) -> None:
    _sources(tmp_path)
    first = _lib(tmp_path)
    calls = fake_cc()
    assert calls[0] == "--version"
    assert [c for c in calls if " -c " in c] and [c for c in calls if c.startswith("-shared ")]  # compile, link
    assert first.parent == tmp_path / "cache" and first.name.startswith("libk-") and first.suffix == ".so"
    assert first.read_text().startswith("built: -shared ")
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]  # no objects or temporaries left
    assert _lib(tmp_path) == first
    assert fake_cc() == calls  # the second build ran no compiler at all
    _lib(tmp_path, force=True)
    assert len(fake_cc()) > len(calls)  # force rebuilds


def test_build_key_follows_sources_headers_and_flags(tmp_path: Path, fake_cc: Callable[[], list[str]]) -> None:
    src = _sources(tmp_path)
    first = _lib(tmp_path)
    assert _lib(tmp_path, flags=["-O3"]) != first  # a changed flag
    assert _lib(tmp_path, flags=["-O2"], ldflags=["-fopenmp"]) != first  # a changed link flag
    # the same files in another folder (a generated source in a temporary folder) hash the same
    assert _lib(tmp_path, src=_sources(tmp_path, "elsewhere")) == first
    src.write_text(src.read_text() + "/* changed */\n")  # a changed source
    second = _lib(tmp_path)
    assert second != first
    (src.parent / "k.h").write_text("#define K 2\n")  # a changed header
    assert _lib(tmp_path) not in (first, second)
    key = _build.cache_key([src], cc=str(tmp_path / "fakecc"), flags=["-O2"])
    assert key == _build.cache_key([src], cc=str(tmp_path / "fakecc"), flags=["-O2"]) and len(key) == 24
    assert key != _build.cache_key([src], cc=str(tmp_path / "fakecc"), flags=["-O2"], extra=["other"])


def test_native_flags_put_the_cpu_into_the_key(tmp_path: Path, fake_cc: Callable[[], list[str]]) -> None:
    src = _sources(tmp_path)
    _build.cache_key([src], cc=str(tmp_path / "fakecc"), flags=["-O2", "-march=native"])
    assert "-march=native -E -dM -x c /dev/null" in fake_cc()  # what the compiler targets, asked once


def test_build_error_names_the_command(tmp_path: Path, fake_cc: Callable[[], list[str]]) -> None:
    src = _sources(tmp_path)
    (tmp_path / "cc.fail").write_text("k.c:2: expected ';'")
    with pytest.raises(_build.ToolError, match=r"compiling k failed \(3\): .*fakecc -O2 -fPIC -c .*k\.c -o ") as e:
        _lib(tmp_path, what="compiling k")
    assert "fakecc: error: k.c:2: expected ';'" in str(e.value)  # the compiler's message
    assert isinstance(e.value, RuntimeError)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())  # nothing half-built
    assert src.exists()


def test_run_timeout_and_missing_program(tmp_path: Path) -> None:
    with pytest.raises(_build.ToolError, match=r"command timed out after 0s: sleep 5"):
        _build.run(["sleep", "5"], timeout=0.2)
    with pytest.raises(_build.ToolError, match=r"linking could not start: no-such-tool-xyz --help"):
        _build.run(["no-such-tool-xyz", "--help"], what="linking")
    assert _build.run(["echo", "hi"]) == "hi\n"


def test_compiler_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_cc: Callable[[], list[str]]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "fakecc"))
    assert _build.find_compiler() == str(tmp_path / "fakecc")  # $CC first
    monkeypatch.setenv("CC", "no-such-cc")
    assert _build.find_compiler() is None  # nor gcc, cc or clang on this PATH
    (tmp_path / "clang").symlink_to(tmp_path / "fakecc")
    assert _build.find_compiler() == "clang"
    (tmp_path / "cc").symlink_to(tmp_path / "fakecc")
    assert _build.find_compiler() == "cc"  # in the order gcc, cc, clang


def test_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQUIDFLOW_CACHE", str(tmp_path / "c"))
    assert _build.cache_dir("native") == tmp_path / "c" / "native" == _native.cache_dir()
    monkeypatch.delenv("LIQUIDFLOW_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _build.cache_dir("native") == tmp_path / "xdg" / "liquidflow" / "native"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _build.cache_dir("stepper") == tmp_path / "home" / ".cache" / "liquidflow" / "stepper"


def test_native_second_build_calls_no_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_native()
    monkeypatch.setenv("LIQUIDFLOW_CACHE", str(tmp_path))
    first = _native.build("ltc")

    def no_compiler(*a: Any, **k: Any) -> str:
        raise AssertionError(f"the compiler ran again: {a}")

    monkeypatch.setattr(_build, "run", no_compiler)
    assert _native.build("ltc") == first
