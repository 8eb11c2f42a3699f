"""Plain-numpy reference implementation of docs/math.md, one sample at a time.

Written independently of the torch and keras code (no shared helpers), in float64, with the
equations spelled out as in the document. Every front end and export is tested against it.
Parameters are passed as dicts of numpy arrays holding the *effective* values of docs/math.md
(positive parameters already positive).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Array = np.ndarray


def sigmoid(x: Array) -> Array:
    return np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + e^-x) without overflow


def softplus(x: Array) -> Array:
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def lecun_tanh(x: Array) -> Array:
    return 1.7159 * np.tanh(0.666 * x)


_erf = np.vectorize(math.erf, otypes=[float])

ACT: dict[str, Callable[[Array], Array]] = {
    "lecun_tanh": lecun_tanh,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": lambda x: x * sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),  # the exact (erf) GELU, torch's default
}

# --------------------------------------------------------------------------------------------- LTC
RK_TABLEAUX: dict[str, tuple[list[list[float]], list[float]]] = {
    "euler": ([[]], [1.0]),
    "midpoint": ([[], [0.5]], [0.0, 1.0]),
    "heun": ([[], [1.0]], [0.5, 0.5]),
    "rk4": ([[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]], [1 / 6, 1 / 3, 1 / 3, 1 / 6]),
}


def ltc_conductances(p: dict[str, Array], x_mapped: Array, v: Array) -> tuple[Array, Array]:
    """numer_j and denom_j of docs/math.md for one sample (x_mapped: (I,), v: (N,))."""
    N = v.shape[0]
    numer = p["gleak"] * p["vleak"]
    denom = p["gleak"].copy()
    numer = numer.copy()
    for j in range(N):
        # recurrent synapses i -> j
        a = p["w"][:, j] * p["sparsity_mask"][:, j] * sigmoid(p["sigma"][:, j] * (v - p["mu"][:, j]))
        numer[j] += np.sum(a * p["erev"][:, j])
        denom[j] += np.sum(a)
        # sensory synapses k -> j
        s = (
            p["sensory_w"][:, j]
            * p["sensory_sparsity_mask"][:, j]
            * sigmoid(p["sensory_sigma"][:, j] * (x_mapped - p["sensory_mu"][:, j]))
        )
        numer[j] += np.sum(s * p["sensory_erev"][:, j])
        denom[j] += np.sum(s)
    return numer, denom


def ltc_map_inputs(p: dict[str, Array], x: Array) -> Array:
    if "input_w" in p:
        x = x * p["input_w"]
    if "input_b" in p:
        x = x + p["input_b"]
    return x


def ltc_map_outputs(p: dict[str, Array], v: Array, motor: int) -> Array:
    y = v[:motor]
    if "output_w" in p:
        y = y * p["output_w"]
    if "output_b" in p:
        y = y + p["output_b"]
    return y


def ltc_step(
    p: dict[str, Array],
    x: Array,
    v: Array,
    dt: float,
    motor: int,
    unfolds: int = 6,
    solver: str = "semi_implicit",
    epsilon: float = 1e-8,
) -> tuple[Array, Array]:
    """One LTC interval for one sample: returns (output, new state)."""
    xm = ltc_map_inputs(p, x)
    h = dt / unfolds
    for _ in range(unfolds):
        if solver == "semi_implicit":
            numer, denom = ltc_conductances(p, xm, v)
            c = p["cm"] / h
            v = (c * v + numer) / (c + denom + epsilon)
        else:
            a, b = RK_TABLEAUX[solver]

            def f(u: Array) -> Array:
                numer, denom = ltc_conductances(p, xm, u)
                return (numer - denom * u) / p["cm"]

            ks: list[Array] = []
            for row in a:
                u = v + sum((h * coef * k for coef, k in zip(row, ks)), np.zeros_like(v))
                ks.append(f(u))
            v = v + sum((h * coef * k for coef, k in zip(b, ks)), np.zeros_like(v))
    return ltc_map_outputs(p, v, motor), v


# --------------------------------------------------------------------------------------------- CfC
def linear(w: Array, b: Array | None, x: Array) -> Array:
    """PyTorch-layout linear map: w (out, in)."""
    y = w @ x
    return y if b is None else y + b


def cfc_step(
    p: dict[str, Array],
    x: Array,
    h: Array,
    dt: float,
    mode: str = "default",
    activation: str = "lecun_tanh",
    head_activation: str = "tanh",
) -> tuple[Array, Array]:
    """One CfC step for one sample.

    p: 'backbone' -> list of (W, b); heads 'f1_w','f1_b','f2_w','f2_b','ta_w','ta_b','tb_w','tb_b'
    (weights already multiplied by any sparsity mask); pure mode: 'f1_w','f1_b','w_tau','A'.
    """
    z = np.concatenate([x, h])
    for w, b in p["backbone"]:
        z = ACT[activation](linear(w, b, z))
    if mode == "pure":
        u1 = linear(p["f1_w"], p["f1_b"], z)
        new = p["A"] - p["A"] * np.exp(-dt * (np.abs(p["w_tau"]) + np.abs(u1))) * u1
        return new, new
    f1 = ACT[head_activation](linear(p["f1_w"], p["f1_b"], z))
    f2 = ACT[head_activation](linear(p["f2_w"], p["f2_b"], z))
    g = sigmoid(-linear(p["ta_w"], p["ta_b"], z) * dt + linear(p["tb_w"], p["tb_b"], z))
    if mode == "no_gate":
        new = f1 * g + f2
    elif mode == "default":
        new = f1 * g + f2 * (1.0 - g)
    else:
        raise ValueError(mode)
    return new, new


def wired_cfc_step(
    layers: list[dict[str, Array]], sizes: list[int], x: Array, h: Array, dt: float, mode: str = "default"
) -> tuple[Array, Array]:
    """Wired CfC: layer l gets the input (l = 0) or layer l-1's new state; state = concatenation."""
    offsets = np.cumsum([0, *sizes])
    inp = x
    new_parts = []
    for l, p in enumerate(layers):
        out, _ = cfc_step(p, inp, h[offsets[l] : offsets[l + 1]], dt, mode)
        new_parts.append(out)
        inp = out
    return inp, np.concatenate(new_parts)


