"""Keras on its torch backend: the liquid layers' sequences run by the kernels of ``liquidflow._ops``.

Imported by :mod:`._layers` only when ``keras.backend.backend() == "torch"`` (this module imports
torch; ``liquidflow.keras`` itself must import without it). On that backend a Keras variable holds a
``torch.nn.Parameter`` (``variable.value``), so a cell's sequence can be described as the same job
``liquidflow.torch``'s cells build (:class:`~liquidflow._ops.jobs.CfCJob`,
:class:`~liquidflow._ops.jobs.LTCJob`) from the Keras variables, and run by the same executors (the C
kernels with their hand-written backward on CPU, else the fused torch kernels), with gradients
flowing to the Keras variables through autograd. liquidflow.torch is not imported.

Which options a kernel takes is decided by the specification layer (``CfCSpec.kernel_why_not``) and
by the executors' own ``*_why_not``; every other call (mixed memory, pure mode,
mixed precision, symbolic calls, ...) keeps the keras.ops loop of :mod:`._layers`. One job builder
per cell class (``_BUILDERS``): a new cell option is a new check in the spec and a new field in its
builder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import _ops
from .._ops import switch as _switch
from .._spec import LECUN_A, LECUN_B, TABLEAUX, CfCLayer, CfCSpec
from ._cells import CfCCell, LTCCell, WiredCfCCell

Tensor = torch.Tensor
PATHS = _switch.PATHS
_FORCE = _switch.ForcedPath()


@contextlib.contextmanager
def use_path(path: str | None) -> Iterator[None]:
    """Force the path of the Keras layers' sequence calls on the torch backend (tests compare them).

    ``"loop"``: the keras.ops loop; ``"fused"``: the fused torch kernels even on CPU; ``"native"``:
    the C kernels (a call they do not take raises ``RuntimeError`` with the reason); None: choose.
    """
    with _FORCE.forcing(path):
        yield


def _t(v: Any) -> Tensor:
    """The torch tensor of a Keras variable (its Parameter: autograd reaches the variable) or tensor."""
    value = getattr(v, "value", v)
    return value  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------ jobs
def _cfc_plan(cell: CfCCell, training: bool) -> str | tuple[CfCLayer, list[Tensor | None], Tensor, Tensor]:
    """(layer spec, [WxT, WhT, b, HwT, hb], WxT, b) of one dense CfC cell, or why no kernel takes it.

    Keras Dense kernels are (in, out), the transposes of torch ``Linear.weight``: the kernels' ``*T``
    matrices are the Keras kernels as they are. lecun_tanh's constants are folded into the weights as
    in liquidflow.torch (the kernel then applies tanh).
    """
    spec = CfCSpec(
        input_size=int(cell.input_size),
        hidden_size=int(cell.units),
        mode=cell.mode,
        backbone_activation=cell.backbone_activation,
        backbone_units=int(cell.backbone_units or 0),
        backbone_layers=int(cell.backbone_layers),
        backbone_dropout=float(cell.backbone_dropout),
        head_activation=cell.head_activation,
    )
    why = spec.kernel_why_not(bool(training)) or _not_built_here(spec, bool(training))
    if why is not None:
        return why
    I, H = spec.input_size, spec.hidden_size
    names = cell._head_names
    kernels = []
    for name in names:
        k = _t(getattr(cell, name).kernel)
        if cell.sparsity_mask is not None and name in ("f1", "f2"):
            k = k * _t(cell.sparsity_mask)
        kernels.append(k)
    hwT = kernels[0] if len(kernels) == 1 else torch.cat(kernels, 1)  # (width, heads)
    biases = [_t(getattr(cell, name).bias) for name in names]
    hb = biases[0] if len(biases) == 1 else torch.cat(biases, 0)
    if spec.backbone_layers == 0:
        layer = CfCLayer(H, hwT.shape[1], False, spec.mode)
        return layer, [hwT[:I], hwT[I:], hb, None, None], hwT[:I], hb
    W, b = _t(cell.backbone[0].kernel), _t(cell.backbone[0].bias)
    act = spec.backbone_activation
    if act == "lecun_tanh":
        W, b, hwT, act = W * LECUN_B, b * LECUN_B, hwT * LECUN_A, "tanh"
    layer = CfCLayer(H, W.shape[1], True, spec.mode, act)
    return layer, [W[:I], W[I:], b, hwT, hb], W[:I], b


def _not_built_here(spec: CfCSpec, training: bool) -> str | None:
    """Options the spec may let the kernels take but this module does not build jobs for yet (the
    keras.ops loop runs them): extra backbone layers, pure mode, lecun_tanh heads, dropout."""
    if spec.backbone_layers > 1:
        return f"backbone_layers={spec.backbone_layers} (not yet in the Keras jobs)"
    if spec.mode not in ("default", "no_gate"):
        return f"mode={spec.mode!r} (not yet in the Keras jobs)"
    if spec.head_activation != "tanh":
        return f"head_activation={spec.head_activation!r} (not yet in the Keras jobs)"
    if training and spec.backbone_dropout > 0:
        return "backbone_dropout in training mode (not yet in the Keras jobs)"
    return None


def _input_map(x: Tensor, WxT: Tensor, b: Tensor) -> Tensor:
    """x (T, B, I) @ WxT (I, K) + b -> (T, B, K), one product."""
    T, B, I = x.shape
    return torch.addmm(b, x.reshape(T * B, I), WxT).view(T, B, WxT.shape[1])


def _cfc_job(cell: CfCCell, x: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor, training: bool) -> Any:
    plan = _cfc_plan(cell, training)
    if isinstance(plan, str):
        return plan
    layer, params, WxT, b = plan
    return _ops.CfCJob([layer], _input_map(x, WxT, b), ts, keep, h0, [[None, params[1], None, params[3], params[4]]])


def _wired_cfc_job(cell: WiredCfCCell, x: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor,
                   training: bool) -> Any:  # fmt: skip
    specs: list[CfCLayer] = []
    params: list[list[Tensor | None]] = []
    first: tuple[Tensor, Tensor] | None = None
    for i, sub in enumerate(cell.layers):
        plan = _cfc_plan(sub, training)
        if isinstance(plan, str):
            return f"layer {i}: {plan}"
        layer, (WxT, WhT, b, _, _), _, _ = plan
        specs.append(layer)
        if i == 0:
            first = (WxT, b)  # type: ignore[assignment]
            params.append([None, WhT, None, None, None])
        else:
            params.append([WxT, WhT, b, None, None])
    assert first is not None
    return _ops.CfCJob(specs, _input_map(x, *first), ts, keep, h0, params)


def _ltc_job(cell: LTCCell, x: Tensor, ts: Tensor, keep: Tensor | None, h0: Tensor, training: bool) -> Any:
    tableau = None if cell.solver == "semi_implicit" else TABLEAUX[cell.solver]
    eps = cell.epsilon if tableau is None else 0.0  # the explicit solvers have no epsilon (as liquidflow.torch)
    gleak = F.softplus(_t(cell.gleak_raw))
    leak = torch.stack([gleak * _t(cell.vleak), gleak + eps])  # (2, N)
    ws = F.softplus(_t(cell.sensory_w_raw)) * _t(cell.sensory_sparsity_mask)  # (I, N)
    ssig, smu = _t(cell.sensory_sigma), _t(cell.sensory_mu)
    sensory = (ws, ws * _t(cell.sensory_erev), ssig, ssig * smu)
    C = F.softplus(_t(cell.cm_raw)) / (ts / cell.ode_unfolds)  # (T, B, N): C_m / h
    in_w = None if cell.input_w is None else _t(cell.input_w)
    in_b = None if cell.input_b is None else _t(cell.input_b)

    def map_inputs(u: Tensor) -> Tensor:
        if in_w is not None:
            u = u * in_w
        if in_b is not None:
            u = u + in_b
        return u

    def precompute(u: Tensor) -> Tensor:  # (T, B, I) -> (T, B, 2, N), inputs mapped here
        act = torch.sigmoid(ssig * map_inputs(u).unsqueeze(-1) - sensory[3])  # (T, B, I, N)
        return torch.stack([(act * sensory[1]).sum(-2), (act * ws).sum(-2)], dim=-2)

    mask = _t(cell.sparsity_mask)
    w_raw, sigma, mu, erev = _t(cell.w_raw), _t(cell.sigma), _t(cell.mu), _t(cell.erev)
    edges: tuple[Tensor, Tensor] | None = None
    if cell._edges is not None:  # the same sparse/dense choice as the loop and liquidflow.torch
        pre, post = np.nonzero(np.abs(cell.wiring.adjacency_matrix))
        src, dst = torch.from_numpy(pre.astype(np.int64)), torch.from_numpy(post.astype(np.int64))
        if x.device.type != "cpu":
            src, dst = src.to(x.device), dst.to(x.device)
        w = F.softplus(w_raw[src, dst]) * mask[src, dst]
        s = sigma[src, dst]
        synapses = (w, w * erev[src, dst], s, s * mu[src, dst])
        edges = (src, dst)
    else:
        w = F.softplus(w_raw) * mask
        synapses = (w, w * erev, sigma, sigma * mu)
    return _ops.LTCJob(cell.ode_unfolds, x, map_inputs, precompute, leak, sensory, C, keep, h0, synapses, edges,
                       tableau=tableau)  # fmt: skip


_BUILDERS: dict[type, Callable[..., Any]] = {CfCCell: _cfc_job, WiredCfCCell: _wired_cfc_job, LTCCell: _ltc_job}


def _output(cell: Any, S: Tensor) -> Tensor:
    """The cell's outputs from the states (T, B, N): LTC motor neurons mapped, a wired CfC's last layer."""
    if isinstance(cell, LTCCell):
        y = S[..., : cell.motor_size]
        if cell.output_w is not None:
            y = y * _t(cell.output_w)
        if cell.output_b is not None:
            y = y + _t(cell.output_b)
        return y
    if isinstance(cell, WiredCfCCell):
        return S[..., -cell.output_size :]
    return S


# ------------------------------------------------------------------------------------- dispatch
def why_not(layer: Any, x: Any, ts: Any, mask: Any, training: bool) -> str | None:
    """Why no kernel can run this call of a Keras liquid layer (the options and inputs, not the job)."""
    if _FORCE.path == "loop":
        return "use_path('loop')"
    if layer.lstm is not None:
        return "mixed_memory=True: its LSTM runs step by step"
    if training and getattr(layer, "recurrent_dropout", 0.0) > 0:
        return "recurrent_dropout in training: its mask enters every step of the loop"
    if type(layer.rnn_cell) not in _BUILDERS:
        return f"no kernel for {type(layer.rnn_cell).__name__}"
    if not isinstance(x, Tensor) or not isinstance(ts, Tensor):
        return "inputs are not torch tensors"
    if x.device.type == "meta":
        return "a symbolic call (shape inference)"
    dtype = layer.rnn_cell.variable_dtype
    if str(x.dtype).removeprefix("torch.") != dtype or dtype not in ("float32", "float64"):
        return f"compute dtype {str(x.dtype).removeprefix('torch.')} with variables in {dtype}"
    off = _ops.fused.off_reason()
    if off is not None:
        return off
    if ts.requires_grad:
        return "timespans require grad: the kernels do not differentiate the elapsed time"
    if x.shape[1] == 0 or x.shape[0] == 0:
        return "an empty sequence or batch"
    if mask is not None and not bool(mask.any(1).all()):
        return "a sample has no observed step"
    return None


def run(layer: Any, x: Tensor, ts: Tensor, mask: Tensor | None, h0: Tensor,
        training: bool) -> tuple[Tensor, Tensor] | None:  # fmt: skip
    """Outputs and final state of a Keras liquid layer's call from a kernel, or None: run the loop.

    x (B, T, F), ts (B, T, 1) (padded steps already given a harmless timespan), mask (B, T) bool or
    None, h0 (B, N), all in processing order (``go_backwards`` already applied). Returns the outputs
    (B, T, out) with zeros at padded steps when the layer returns sequences, else each sample's last
    observed output (B, out); and the final state (B, N). Call it after :func:`why_not` said None.
    """
    cell = layer.rnn_cell
    keep = None if mask is None else mask.t().unsqueeze(-1)
    job = _BUILDERS[type(cell)](cell, x.transpose(0, 1), ts.transpose(0, 1), keep, h0, training)
    if isinstance(job, str):
        return None
    S = _execute(job, x.device)
    if S is None:
        return None
    y = _output(cell, S)  # (T, B, out)
    if mask is None:
        out = y.transpose(0, 1) if layer.return_sequences else y[-1]
    elif layer.return_sequences:
        out = torch.where(keep, y, torch.zeros((), dtype=y.dtype, device=y.device)).transpose(0, 1)  # type: ignore[arg-type]
    else:  # the output of each sample's last observed step
        last = mask.shape[1] - 1 - mask.flip(1).to(torch.int64).argmax(1)  # (B,)
        out = y[last, torch.arange(mask.shape[0], device=mask.device)]
    return out, S[-1]


def _execute(job: Any, device: torch.device) -> Tensor | None:
    """States (T, B, N) from the C kernel (CPU, where it applies), else the fused torch kernel."""
    if _FORCE.path != "fused" and device.type == "cpu":
        why = _ops.native_why_not(job)
        if why is None:
            return _ops.run_native(job)
        if _FORCE.path == "native":
            raise RuntimeError(f"use_path('native'): the C kernel does not apply: {why}")
    if _ops.fused_why_not(job) is None:
        return _ops.run_fused(job)
    if _FORCE.path is not None:
        raise RuntimeError(f"use_path({_FORCE.path!r}): the fused kernel does not apply: {_ops.fused_why_not(job)}")
    return None


def explain(layer: Any, x: Tensor, ts: Tensor | None = None, mask: Tensor | None = None,
            training: bool = False) -> str:  # fmt: skip
    """Which path a call would take and why the others do not (for docs, tests and users)."""
    if ts is None:
        ts = torch.ones(x.shape[0], x.shape[1], 1, dtype=x.dtype, device=x.device)
    why = why_not(layer, x, ts, mask, training)
    if why is None:
        cell = layer.rnn_cell
        keep = None if mask is None else mask.t().unsqueeze(-1)
        h0 = torch.zeros(x.shape[0], cell.state_size, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            job = _BUILDERS[type(cell)](cell, x.transpose(0, 1), ts.transpose(0, 1), keep, h0, training)
        if isinstance(job, str):
            why = job
        else:
            native = _ops.native_why_not(job) if x.device.type == "cpu" else f"tensors on {x.device}"
            fused = _ops.fused_why_not(job)
            if native is None:
                return "sequence path: native"
            if fused is None:
                return f"sequence path: fused\n  native not used: {native}"
            why = f"native: {native}; fused: {fused}"
    return f"sequence path: loop\n  kernels not used: {why}"
