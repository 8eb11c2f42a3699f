"""Run a model's generated C on whole sequences: on the host (gcc) or on an emulated board (QEMU)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
from torch import nn

from . import _toolchain as tc
from ._c import to_c
from ._model import unwrap


def run_c(
    model: nn.Module,
    x: np.ndarray,
    dt: np.ndarray | float = 1.0,
    dtype: str = "float32",
    board: str | None = None,
) -> np.ndarray:
    """Outputs of the generated C for ``model`` at every step: what a device would compute.

    Args:
        model: as for :func:`~liquidflow.export.to_c`.
        x: inputs (T, F), or (B, T, F) for several independent sequences (each starts from zeros).
        dt: elapsed time before each step: a float, (T,) or (B, T).
        dtype: ``"float32"`` or ``"int8"`` weights.
        board: None to compile for the host with gcc, or a QEMU board (``mps2-an386`` Cortex-M4F,
            ``mps2-an500`` Cortex-M7, ``mps2-an385`` Cortex-M3).

    Returns:
        float32 outputs (T, O) or (B, T, O).
    """
    em = unwrap(model)
    xs = np.asarray(x, dtype=np.float32)
    batched = xs.ndim == 3
    if xs.ndim not in (2, 3) or xs.shape[-1] != em.input_size:
        raise ValueError(f"x must be (T, {em.input_size}) or (B, T, {em.input_size}); got shape {xs.shape}")
    if not batched:
        xs = xs[None]
    B, T, _ = xs.shape
    dt_arr = np.asarray(dt, dtype=np.float32)
    try:
        dts = np.broadcast_to(dt_arr[None] if dt_arr.ndim == 1 else dt_arr, (B, T))
    except ValueError as e:
        raise ValueError(f"dt must be a float, ({T},) or ({B}, {T}); got shape {dt_arr.shape}") from e
    tools = ["gcc"] if board is None else ["gcc", "arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm"]
    missing = tc.missing_tools(tools)
    if missing:
        raise tc.ToolError(f"run_c needs {', '.join(missing)} on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gen = to_c(model, d, prefix="lfrun", dtype=dtype)
        cases = [tc.HarnessCase("lfrun", xs[b], dts[b], label=f"s{b}") for b in range(B)]
        harness = tc.write_harness(cases, d / "harness.c")
        if board is None:
            exe = tc.build_host([harness, gen.source], d / "harness", include=[d])
            text = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, check=True).stdout
        else:
            elf = tc.build_arm(board, [harness, gen.source], d / "harness.elf", include=[d])
            text = tc.run_qemu(board, elf, timeout=600).stdout
    got = tc.parse_harness_output(text)
    out = np.stack([got[f"s{b}"] for b in range(B)])
    return out if batched else out[0]