def lstm_step(p: dict[str, Array], x: Array, h: Array, c: Array) -> tuple[Array, Array]:
    """Mixed-memory LSTM: gates i, ig, fg, og; forget bias +1."""
    z = p["input_w"] @ x + p["input_b"] + p["recurrent_w"] @ h
    n = h.shape[0]
    i, ig, fg, og = z[:n], z[n : 2 * n], z[2 * n : 3 * n], z[3 * n :]
    c = c * sigmoid(fg + 1.0) + np.tanh(i) * sigmoid(ig)
    return np.tanh(c) * sigmoid(og), c


# ------------------------------------------------------------------------------------------ sequence
def run_sequence(
    step: Callable[[Array, Array, float], tuple[Array, Array]],
    xs: Array,
    dts: Array,
    h0: Array,
    mask: Array | None = None,
    lstm: dict[str, Array] | None = None,
    c0: Array | None = None,
    proj: tuple[Array, Array] | None = None,
    return_sequences: bool = True,
) -> tuple[Array, Array, Array | None]:
    """docs/math.md section 5 for ONE sample: xs (T, I), dts (T,), mask (T,) bool.

    Returns (outputs (T, out) or (out,), final h, final c).
    """
    h = h0.copy()
    c = None if c0 is None else c0.copy()
    outs = []
    last = None
    for t in range(xs.shape[0]):
        observed = True if mask is None else bool(mask[t])
        if not observed:
            outs.append(None)
            continue
        if lstm is not None:
            assert c is not None
            h, c = lstm_step(lstm, xs[t], h, c)
        y, h = step(xs[t], h, float(dts[t]))
        if proj is not None:
            y = proj[0] @ y + proj[1]
        outs.append(y)
        last = y
    width = next(o.shape[0] for o in outs if o is not None) if last is not None else 0
    seq = np.stack([o if o is not None else np.zeros(width) for o in outs])
    return (seq if return_sequences else last), h, c  # type: ignore[return-value]
