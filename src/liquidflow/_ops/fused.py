"""Fused sequence kernels: whole-sequence autograd Functions with hand-written backward passes.

The plain path (a Python loop over ``cell.step_pre``, autograd recording every operation) is the
reference. The kernels here compute the same equations (docs/math.md) over a whole sequence with
fewer and larger operations:

* the forward pass runs without autograd into preallocated time-major (T, B, .) buffers;
* the backward pass walks the sequence in reverse with the hand-derived adjoint of one step, and
  computes each weight gradient at the end as one matrix product over all T·B rows (CfC), or from
  per-row accumulators summed over the batch once (LTC);
* LTC recomputes its synaptic activations in the backward pass from the saved states, so training
  memory is O(T·B·N·unfolds) instead of O(T·B·N²·unfolds);
* with gradients off (inference, streaming) nothing is recorded or saved for a backward pass;
  ``step`` skips the general input normalisation for well-formed inputs.

Derived weights (masked, scaled, transposed) are rebuilt on every call, never cached across calls:
a cache could not see in-place edits made through ``.data``.

Which kernel runs is decided by :mod:`._dispatch` alone (these run on GPUs, and on CPU where the C
kernels do not apply). ``tests/test_conformance.py`` checks them against the numpy reference and
their gradients against the loop. :func:`use_fused` switches every kernel (C and torch) off.

The kernels live in :mod:`.fused_cfc` and :mod:`.fused_ltc`, the switch in :mod:`.switch`; this module is
their one import point (``from liquidflow._ops import fused``).
"""

from __future__ import annotations

from .fused_cfc import CfCLayerSpec as CfCLayerSpec
from .fused_cfc import _cfc_forward as _cfc_forward
from .fused_cfc import _CfCChain as _CfCChain
from .fused_cfc import backbone_act as backbone_act
from .fused_cfc import cfc_chain as cfc_chain
from .fused_cfc import cfc_chain_step as cfc_chain_step
from .fused_cfc import cfc_why_not as cfc_why_not
from .fused_ltc import _LTCExplicit as _LTCExplicit
from .fused_ltc import _LTCSemiImplicit as _LTCSemiImplicit
from .fused_ltc import _LTCSparse as _LTCSparse
from .fused_ltc import ltc_explicit as ltc_explicit
from .fused_ltc import ltc_explicit_step as ltc_explicit_step
from .fused_ltc import ltc_semi_implicit as ltc_semi_implicit
from .fused_ltc import ltc_sparse as ltc_sparse
from .fused_ltc import ltc_step as ltc_step
from .switch import fused_enabled as fused_enabled
from .switch import off_reason as off_reason
from .switch import use_fused as use_fused
