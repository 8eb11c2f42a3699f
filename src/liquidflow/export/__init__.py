"""Edge export: ONNX (step and sequence graphs) and standalone C99 (float32 / int8).

* :func:`to_onnx` — ``mode="step"``: ``(x, dt, state) -> (y, state)`` for streaming runtimes;
  ``mode="sequence"``: dynamic batch and time axes, a ``timespans`` input (an ONNX ``Scan`` over the
  step graph, so no sequence length is baked in).
* :func:`to_c` — a header and a source file, no heap, libm only, weights ``const``, state in a struct.
* :func:`run_c` — run the generated C over sequences on the host or an emulated Cortex-M board.
* :func:`footprint` — flash, RAM and instructions per step of the generated C on a Cortex-M target,
  measured with ``arm-none-eabi-size`` and QEMU (see docs/export.md);
* :data:`TARGETS` (the Cortex-M targets by name), :func:`missing_tools` and :class:`ToolError` — the
  toolchain those need: which tools are not on PATH, and the error a failed compiler or emulator run raises.
"""

from ._c import CExport as CExport
from ._c import to_c as to_c
from ._footprint import Footprint as Footprint
from ._footprint import footprint as footprint
from ._model import StepModule as StepModule
from ._model import reference_outputs as reference_outputs
from ._model import unwrap as unwrap
from ._onnx import to_onnx as to_onnx
from ._run import run_c as run_c
from ._stepper import CompiledStepper as CompiledStepper
from ._toolchain import TARGETS as TARGETS
from ._toolchain import ToolError as ToolError
from ._toolchain import missing_tools as missing_tools

__all__ = [
    "TARGETS",
    "CExport",
    "CompiledStepper",
    "Footprint",
    "StepModule",
    "ToolError",
    "footprint",
    "missing_tools",
    "reference_outputs",
    "run_c",
    "to_c",
    "to_onnx",
    "unwrap",
]
