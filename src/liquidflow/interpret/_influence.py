"""Which sensory input drives which motor output: integrated gradients and path contributions.

Integrated gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017).
For a scalar output ``F`` (one model output, reduced over time), an input sequence ``x`` (T, I) and a
baseline ``x'``, the attribution of input value ``x[t, i]`` is

    IG[t, i] = (x[t, i] - x'[t, i]) * integral_0^1 dF/dx[t, i] (x' + a (x - x')) da

approximated here with the midpoint rule on ``steps`` points ``a = (k + 1/2) / steps``. The
attributions are complete: ``sum_{t,i} IG[t, i] = F(x) - F(x')`` up to the quadrature error, which is
reported (``Influence.completeness_gap``).

Over a data set three (outputs x inputs) matrices are reported, each the mean over samples of a sum
over time steps:

* ``matrix`` (the signed *influence*, drawn in the heatmap): ``E[ sum_t |x - x'| * mean_a dF/dx ]``.
  Positive when moving the input away from the baseline in either direction moves the output the
  same way as the input moves (excitatory), negative when against it (inhibitory). Unlike the plain
  IG mean, it does not cancel out when inputs are scattered on both sides of the baseline.
* ``attribution``: ``E[ sum_t IG ]``, the plain mean of integrated gradients (complete per sample).
* ``magnitude``: ``E[ |sum_t IG| ]``, how much each input accounts for, whatever the sign.

Path contributions (NCP wirings) linearize the network around the operating points visited on the
data. The *gain* of a synapse ``i -> j`` is how much neuron ``j`` moves per unit of neuron ``i``:

* LTC: neuron j relaxes towards ``v*_j = numer_j / denom_j`` (docs/math.md). With the conductances
  frozen, ``d v*_j / d v_i = w_ij sigma_ij s'(sigma_ij (v_i - mu_ij)) (E_ij - v*_j) / denom_j`` with
  ``s' = sigmoid (1 - sigmoid)``; the same formula on the sensory synapses, times ``input_w`` of the input
  mapping, gives the gain of an input ``k -> j``; and ``output_w`` is the gain of a motor neuron to its
  output.
* Wired CfC: the entry of the Jacobian ``d h'_j / d in_i`` of layer ``l`` (input: the sensory inputs or
  the new state of layer ``l - 1``), for the wired pairs ``i -> j`` (through the masked heads and the
  unmasked gate heads).

Gains are averaged over all observed steps of the data. The contribution of a path
``sensory k -> inter a -> command c -> motor m`` is the product of the gains of its three synapses
(times the output gain for LTC); summed over all paths it gives the feed-forward linear response of
motor ``m`` to input ``k`` (recurrent command synapses are left out).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..torch import CfCCell, LTCCell, WiredCfCCell
from ._dynamics import trace
from ._model import as_batch, get_core, get_wiring, kind, model_outputs, normalize_inputs

Tensor = torch.Tensor
REDUCTIONS = ("last", "mean")


def _progress(it: Any, total: int, desc: str, enabled: bool) -> Iterator[Any]:
    if enabled:
        try:
            from tqdm.auto import tqdm

            return iter(tqdm(it, total=total, desc=desc))
        except ImportError:  # pragma: no cover - tqdm is in the train extra
            pass
    return iter(it)


def reduce_outputs(out: Tensor, mask: Tensor | None, reduce: str) -> Tensor:
    """(B, T, O) sequence outputs -> (B, O): the last observed step or the mean over observed steps.
    (B, O) outputs (``return_sequences=False`` or a sequence-level head) pass through."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}; got {reduce!r}")
    if out.dim() == 2:
        return out
    if out.dim() != 3:
        raise ValueError(f"model outputs must be (B, O) or (B, T, O); got shape {tuple(out.shape)}")
    B, T, _ = out.shape
    if mask is None:
        return out[:, -1] if reduce == "last" else out.mean(1)
    w = mask.to(out.dtype).unsqueeze(-1)  # (B, T, 1)
    if reduce == "mean":
        return (out * w).sum(1) / w.sum(1).clamp_min(1.0)
    idx = torch.arange(T, device=out.device).expand(B, T)
    last = torch.where(mask, idx, torch.full_like(idx, -1)).max(1).values.clamp_min(0)
    return out[torch.arange(B, device=out.device), last]


