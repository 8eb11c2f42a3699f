"""The typed interface to the C kernels (liquidflow._ops.native_abi, liquidflow/_native/lf_abi.h).

Every ctypes structure must match its C struct (the libraries describe their structs: version, sizes,
field offsets), and a library that does not match — a field added, removed or moved on one side
only, another version — is refused with the reason, so the torch kernels run instead of a C kernel
that would read the wrong fields.
"""

from __future__ import annotations

import ctypes
import logging
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers import INPUT_SIZE, make_layer, random_batch, require_native, run_with_grads
from liquidflow import _native
from liquidflow._ops import native_abi as abi
from liquidflow._ops import native_cfc as _native_cfc
from liquidflow._ops import native_ltc as _native_ltc
from liquidflow.torch import _native_step

KERNELS = {
    "cfc": (abi.CFC_ABI_VERSION, abi.CFC_STRUCTS, _native_cfc),
    "ltc": (abi.LTC_ABI_VERSION, abi.LTC_STRUCTS, _native_ltc),
    "step": (abi.STEP_ABI_VERSION, abi.STEP_STRUCTS, _native_step),
}


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_every_library_matches_its_structs(kernel: str) -> None:
    require_native(kernel)
    version, structs, module = KERNELS[kernel]
    lib = _native.load(kernel)
    assert abi.mismatch(lib, kernel, version, structs) is None
    assert module._LIB.why_not() is None and module._LIB.get() is lib
    # the check reads every field: the C tables list them all, at the offsets ctypes gives them
    size = getattr(lib, f"lf_{kernel}_struct_size")
    offset = getattr(lib, f"lf_{kernel}_field_offset")
    for s in structs:
        assert size(s.c_name.encode()) == ctypes.sizeof(s) > 0
        assert [offset(s.c_name.encode(), f.encode()) for f, *_ in s._fields_] == [
            getattr(s, f).offset for f, *_ in s._fields_
        ]
        assert offset(s.c_name.encode(), b"no_such_field") == -1
    assert size(b"no_such_struct") == -1


def test_structs_have_8_byte_fields_in_c_order() -> None:
    """All fields are 8 bytes (int64, double, pointers) or structs of them: no padding to disagree on."""
    for structs in (abi.CFC_STRUCTS, abi.LTC_STRUCTS, abi.STEP_STRUCTS):
        for s in structs:
            end = 0
            for name, ftype in s._fields_:
                assert getattr(s, name).offset == end, f"{s.c_name}.{name}"
                assert ctypes.sizeof(ftype) % 8 == 0, f"{s.c_name}.{name}"
                end += ctypes.sizeof(ftype)
            assert ctypes.sizeof(s) == end
            assert re.fullmatch(r"lf_[a-z_]+", s.c_name)


def _cfc_struct(fields: list[tuple[str, object]]) -> type[ctypes.Structure]:
    """A Python-side lf_cfc_layer with other fields (what a one-sided edit of _native_abi.py makes)."""
    return type("Edited", (ctypes.Structure,), {"c_name": "lf_cfc_layer", "_fields_": fields})


def test_a_field_on_one_side_only_is_caught() -> None:
    require_native("cfc")
    lib = _native.load("cfc")
    fields = list(abi.LfCfcLayer._fields_)
    added = _cfc_struct([*fields, ("extra", ctypes.c_int64)])  # a field Python has and C has not
    removed = _cfc_struct(fields[:-1])  # a field C has and Python has not
    swapped = _cfc_struct([fields[1], fields[0], *fields[2:]])  # the same fields, in another order
    renamed = _cfc_struct([("hidden_size", ctypes.c_int64), *fields[1:]])
    size = ctypes.sizeof(abi.LfCfcLayer)
    v = abi.CFC_ABI_VERSION
    assert abi.mismatch(lib, "cfc", v, [added]) == f"struct lf_cfc_layer is {size} bytes in C, {size + 8} in Python"
    assert abi.mismatch(lib, "cfc", v, [removed]) == f"struct lf_cfc_layer is {size} bytes in C, {size - 8} in Python"
    assert abi.mismatch(lib, "cfc", v, [swapped]) == "field lf_cfc_layer.width is at byte 8 in C, 0 in Python"
    assert abi.mismatch(lib, "cfc", v, [renamed]) == "field lf_cfc_layer.hidden_size is not in the C struct"
    assert abi.mismatch(lib, "cfc", v + 1, abi.CFC_STRUCTS) == f"ABI version {v} in C, {v + 1} in Python"
    unknown = type("Unknown", (ctypes.Structure,), {"c_name": "lf_cfc_other", "_fields_": fields})
    assert abi.mismatch(lib, "cfc", v, [unknown]) == "struct lf_cfc_other is not in the C library"
    old = SimpleNamespace()  # a library from before the structs (no lf_cfc_abi_version)
    assert "does not describe its structs" in str(abi.mismatch(old, "cfc", v, abi.CFC_STRUCTS))


