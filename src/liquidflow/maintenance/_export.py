"""Deploying the liquid risk model to a gateway: C export and a check that C equals Python."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..training import RiskExportView, RiskModel
from ._pipeline import Sequences, model_dt, predict_sequences

ExportView = RiskExportView  #: the liquid core of a RiskModel as liquidflow.export takes it


@dataclass
class CCheck:
    """Result of :func:`check_c_export`."""

    ok: bool
    message: str
    max_abs_diff: float = float("nan")  #: max |risk_C - risk_Python| over the checked readings
    readings: int = 0
    flash_bytes: int = 0  #: const weight data of the generated C
    source: str = ""


def check_c_export(model: RiskModel, seqs: Sequences, machine: int, out_dir: str | Path, tol: float = 1e-4) -> CCheck:
    """Export ``model`` to C, compile it with the host gcc, run it over one machine's readings and
    compare its risk scores with the Python model's. Never raises for a missing tool: the result
    says what was skipped and why."""
    try:
        from ..export import missing_tools, run_c, to_c
    except ImportError as e:  # pragma: no cover - depends on the build
        return CCheck(False, f"skipped: liquidflow.export is not available ({e})")
    if missing_tools(["gcc"]):
        return CCheck(False, "skipped: no host C compiler (gcc) on PATH")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = int(seqs.lengths[machine])
    x = torch.from_numpy(seqs.x[machine : machine + 1, :n])
    dt = model_dt(model, seqs)[machine : machine + 1, :n]
    with torch.no_grad():
        xin = model.transform_raw(x)[0].numpy().astype(np.float32)
    ts = (dt[0] / model.time_unit_h).numpy().astype(np.float32)
    view = ExportView(model)
    try:
        exp = to_c(view, out, prefix="lfrisk")  # kept in the run folder for the gateway build
        y = np.asarray(run_c(view, xin, ts))  # outputs (T, O) of the generated C, compiled with the host gcc
    except Exception as e:  # a failed build is reported, not fatal for the caller
        return CCheck(False, f"skipped: C export or build failed: {type(e).__name__}: {str(e)[:300]}")
    if len(y) != n:
        return CCheck(False, f"C harness printed {len(y)} steps; expected {n}")
    risk_c = 1.0 / (1.0 + np.exp(-y[:, 0].astype(np.float64)))
    sub = seqs.subset([machine])
    risk_py, _ = predict_sequences(model, sub)
    diff = float(np.max(np.abs(risk_c - risk_py[0, :n])))
    ok = diff <= tol
    msg = (
        f"C model (gcc, {exp.weight_bytes:,} bytes of const weights) over {n} readings of machine "
        f"{seqs.ids[machine]}: max |risk_C - risk_Python| = {diff:.2e} ({'equal within' if ok else 'ABOVE'} {tol:g})"
    )
    return CCheck(ok, msg, diff, n, int(exp.weight_bytes), str(exp.source))