@dataclass
class Influence:
    """Input -> output attributions over a data set (see the module docstring for the definitions).

    Attributes:
        matrix: (O, I) signed influence ``E[sum_t |x - x'| * mean_a dF/dx]``.
        attribution: (O, I) mean integrated gradients ``E[sum_t IG]``.
        magnitude: (O, I) ``E[|sum_t IG|]``.
        completeness_gap: max over samples and outputs of ``|sum IG - (F(x) - F(x'))|`` divided by
            ``max(1e-12, max |F(x) - F(x')|)``.
        steps, baseline, reduce: how it was computed.
        input_names, output_names: labels for the axes.
    """

    matrix: np.ndarray
    attribution: np.ndarray
    magnitude: np.ndarray
    completeness_gap: float
    steps: int
    baseline: str
    reduce: str
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)

    def ranking(self, output: int) -> list[int]:
        """Input indices ordered by decreasing |influence| on ``output``."""
        return [int(i) for i in np.argsort(-np.abs(self.matrix[output]), kind="stable")]


def _baseline(x: Tensor, mask: Tensor | None, baseline: str | Tensor | np.ndarray) -> tuple[Tensor, str]:
    if isinstance(baseline, str):
        if baseline == "zeros":
            return torch.zeros_like(x), "zeros"
        if baseline == "mean":
            if mask is None:
                mean = x.reshape(-1, x.shape[-1]).mean(0)
            else:
                w = mask.to(x.dtype).unsqueeze(-1)
                mean = (x * w).sum((0, 1)) / w.sum((0, 1)).clamp_min(1.0)
            return mean.expand_as(x).clone(), "mean"
        raise ValueError(f"baseline must be 'mean', 'zeros' or an array broadcastable to x; got {baseline!r}")
    b = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    try:
        return b.expand_as(x).clone(), "custom"
    except RuntimeError as e:
        raise ValueError(f"baseline of shape {tuple(b.shape)} does not broadcast to x {tuple(x.shape)}") from e


