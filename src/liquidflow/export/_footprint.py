"""Footprint of a model exported to C on a Cortex-M target: flash, RAM, instructions per step.

* flash: code + const weights of the generated object file alone (``arm-none-eabi-size``; libc and
  libm are not counted — they are shared by the whole firmware);
* RAM: the state struct plus the stack of ``<prefix>_step`` and its helpers (``-fstack-usage``),
  plus any static data (there is none by design);
* instructions per step: the generated harness runs the model on QEMU (mps2 board of the target)
  under the instruction-counting plugin; the count between the markers around the step loop,
  divided by the number of steps. libm calls (expf, tanhf) are included.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from . import _toolchain as tc
from ._c import to_c
from ._model import unwrap


@dataclass
class Footprint:
    target: str
    board: str
    dtype: str
    kind: str
    flash_bytes: int  # code + const weights (text + data)
    weight_bytes: int  # const weight arrays alone
    code_bytes: int  # flash_bytes - weight_bytes
    state_bytes: int
    stack_bytes: int
    ram_bytes: int  # state + stack + static data
    instructions_per_step: float | None
    steps_counted: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        ips = "n/a" if self.instructions_per_step is None else f"{self.instructions_per_step:,.0f}"
        rows = [
            ("model", self.kind),
            ("target", f"{self.target} ({self.board} on QEMU)"),
            ("weights", self.dtype),
            ("flash: code + weights (excl. libc/libm)", f"{self.flash_bytes:,} B"),
            ("  of which const weights", f"{self.weight_bytes:,} B"),
            ("RAM: state + stack (step)", f"{self.ram_bytes:,} B ({self.state_bytes} + {self.stack_bytes})"),
            ("instructions per step", ips),
        ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def footprint(
    model: nn.Module,
    target: str = "cortex-m4",
    dtype: str = "float32",
    steps: int = 100,
    count_instructions: bool = True,
    seed: int = 0,
) -> Footprint:
    """Generate C for ``model``, compile it for ``target`` and measure it (see the module docstring).

    Needs ``arm-none-eabi-gcc`` (and ``qemu-system-arm`` plus ``gcc`` for the instruction count).
    """
    if target not in tc.TARGETS:
        raise ValueError(f"target must be one of {sorted(tc.TARGETS)}; got {target!r}")
    need = ["arm-none-eabi-gcc", "arm-none-eabi-size"]
    if count_instructions:
        need += ["arm-none-eabi-nm", "qemu-system-arm", "gcc"]
    missing = tc.missing_tools(need)
    if missing:
        raise tc.ToolError(
            f"footprint needs {', '.join(missing)} on PATH (apt: gcc-arm-none-eabi, "
            "libnewlib-arm-none-eabi, qemu-system-arm)"
        )
    board = tc.TARGETS[target]
    em = unwrap(model)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gen = to_c(model, d, prefix="lf", dtype=dtype)
        size = tc.size_object(target, gen.source, include=[d])
        ips = None
        if count_instructions:
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((steps, em.input_size)).astype(np.float32)
            dt = rng.uniform(0.1, 1.0, steps).astype(np.float32)
            harness = tc.write_harness([tc.HarnessCase("lf", x, dt)], d / "harness.c")
            elf = tc.build_arm(board.machine, [harness, gen.source], d / "h.elf", include=[d])
            plugin = tc.build_plugin(d)
            run = tc.run_qemu(board.machine, elf, plugin)
            ips = tc.steps_instructions(run, [steps])[0]
    state = 4 * gen.state_size
    return Footprint(
        target=target,
        board=board.machine,
        dtype=dtype,
        kind=gen.kind,
        flash_bytes=size.flash,
        weight_bytes=gen.weight_bytes,
        code_bytes=size.flash - gen.weight_bytes,
        state_bytes=state,
        stack_bytes=size.stack_step,
        ram_bytes=state + size.stack_step + size.data + size.bss,
        instructions_per_step=ips,
        steps_counted=steps if count_instructions else 0,
    )
