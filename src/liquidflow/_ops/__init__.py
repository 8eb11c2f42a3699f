"""The sequence kernels of both front ends, below them: jobs, executors and their autograd wrappers.

liquidflow.torch and liquidflow.keras (on its torch backend) never import each other; both hand a
:class:`~.jobs.CfCJob` or :class:`~.jobs.LTCJob` to the executors here:

* :mod:`.native_cfc`, :mod:`.native_ltc`: the C kernels of :mod:`liquidflow._native` (CPU tensors,
  float32/float64), each as one ``torch.autograd.Function`` per sequence; :mod:`.native_abi` is their
  typed interface (``lf_abi.h``);
* :mod:`.fused`: the same kernels written with torch operations (any device), one autograd node per
  sequence (:mod:`.fused_cfc`, :mod:`.fused_ltc`; :mod:`.switch` turns every kernel off).

Each executor says why it does not apply (:func:`native_why_not`, :func:`fused_why_not`); which one
runs a call is decided by the front end's dispatcher (``liquidflow.torch._dispatch``).
"""

from __future__ import annotations

import torch

from . import fused, native_cfc, native_ltc
from .jobs import CfCJob, LTCJob

Tensor = torch.Tensor
__all__ = ["CfCJob", "LTCJob", "fused_why_not", "native_why_not", "run_fused", "run_native"]


def native_why_not(job: CfCJob | LTCJob) -> str | None:
    """Why the C kernel cannot run this job (None: it can; the job then remembers what it checked)."""
    if isinstance(job, CfCJob):
        lib = native_cfc.resolve(*job.args())  # the C library, or why not
        if isinstance(lib, str):
            return lib
        job.lib = lib  # run_native calls it without repeating the checks
        return None
    xm = job.map_inputs(job.x)
    base = None
    if native_ltc.why_not_sensory(xm, job.leak, *job.sensory) is None:
        base = native_ltc.sensory(xm, job.leak, *job.sensory)  # (T, B, 2, N) in one pass, in C
    job.base = base = base if base is not None else job.torch_base()
    if job.edges is None:
        return native_ltc.why_not_dense(job.unfolds, base, job.C, job.keep, job.h0, *job.synapses, job.tableau,
                                        _ltc_lstm(job))  # fmt: skip
    return native_ltc.why_not_sparse(job.unfolds, base, job.C, job.keep, job.h0, *job.synapses, *job.edges,
                                     job.tableau, _ltc_lstm(job))  # fmt: skip


def _ltc_lstm(job: LTCJob) -> tuple[Tensor, Tensor, Tensor] | None:
    """An LTC job's mixed memory as the dense C kernel takes it: (pre, R, c0)."""
    return None if job.lstm is None else (job.lstm.pre, job.lstm.r_t.t(), job.lstm.c0)


def run_native(job: CfCJob | LTCJob) -> Tensor:
    """States (T, B, N) from the C kernel; call after :func:`native_why_not` returned None."""
    if isinstance(job, CfCJob):
        out = native_cfc.run(job.lib, *job.args()) if job.lib is not None else native_cfc.chain(*job.args())
    else:
        assert job.base is not None  # set by native_why_not
        if job.edges is None:
            res = native_ltc.dense(job.unfolds, job.base, job.C, job.keep, job.h0, *job.synapses, job.tableau,
                                   _ltc_lstm(job))  # fmt: skip
        else:
            res = native_ltc.sparse(job.unfolds, job.base, job.C, job.keep, job.h0, *job.synapses, *job.edges,
                                    job.tableau, _ltc_lstm(job))  # fmt: skip
        if isinstance(res, tuple):  # mixed memory: (states, the LSTM's cell states)
            assert job.lstm is not None
            out, job.lstm.c = res
        else:
            out = res
    if out is None:  # why_not said it applies: a disagreement is a bug, not a reason to fall back
        raise RuntimeError("liquidflow's native kernel refused a call its why_not accepted; please report this")
    return out


def fused_why_not(job: CfCJob | LTCJob) -> str | None:
    """Why the fused torch kernel cannot run this job (None: it can)."""
    if isinstance(job, CfCJob):
        return fused.cfc_why_not(job.specs)
    return "mixed memory: the fused torch kernel has no LSTM" if job.lstm is not None else None


def run_fused(job: CfCJob | LTCJob) -> Tensor:
    """States (T, B, N) from the fused torch kernels."""
    if isinstance(job, CfCJob):
        return fused.cfc_chain(*job.args())
    base = job.base if job.base is not None else job.torch_base()
    if job.tableau is not None:
        return fused.ltc_explicit(job.unfolds, job.tableau, base, job.C, job.keep, job.h0, *job.synapses, job.edges)
    if job.edges is None:
        return fused.ltc_semi_implicit(job.unfolds, base, job.C, job.keep, job.h0, *job.synapses)
    return fused.ltc_sparse(job.unfolds, base, job.C, job.keep, job.h0, *job.synapses, *job.edges)