def integrated_gradients(
    model: nn.Module,
    x: Tensor | np.ndarray,
    timespans: Tensor | np.ndarray | float | None = None,
    mask: Any = None,
    baseline: str | Tensor | np.ndarray = "mean",
    steps: int = 32,
    reduce: str = "last",
    batch_size: int = 64,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    progress: bool = False,
) -> Influence:
    """Signed sensory-input x output attribution matrix of ``model`` over a data set.

    Args:
        model: an LTC/CfC layer or a model with one in ``.core`` (its forward is used as is, on raw
            inputs, so a SequenceModel's normalization and head are included).
        x: (B, T, I) inputs; ``timespans`` (float, (B, T) or (B, T, 1)) and ``mask`` (B, T) as for the layer.
        baseline: ``"mean"`` (default: each input channel held at its mean over the data set, the
            "nothing unusual happens" sequence; zero for standardized inputs), ``"zeros"``, or an array
            broadcastable to ``x``.
        steps: points of the midpoint rule along the straight path from the baseline to ``x``.
        reduce: how a sequence output (B, T, O) becomes one number per output: ``"last"`` (the last
            observed step, default) or ``"mean"`` (over observed steps).
        batch_size: samples per forward pass (each is repeated ``steps`` times).
        progress: show a tqdm progress bar.

    Returns:
        An :class:`Influence`; ``matrix[o, i]`` is the signed influence of input ``i`` on output ``o``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}; got {reduce!r}")
    xb, ts, m = as_batch(model, x, timespans, mask)
    base, base_name = _baseline(xb, m, baseline)
    B, T, I = xb.shape
    alphas = (torch.arange(steps, dtype=xb.dtype, device=xb.device) + 0.5) / steps  # (S,)
    was_training = model.training
    model.eval()
    sums: dict[str, list[np.ndarray]] = {"matrix": [], "ig": [], "gap": [], "delta": []}
    try:
        starts = range(0, B, batch_size)
        for s in _progress(starts, len(starts), "integrated gradients", progress):
            xs, bs, tss = xb[s : s + batch_size], base[s : s + batch_size], ts[s : s + batch_size]
            ms = m[s : s + batch_size] if m is not None else None
            n = xs.shape[0]
            diff = xs - bs  # (n, T, I)
            path = (bs.unsqueeze(0) + alphas.view(-1, 1, 1, 1) * diff.unsqueeze(0)).reshape(steps * n, T, I)
            path.requires_grad_(True)
            rep_ts = tss.repeat(steps, 1)
            rep_m = ms.repeat(steps, 1) if ms is not None else None
            with torch.enable_grad():
                out = reduce_outputs(model_outputs(model, path, rep_ts, rep_m), rep_m, reduce)  # (S n, O)
                O = out.shape[-1]
                grads = []
                for o in range(O):
                    (g,) = torch.autograd.grad(out[:, o].sum(), path, retain_graph=o < O - 1)
                    grads.append(g.reshape(steps, n, T, I).mean(0))  # path-averaged gradient
            avg = torch.stack(grads, 1)  # (n, O, T, I)
            if ms is not None:
                avg = avg * ms.to(avg.dtype)[:, None, :, None]
            ig = (avg * diff.unsqueeze(1)).sum(2)  # (n, O, I)
            directional = (avg * diff.abs().unsqueeze(1)).sum(2)
            with torch.no_grad():
                f_x = reduce_outputs(model_outputs(model, xs, tss, ms), ms, reduce)
                f_b = reduce_outputs(model_outputs(model, bs, tss, ms), ms, reduce)
            delta = (f_x - f_b).detach()
            sums["matrix"].append(directional.detach().cpu().numpy())
            sums["ig"].append(ig.detach().cpu().numpy())
            sums["gap"].append((ig.sum(-1) - delta).abs().detach().cpu().numpy())
            sums["delta"].append(delta.abs().cpu().numpy())
    finally:
        model.train(was_training)
    ig_all = np.concatenate(sums["ig"])  # (B, O, I)
    gap = float(np.max(np.concatenate(sums["gap"])) / max(1e-12, float(np.max(np.concatenate(sums["delta"])))))
    O = ig_all.shape[1]
    return Influence(
        matrix=np.concatenate(sums["matrix"]).mean(0),
        attribution=ig_all.mean(0),
        magnitude=np.abs(ig_all).mean(0),
        completeness_gap=gap,
        steps=steps,
        baseline=base_name,
        reduce=reduce,
        input_names=list(input_names) if input_names else [f"input {i}" for i in range(I)],
        output_names=list(output_names) if output_names else [f"output {o}" for o in range(O)],
    )


# ---------------------------------------------------------------------------------------------- paths
@dataclass
class EdgeGains:
    """Mean gains of the synapses over a data set, in neuron-id order (see the module docstring).

    Attributes:
        neuron: (N, N) gain of synapse ``i -> j`` at ``[i, j]`` (0 where there is no synapse).
        sensory: (I, N) gain of input synapse ``k -> j``.
        output: (M,) gain of motor neuron ``m`` to output ``m`` (LTC ``output_w``; ones for CfC).
    """

    neuron: np.ndarray
    sensory: np.ndarray
    output: np.ndarray


def _ltc_gains(cell: LTCCell, x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Gains (B, N, N) and (B, I, N) of an LTC cell at inputs x (B, I) and states v (B, N)."""
    p = cell.effective_parameters()
    xm = cell.map_inputs(x)
    w = p["w"] * p["sparsity_mask"]
    sig = torch.sigmoid(p["sigma"] * (v.unsqueeze(-1) - p["mu"]))  # (B, N, N)
    a = w * sig
    ws = p["sensory_w"] * p["sensory_sparsity_mask"]
    ssig = torch.sigmoid(p["sensory_sigma"] * (xm.unsqueeze(-1) - p["sensory_mu"]))  # (B, I, N)
    s = ws * ssig
    numer = p["gleak"] * p["vleak"] + (a * p["erev"]).sum(1) + (s * p["sensory_erev"]).sum(1)
    denom = p["gleak"] + a.sum(1) + s.sum(1)
    vstar = numer / denom  # (B, N)
    gain = w * p["sigma"] * sig * (1 - sig) * (p["erev"] - vstar.unsqueeze(1)) / denom.unsqueeze(1)
    sgain = ws * p["sensory_sigma"] * ssig * (1 - ssig) * (p["sensory_erev"] - vstar.unsqueeze(1)) / denom.unsqueeze(1)
    if cell.input_w is not None:
        sgain = sgain * cell.input_w.view(1, -1, 1)
    return gain, sgain