def test_a_field_added_in_c_only_is_caught(tmp_path: Path) -> None:
    """lf_abi.h edited (one more field in lf_cfc_layer), _native_abi.py not: the library is refused."""
    require_native("cfc")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    src = Path(_native.__file__).parent
    for f in [src / "cfc.c", *src.glob("*.h")]:
        shutil.copy(f, tmp_path / f.name)
    header = (tmp_path / "lf_abi.h").read_text()
    anchor = "    int64_t offset;   /* of the layer's state in the chain state (B, N) */\n"
    assert anchor in header
    (tmp_path / "lf_abi.h").write_text(header.replace(anchor, anchor + "    int64_t stride;\n"))
    out = tmp_path / "liblf_cfc_edited.so"
    cmd = [cc, "-O1", "-std=gnu11", "-fPIC", "-shared", "-fopenmp", "-I", str(tmp_path), str(tmp_path / "cfc.c")]
    subprocess.run([*cmd, "-o", str(out), "-lm"], check=True, capture_output=True, timeout=300)
    lib = ctypes.CDLL(str(out))
    size = ctypes.sizeof(abi.LfCfcLayer)
    reason = abi.mismatch(lib, "cfc", abi.CFC_ABI_VERSION, abi.CFC_STRUCTS)
    assert reason == f"struct lf_cfc_layer is {size + 8} bytes in C, {size} in Python"


def test_a_library_that_does_not_match_is_refused(monkeypatch, caplog) -> None:
    """A CfC layer whose library reports another ABI version runs the torch kernels; why_not says why."""
    require_native("cfc")
    v = abi.CFC_ABI_VERSION
    stale = abi.KernelLibrary("cfc", v + 1, abi.CFC_STRUCTS, _native_cfc._setup)
    monkeypatch.setattr(_native_cfc, "_LIB", stale)
    expected = f"the C library 'cfc' does not match liquidflow._ops.native_abi: ABI version {v} in C, {v + 1} in Python"
    with caplog.at_level(logging.WARNING, logger="liquidflow.native"):
        assert stale.why_not() == expected
    assert stale.get() is None
    assert expected in caplog.text  # said once, where the library is refused

    layer = make_layer("cfc-default", torch.float64)
    x, dt, _ = random_batch(3, 5, torch.float64)
    spec, params, Wx, b = layer.cell.fused_plan()
    P = torch.nn.functional.linear(x.transpose(0, 1), Wx, b)
    ts, h0 = dt.t().unsqueeze(-1), torch.zeros(3, layer.state_size, dtype=torch.float64)
    assert _native_cfc.why_not([spec], P, ts, None, h0, [params]) == expected
    assert _native_cfc.chain([spec], P, ts, None, h0, [params]) is None
    refused = run_with_grads(layer, x, dt, None, None, True)  # the torch kernels run
    monkeypatch.undo()
    assert _native_cfc.why_not([spec], P, ts, None, h0, [params]) is None
    native = run_with_grads(layer, x, dt, None, None, True)
    for a, b_ in zip(refused[:2] + tuple(refused[2]), native[:2] + tuple(native[2])):
        torch.testing.assert_close(a, b_, rtol=1e-10, atol=1e-12)


def test_a_step_library_that_does_not_match_is_refused(monkeypatch) -> None:
    require_native("step")
    layer = make_layer("cfc-default", torch.float32).eval()
    x = torch.randn(2, INPUT_SIZE)
    smaller = [*abi.STEP_STRUCTS[:-1], _step_ltc_plan_without_fc()]
    monkeypatch.setattr(
        _native_step, "_LIB", abi.KernelLibrary("step", abi.STEP_ABI_VERSION, smaller, _native_step._setup)
    )
    monkeypatch.setattr(_native_step, "_lib", None)  # the per-step cache of the checked library
    monkeypatch.setattr(_native_step, "_plans", {})
    reason = _native_step.why_not(layer, x, None, 1.0)
    assert reason is not None and reason.startswith("the C library 'step' does not match")
    assert "struct lf_step_ltc_plan is" in reason
    assert _native_step.step(layer, x, None, 1.0) is None
    with torch.no_grad():
        y, _ = layer.step(x, None, 1.0)  # the torch step runs
    monkeypatch.undo()
    with torch.no_grad():
        y2, _ = layer.step(x, None, 1.0)
    torch.testing.assert_close(y, y2, rtol=2e-6, atol=2e-6)


def _step_ltc_plan_without_fc() -> type[ctypes.Structure]:
    fields = [f for f in abi.LfStepLtcPlan._fields_ if f[0] != "fc"]
    return type("Edited", (ctypes.Structure,), {"c_name": "lf_step_ltc_plan", "_fields_": fields})


def test_switched_off_is_the_first_reason_everywhere() -> None:
    layer = make_layer("ltc-fc", torch.float64).eval()
    x = torch.randn(2, INPUT_SIZE, dtype=torch.float64)
    base, C, h0 = torch.zeros(2, 1, 2, 3), torch.ones(2, 1, 3), torch.zeros(1, 3)
    tables = [torch.zeros(3, 3) for _ in range(4)]
    with _native.use_native(False):
        for module in (_native_cfc, _native_ltc, _native_step):
            assert module._LIB.why_not() == abi.SWITCHED_OFF
            assert module._LIB.get() is None
        assert _native_step.why_not(layer, x, None, 1.0) == abi.SWITCHED_OFF
        assert _native_ltc.why_not_dense(2, base, C, None, h0, *tables) == abi.SWITCHED_OFF
        assert _native_ltc.why_not_sensory(base[:, :, 0], base[0, 0], *tables) == abi.SWITCHED_OFF
    assert abi.SWITCHED_OFF == "native kernels switched off (LIQUIDFLOW_NATIVE=0 or use_native(False))"
