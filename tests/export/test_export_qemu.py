"""Generated C cross-compiled for Cortex-M and run on QEMU's mps2 boards (M4F, M7, M3 soft float):
outputs against PyTorch over 1,000 steps, instructions per step counted by our TCG plugin (printed
in the terminal summary), and the footprint targets of issue 6 for AutoNCP(32, 10) with 20 inputs."""

from __future__ import annotations

import export_cases as ec
import pytest

from liquidflow.export import _toolchain as tc
from liquidflow.export import footprint, to_c
from liquidflow.torch import LTC
from liquidflow.wirings import AutoNCP

M3_INT8 = ("ltc-ncp", "cfc-default", "wcfc-autoncp", "seq-cfc-head")
ARM = ("gcc", "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm")


@pytest.mark.parametrize("board", sorted(tc.BOARDS))
def test_emulated_board_matches_pytorch(board: str, cases, report, tmp_path, record_property) -> None:  # type: ignore[no-untyped-def]
    ec.require_tools(*ARM)
    sources, hcases, expect = [], [], []
    for c in cases.values():
        # the soft-float M3 is slow to emulate: int8 there for one model per cell family only
        dtypes = (
            (("float32", "f"), ("int8", "q")) if board != "mps2-an385" or c.name in M3_INT8 else (("float32", "f"),)
        )
        for dtype, tag in dtypes:
            prefix = f"{c.prefix}_{tag}"
            sources.append(to_c(c.model, tmp_path, prefix=prefix, dtype=dtype).source)
            hcases.append(tc.HarnessCase(prefix, c.x, c.dt))
            expect.append((c, prefix, dtype))
    harness = tc.write_harness(hcases, tmp_path / "harness.c")
    elf = tc.build_arm(board, [harness, *sources], tmp_path / "harness.elf", include=[tmp_path])
    run = tc.run_qemu(board, elf, tc.build_plugin(tmp_path), timeout=240)
    got = tc.parse_harness_output(run.stdout)
    per_step = tc.steps_instructions(run, [len(h.dt) for h in hcases])
    counts = {f"{c.name} ({dtype})": ips for (c, _, dtype), ips in zip(expect, per_step, strict=True)}
    report(board, counts)
    record_property("instructions_per_step", counts)
    failures = []
    for c, prefix, dtype in expect:
        if prefix not in got or got[prefix].shape != c.y.shape:
            failures.append(f"{prefix}: no or wrong-shaped output")
            continue
        err = ec.max_err(got[prefix], c.y)
        bound = ec.FLOAT_TOL if dtype == "float32" else ec.int8_bound(c.y)
        if not err <= bound:
            failures.append(f"{prefix}: max abs error {err:.3g} > {bound:.3g}")
    assert not failures, "\n".join(failures)
    assert all(ips > 0 for ips in per_step)


@pytest.fixture(scope="module")
def ncp32() -> LTC:
    import torch

    torch.manual_seed(0)
    return LTC(20, AutoNCP(32, 10)).eval()


@pytest.mark.parametrize(("dtype", "flash_target"), [("float32", 16 * 1024), ("int8", 8 * 1024)])
def test_autoncp32_footprint_targets(dtype: str, flash_target: int, ncp32: LTC, report) -> None:  # type: ignore[no-untyped-def]
    ec.require_tools(*ARM)
    fp = footprint(ncp32, target="cortex-m4", dtype=dtype, steps=50)
    assert fp.flash_bytes <= flash_target
    assert fp.ram_bytes <= 2048
    # the weights counted in flash: every synapse stores sigma, mu, w, erev (4 B each, or 1 B in int8)
    n_syn = ncp32.wiring.synapse_count + ncp32.wiring.sensory_synapse_count
    assert fp.weight_bytes >= n_syn * (16 if dtype == "float32" else 4)
    assert fp.flash_bytes > fp.weight_bytes
    assert fp.instructions_per_step is not None and fp.instructions_per_step > 1000
    report("mps2-an386", {f"footprint AutoNCP(32,10) LTC ({dtype})": fp.instructions_per_step})


def test_sparse_wiring_stores_only_existing_synapses(ncp32: LTC, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The flash target is met by storing the synapses of the wiring, not N x N matrices."""
    import re

    src = to_c(ncp32, tmp_path, prefix="ncp").source.read_text()
    counts = [int(m) for m in re.findall(r"pre-synaptic index \((\d+)\)", src)]
    w = ncp32.wiring
    assert sorted(counts) == sorted([w.synapse_count, w.sensory_synapse_count])
    assert w.synapse_count < w.units * w.units