def _jacobian(fn: Any, inp: Tensor, out_size: int) -> Tensor:
    """Per-sample Jacobian (B, out, in) of a function applied row by row (one batched backward pass)."""
    inp = inp.detach().requires_grad_(True)
    with torch.enable_grad():
        out = fn(inp)  # (B, out)
        eye = torch.eye(out_size, dtype=out.dtype, device=out.device)
        grad_out = eye.unsqueeze(1).expand(out_size, *out.shape)  # (out, B, out)
        (J,) = torch.autograd.grad(out, inp, grad_outputs=grad_out, is_grads_batched=True)  # (out, B, in)
    return J.transpose(0, 1)


def _gain_steps(
    model: nn.Module,
    x: Tensor | np.ndarray,
    timespans: Tensor | np.ndarray | float | None,
    mask: Any,
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """For each time step: (observed (B,) float, gains (B, N, N), sensory gains (B, I, N)), neuron-id order,
    zero where the wiring has no synapse."""
    core = get_core(model)
    k = kind(model)
    if k == "cfc":
        raise ValueError("edge gains need a wired model (LTC, or CfC built with a Wiring); this CfC has a backbone")
    if core.lstm is not None:
        raise ValueError("edge gains are not defined for mixed_memory=True (the LSTM rewrites the state)")
    wiring = get_wiring(model)
    assert wiring is not None and wiring.sensory_adjacency_matrix is not None
    xb, ts, m = as_batch(model, x, timespans, mask)
    tr = trace(model, xb, ts, m)
    xn = normalize_inputs(model, xb).detach()
    B, T, I = xn.shape
    N = wiring.units
    states = torch.as_tensor(tr.states, dtype=xn.dtype, device=xn.device)  # (B, T, N), neuron-id order
    before = torch.cat([torch.zeros_like(states[:, :1]), states[:, :-1]], 1)  # state entering each step
    observed = (m if m is not None else torch.ones(B, T, dtype=torch.bool, device=xn.device)).to(xn.dtype)
    adj = torch.as_tensor(np.abs(wiring.adjacency_matrix) > 0, device=xn.device)
    sadj = torch.as_tensor(np.abs(wiring.sensory_adjacency_matrix) > 0, device=xn.device)
    cell = core.cell
    ids = [wiring.get_neurons_of_layer(layer) for layer in range(wiring.num_layers)]
    for t in range(T):
        with torch.no_grad():
            if isinstance(cell, LTCCell):
                G, S = _ltc_gains(cell, xn[:, t], before[:, t])
            else:
                assert isinstance(cell, WiredCfCCell)
                G = torch.zeros(B, N, N, dtype=xn.dtype, device=xn.device)
                S = torch.zeros(B, I, N, dtype=xn.dtype, device=xn.device)
                dt = ts[:, t : t + 1]
                inp = xn[:, t]
                for layer_id, sub in enumerate(cell.layers):
                    assert isinstance(sub, CfCCell)
                    state = before[:, t][:, ids[layer_id]]

                    def fn(z: Tensor, sub: CfCCell = sub, state: Tensor = state, dt: Tensor = dt) -> Tensor:
                        return sub.step_pre(sub.precompute(z), state, dt)[0]

                    J = _jacobian(fn, inp, len(ids[layer_id])).transpose(1, 2)  # (B, in_l, H_l)
                    if layer_id == 0:
                        S[:, :, ids[0]] = J
                    else:
                        rows = torch.as_tensor(ids[layer_id - 1], device=xn.device)
                        cols = torch.as_tensor(ids[layer_id], device=xn.device)
                        G[:, rows.unsqueeze(1), cols.unsqueeze(0)] = J
                    inp = fn(inp)
        yield observed[:, t], G * adj, S * sadj


def _output_gain(model: nn.Module) -> np.ndarray:
    cell = get_core(model).cell
    if isinstance(cell, LTCCell) and cell.output_w is not None:
        return np.asarray(cell.output_w.detach().cpu().double().numpy())
    return np.ones(int(get_core(model).motor_size))


def edge_gains(
    model: nn.Module,
    x: Tensor | np.ndarray,
    timespans: Tensor | np.ndarray | float | None = None,
    mask: Any = None,
) -> EdgeGains:
    """Mean gain of every synapse of a wired model (LTC or wired CfC) over the data ``x`` (B, T, I),
    averaged over the observed steps.

    Raises:
        ValueError: for a CfC with a backbone (no wiring, no synapses) or a mixed-memory layer.
    """
    G_sum: Tensor | None = None
    S_sum: Tensor | None = None
    count = 0.0
    for w, G, S in _gain_steps(model, x, timespans, mask):
        g = (G * w.view(-1, 1, 1)).sum(0)
        s = (S * w.view(-1, 1, 1)).sum(0)
        G_sum = g if G_sum is None else G_sum + g
        S_sum = s if S_sum is None else S_sum + s
        count += float(w.sum())
    assert G_sum is not None and S_sum is not None
    scale = max(count, 1.0)
    return EdgeGains(
        neuron=G_sum.detach().cpu().double().numpy() / scale,
        sensory=S_sum.detach().cpu().double().numpy() / scale,
        output=_output_gain(model),
    )


@dataclass
class PathContributions:
    """Contributions of sensory -> inter -> command -> motor paths (NCP), from :func:`edge_gains`.

    Attributes:
        tensor: (I, n_inter, n_command, M) contribution of each path; axes index ``inter``,
            ``command`` and ``motor`` (neuron ids).
        inter, command, motor: neuron ids of the three layers.
        total: (M, I) sum over paths: the feed-forward linear response of each motor output to each input.
    """

    tensor: np.ndarray
    inter: list[int]
    command: list[int]
    motor: list[int]
    gains: EdgeGains

    @property
    def total(self) -> np.ndarray:
        return self.tensor.sum((1, 2)).T

    def top(self, motor: int, n: int = 5, sensory: int | None = None) -> list[tuple[float, tuple[int, int, int, int]]]:
        """The ``n`` strongest paths into motor neuron index ``motor``: ``(contribution, (k, inter id,
        command id, motor id))`` sorted by decreasing |contribution| (zero paths left out)."""
        t = self.tensor[..., motor]
        if sensory is not None:
            mask = np.zeros_like(t, dtype=bool)
            mask[sensory] = True
            t = np.where(mask, t, 0.0)
        flat = np.argsort(-np.abs(t), axis=None, kind="stable")[:n]
        out = []
        for f in flat:
            k, a, c = np.unravel_index(f, t.shape)
            value = float(t[k, a, c])
            if value != 0.0:
                out.append((value, (int(k), self.inter[a], self.command[c], self.motor[motor])))
        return out


def path_contributions(
    model: nn.Module,
    x: Tensor | np.ndarray,
    timespans: Tensor | np.ndarray | float | None = None,
    mask: Any = None,
) -> PathContributions:
    """Per-path contributions through an NCP wiring (see the module docstring for the method).

    A path's contribution is the product of its synapse gains taken at the same sample and step,
    averaged over the observed steps of the data (a mean of products, not a product of means).

    Raises:
        ValueError: if the model's wiring is not an NCP (three layers inter, command, motor).
    """
    wiring = get_wiring(model)
    if wiring is None or wiring.num_layers != 3:
        name = "no wiring" if wiring is None else f"a {type(wiring).__name__} wiring with {wiring.num_layers} layer(s)"
        raise ValueError(f"path contributions need an NCP wiring (inter, command, motor layers); the model has {name}")
    inter, command, motor = (wiring.get_neurons_of_layer(layer) for layer in range(3))
    out_gain = _output_gain(model)
    total: Tensor | None = None
    G_sum: Tensor | None = None
    S_sum: Tensor | None = None
    count = 0.0
    for w, G, S in _gain_steps(model, x, timespans, mask):
        s = S[:, :, inter] * w.view(-1, 1, 1)  # (B, I, A), weighted by the observed mask
        ic = G[:, inter][:, :, command]  # (B, A, C)
        cm = G[:, command][:, :, motor] * torch.as_tensor(out_gain, dtype=G.dtype, device=G.device)  # (B, C, M)
        step = torch.einsum("bka,bac,bcm->kacm", s, ic, cm)
        total = step if total is None else total + step
        g = (G * w.view(-1, 1, 1)).sum(0)
        ss = (S * w.view(-1, 1, 1)).sum(0)
        G_sum = g if G_sum is None else G_sum + g
        S_sum = ss if S_sum is None else S_sum + ss
        count += float(w.sum())
    assert total is not None and G_sum is not None and S_sum is not None
    scale = max(count, 1.0)
    gains = EdgeGains(
        neuron=G_sum.detach().cpu().double().numpy() / scale,
        sensory=S_sum.detach().cpu().double().numpy() / scale,
        output=out_gain,
    )
    tensor = total.detach().cpu().double().numpy() / scale
    return PathContributions(tensor=tensor, inter=inter, command=command, motor=motor, gains=gains)
