"""Generate standalone C99 (a header and a source file) for one streaming step of a model.

The generated code has no heap and needs nothing beyond libm: weights are ``static const`` arrays
(flash), the recurrent state is a caller-owned struct (RAM), scratch lives on the stack. Every
symbol starts with the prefix. Weights are written with ``%.9g`` so float32 values round-trip
exactly.

Layout of the step (docs/export.md):

* input normalisation ``x = (x - mean) / std`` (when the model carries one);
* mixed memory: the LSTM of docs/math.md §4, weights ``[W_x | W_h]`` as one matrix;
* the cell: LTC (sparse synapse lists in compressed-row form, by post-synaptic neuron, so only
  existing synapses cost flash and time; the solver unrolled from its Butcher tableau), CfC (dense
  backbone, heads) or wired CfC (heads stored sparse when their wiring mask is);
* the projection ``proj_size`` and the model's head.

``dtype="int8"`` quantises every weight matrix and every per-synapse parameter symmetrically per
output channel (per row of a linear map; per post-synaptic neuron for LTC synapses):
``q = round(w / s)``, ``s = max|w| / 127``; vectors (biases, leak, capacitance, normalisation) and
all activations stay float32, and products accumulate in float.

Why one file (about 600 lines): generating is one pass over one accumulator. ``_Gen`` hands out the
array names, counts the flash bytes and records which C helpers are used while the emitters
(``_emit_ltc``, ``_emit_cfc``, ``_emit_lstm``) write the step body, and ``to_c`` assembles header,
helpers and body from that same state. Emitters in a module of their own would reach into
``_Gen``'s internals from outside, and the order arrays are named in (which the generated file's
bytes depend on) would be spread over two modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._files import atomic_write
from .._spec import C_ACTIVATIONS
from ..torch import CfCCell, ExplicitRK, LTCCell, MixedMemoryLSTMCell, SemiImplicitEuler, WiredCfCCell
from ._model import ExportModel, unwrap

DTYPES = ("float32", "int8")
_PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Bool _Complex _Imaginary".split()
)
# Density above which a masked matrix is stored dense (an index per weight stops paying for itself).
DENSE_ABOVE = 0.6


FORMAT_VERSION = 1  # of the generated API (symbols, state layout); <PREFIX>_FORMAT_VERSION in the header


def check_prefix(prefix: str) -> str:
    """Validate a C identifier prefix: a letter, then letters, digits or underscores (at most 32)."""
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix) or prefix in _C_KEYWORDS:
        raise ValueError(
            f"prefix must be a C identifier (a letter, then letters, digits or '_', at most 32 characters, "
            f"not a C keyword); got {prefix!r}"
        )
    if prefix.startswith("_") or "__" in prefix:
        raise ValueError(f"prefix must not contain '__' (reserved in C); got {prefix!r}")
    return prefix


def fmt_float(v: float) -> str:
    """A float32 value as a C literal that round-trips exactly (``%.9g`` plus ``f``)."""
    f = float(np.float32(v))
    if not np.isfinite(f):
        raise ValueError(f"cannot export a non-finite weight ({f}); check the model's parameters")
    s = f"{f:.9g}"
    if "." not in s and "e" not in s:
        s += ".0"
    return s + "f"


def _array(ctype: str, name: str, values: np.ndarray, comment: str = "", per_line: int = 8) -> str:
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        raise ValueError(f"internal: empty array {name}")
    if ctype == "float":
        items = [fmt_float(v) for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    head = f"/* {comment} */\n" if comment else ""
    body = ",\n    ".join(lines)
    return f"{head}static const {ctype} {name}[{flat.size}] = {{\n    {body}\n}};\n"


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: ``w ~= q * scale[:, None]``, ``|q| <= 127``; all-zero rows get scale 1."""
    w = np.asarray(w, dtype=np.float64)
    amax = np.abs(w).max(axis=1) if w.shape[1] else np.zeros(w.shape[0])
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale.astype(np.float64)[:, None]), -127, 127).astype(np.int8)
    return q, scale


def _np32(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().astype(np.float32)


@dataclass
class _Gen:
    """Accumulates the const data and the code of one generated file."""

    p: str  # prefix
    dtype: str
    idx_t: str
    data: list[str] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)
    counter: int = 0
    weight_bytes: int = 0

    def name(self, what: str) -> str:
        self.counter += 1
        return f"{self.p}_{what}{self.counter}"

    def floats(self, values: np.ndarray, comment: str) -> str:
        n = self.name("v")
        arr = np.asarray(values, dtype=np.float32)
        self.data.append(_array("float", n, arr, comment))
        self.weight_bytes += 4 * arr.size
        return n

    def ints(self, ctype: str, values: np.ndarray, comment: str) -> str:
        n = self.name("i")
        arr = np.asarray(values)
        self.data.append(_array(ctype, n, arr, comment, per_line=16))
        self.weight_bytes += {"int8_t": 1, "uint8_t": 1, "uint16_t": 2}[ctype] * arr.size
        return n

    def linear(
        self, weight: np.ndarray, bias: np.ndarray | None, mask: np.ndarray | None, what: str
    ) -> Callable[[str, str], str]:
        """Const data for ``y = W x + b`` (rows = outputs); returns ``call(x, y) -> C statement``.

        Entries where ``mask`` is 0 are dropped; a matrix sparser than ``DENSE_ABOVE`` is stored in
        compressed rows (only existing weights are stored and multiplied).
        """
        w = np.asarray(weight, dtype=np.float32)
        rows, cols = w.shape
        keep = np.ones_like(w, dtype=bool) if mask is None else np.asarray(mask) != 0
        w = np.where(keep, w, np.float32(0.0))
        dense = keep.mean() > DENSE_ABOVE
        b = "(const float *)0" if bias is None else self.floats(bias, f"{what}: bias ({rows})")
        q8 = self.dtype == "int8"
        if q8:
            q, scale = quantize_rows(w)
            s = self.floats(scale, f"{what}: per-row int8 scale ({rows})")
        if dense:
            if q8:
                wn = self.ints("int8_t", q, f"{what}: int8 weights ({rows} x {cols}, row-major)")
                self.helpers.add("lin_dense_q")
                return lambda x, y: f"{self.p}_lin_dense_q({wn}, {s}, {b}, {x}, {y}, {rows}, {cols});"
            wn = self.floats(w, f"{what}: weights ({rows} x {cols}, row-major)")
            self.helpers.add("lin_dense")
            return lambda x, y: f"{self.p}_lin_dense({wn}, {b}, {x}, {y}, {rows}, {cols});"
        ptr, col = _csr(keep)
        pn = self.ints("uint16_t", ptr, f"{what}: row starts ({rows + 1})")
        cn = self.ints(self.idx_t, col, f"{what}: column of each stored weight ({len(col)})")
        vals = (q if q8 else w)[keep]
        if q8:
            vn = self.ints("int8_t", vals, f"{what}: int8 stored weights ({len(col)})")
            self.helpers.add("lin_csr_q")
            return lambda x, y: f"{self.p}_lin_csr_q({pn}, {cn}, {vn}, {s}, {b}, {x}, {y}, {rows});"
        vn = self.floats(vals, f"{what}: stored weights ({len(col)})")
        self.helpers.add("lin_csr")
        return lambda x, y: f"{self.p}_lin_csr({pn}, {cn}, {vn}, {b}, {x}, {y}, {rows});"


def _csr(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row starts and column indices of the True entries of ``keep`` (rows, cols), row by row."""
    counts = keep.sum(axis=1)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if ptr[-1] >= 65536:
        raise ValueError(f"a matrix with {ptr[-1]} stored weights is too large for the C export (limit 65535)")
    col = np.nonzero(keep)[1]
    return ptr, col


def _helpers_code(g: _Gen) -> str:
    p, it = g.p, g.idx_t
    out = []
    if "lin_dense" in g.helpers:
        out.append(f"""static void {p}_lin_dense(const float *w, const float *b, const float *x, float *y,
    int rows, int cols)
{{
    int r, c;
    for (r = 0; r < rows; ++r) {{
        float acc = 0.0f;
        for (c = 0; c < cols; ++c) acc += w[r * cols + c] * x[c];
        y[r] = b ? acc + b[r] : acc;
    }}
}}
""")
    if "lin_dense_q" in g.helpers:
        out.append(f"""static void {p}_lin_dense_q(const int8_t *q, const float *scale, const float *b,
    const float *x, float *y, int rows, int cols)
{{
    int r, c;
    for (r = 0; r < rows; ++r) {{
        float acc = 0.0f;
        for (c = 0; c < cols; ++c) acc += (float)q[r * cols + c] * x[c];
        acc *= scale[r];
        y[r] = b ? acc + b[r] : acc;
    }}
}}
""")
    if "lin_csr" in g.helpers:
        out.append(f"""static void {p}_lin_csr(const uint16_t *ptr, const {it} *col, const float *w,
    const float *b, const float *x, float *y, int rows)
{{
    int r, k;
    for (r = 0; r < rows; ++r) {{
        float acc = 0.0f;
        for (k = ptr[r]; k < ptr[r + 1]; ++k) acc += w[k] * x[col[k]];
        y[r] = b ? acc + b[r] : acc;
    }}
}}
""")
    if "lin_csr_q" in g.helpers:
        out.append(f"""static void {p}_lin_csr_q(const uint16_t *ptr, const {it} *col, const int8_t *q,
    const float *scale, const float *b, const float *x, float *y, int rows)
{{
    int r, k;
    for (r = 0; r < rows; ++r) {{
        float acc = 0.0f;
        for (k = ptr[r]; k < ptr[r + 1]; ++k) acc += (float)q[k] * x[col[k]];
        acc *= scale[r];
        y[r] = b ? acc + b[r] : acc;
    }}
}}
""")
    return "\n".join(out)


_ACT_C = C_ACTIVATIONS


class _Body:
    """Lines of the step function, with stack scratch declarations collected at the top."""

    def __init__(self) -> None:
        self.decls: list[str] = []
        self.lines: list[str] = []
        self.scratch_floats = 0

    def buf(self, name: str, n: int) -> str:
        self.decls.append(f"    float {name}[{n}];")
        self.scratch_floats += n
        return name

    def add(self, line: str, indent: int = 1) -> None:
        self.lines.append("    " * indent + line)


# ---------------------------------------------------------------------------------------------- cells
def _emit_mapping(g: _Gen, body: _Body, P: dict[str, np.ndarray], which: str, src: str, dst: str, n: int) -> None:
    """dst[k] = src[k] (* which_w[k]) (+ which_b[k]) for the LTC's affine/linear input or output mapping."""
    w = g.floats(P[f"{which}_w"], f"{which}_w") if f"{which}_w" in P else None
    b = g.floats(P[f"{which}_b"], f"{which}_b") if f"{which}_b" in P else None
    expr = src + "[k]"
    if w:
        expr = f"{expr} * {w}[k]"
    if b:
        expr = f"{expr} + {b}[k]"
    body.add(f"for (k = 0; k < {n}; ++k) {dst}[k] = {expr};")


def _emit_ltc(g: _Gen, body: _Body, cell: LTCCell, x: str, h: str, out: str) -> str:
    """LTC step: reads ``x`` (inputs), updates ``h`` (N floats) in place, writes outputs to ``out``."""
    p = cell.effective_parameters()
    P = {k: _np32(v) for k, v in p.items()}
    n, ni, m = cell.state_size, cell.sensory_size, cell.motor_size
    q8 = g.dtype == "int8"

    def synapses(kind: str, mask: np.ndarray, names: tuple[str, ...]) -> dict[str, str]:
        keep = mask.T != 0  # (post, pre)
        ptr, pre = _csr(keep)
        res = {
            "ptr": g.ints("uint16_t", ptr, f"{kind} synapses: start of each post-synaptic neuron ({n + 1})"),
            "pre": g.ints(g.idx_t, pre, f"{kind} synapses: pre-synaptic index ({len(pre)})"),
        }
        for nm in names:
            mat = P[nm].T  # (post, pre)
            if q8:
                qv, sc = quantize_rows(np.where(keep, mat, 0.0))
                res[nm] = g.ints("int8_t", qv[keep], f"{nm}: int8, per post-synaptic neuron scale")
                res[nm + "_s"] = g.floats(sc, f"{nm}: int8 scale per post-synaptic neuron ({n})")
            else:
                res[nm] = g.floats(mat[keep], f"{nm} of each stored synapse")
        return res

    snames = ("sensory_sigma", "sensory_mu", "sensory_w", "sensory_erev")
    rnames = ("sigma", "mu", "w", "erev")
    S = synapses("sensory", P["sensory_sparsity_mask"], snames)
    R = synapses("recurrent", P["sparsity_mask"], rnames)
    gleak = g.floats(P["gleak"], "gleak (softplus applied)")
    vleak = g.floats(P["vleak"], "vleak")
    cm = g.floats(P["cm"], "cm (softplus applied)")

    def val(D: dict[str, str], nm: str, k: str, j: str) -> str:
        return f"((float){D[nm]}[{k}] * {D[nm + '_s']}[{j}])" if q8 else f"{D[nm]}[{k}]"

    # input mapping
    xm = body.buf("ltc_x", ni)
    _emit_mapping(g, body, P, "input", x, xm, ni)
    # sensory conductances, once per interval
    bn, bd = body.buf("ltc_bn", n), body.buf("ltc_bd", n)
    body.add(f"for (j = 0; j < {n}; ++j) {{")
    body.add("float sn = 0.0f, sd = 0.0f;", 2)
    body.add(f"for (k = {S['ptr']}[j]; k < {S['ptr']}[j + 1]; ++k) {{", 2)
    body.add(
        f"float a = {val(S, 'sensory_w', 'k', 'j')} * {g.p}_sigmoid({val(S, 'sensory_sigma', 'k', 'j')} * "
        f"({xm}[{S['pre']}[k]] - {val(S, 'sensory_mu', 'k', 'j')}));",
        3,
    )
    body.add(f"sn += a * {val(S, 'sensory_erev', 'k', 'j')};", 3)
    body.add("sd += a;", 3)
    body.add("}", 2)
    body.add(f"{bn}[j] = {gleak}[j] * {vleak}[j] + sn;", 2)
    body.add(f"{bd}[j] = {gleak}[j] + sd;", 2)
    body.add("}")
    # recurrent conductances: a function of the state, called once per solver stage
    rhs_name = f"{g.p}_ltc_rhs"
    rhs = f"""static void {rhs_name}(const float *v, const float *bn, const float *bd, float *num, float *den)
{{
    int j, k;
    for (j = 0; j < {n}; ++j) {{
        float sn = bn[j], sd = bd[j];
        for (k = {R["ptr"]}[j]; k < {R["ptr"]}[j + 1]; ++k) {{
            float a = {val(R, "w", "k", "j")} *
                {g.p}_sigmoid({val(R, "sigma", "k", "j")} * (v[{R["pre"]}[k]] - {val(R, "mu", "k", "j")}));
            sn += a * {val(R, "erev", "k", "j")};
            sd += a;
        }}
        num[j] = sn;
        den[j] = sd;
    }}
}}
"""
    num, den = body.buf("ltc_num", n), body.buf("ltc_den", n)
    L = cell.ode_unfolds
    body.add(f"hs = dt / {fmt_float(L)};")
    body.add(f"for (u = 0; u < {L}; ++u) {{")
    solver = cell.solver
    if isinstance(solver, SemiImplicitEuler):
        body.add(f"{rhs_name}({h}, {bn}, {bd}, {num}, {den});", 2)
        body.add(f"for (j = 0; j < {n}; ++j) {{", 2)
        body.add(f"float c = {cm}[j] / hs;", 3)
        body.add(f"{h}[j] = (c * {h}[j] + {num}[j]) / (c + {den}[j] + {fmt_float(cell.epsilon)});", 3)
        body.add("}", 2)
    elif isinstance(solver, ExplicitRK):
        tab = solver.tableau
        s = len(tab.b)
        ks = [body.buf(f"ltc_k{i}", n) for i in range(s)]
        ub = body.buf("ltc_u", n) if any(any(c != 0.0 for c in row) for row in tab.a) else ""
        for i, row in enumerate(tab.a):
            terms = [f" + (hs * {fmt_float(c)}) * {ks[jj]}[j]" for jj, c in enumerate(row) if c != 0.0]
            src = h
            if terms:
                body.add(f"for (j = 0; j < {n}; ++j) {ub}[j] = {h}[j]{''.join(terms)};", 2)
                src = ub
            body.add(f"{rhs_name}({src}, {bn}, {bd}, {num}, {den});", 2)
            body.add(f"for (j = 0; j < {n}; ++j) {ks[i]}[j] = ({num}[j] - {den}[j] * {src}[j]) / {cm}[j];", 2)
        terms = [f" + (hs * {fmt_float(c)}) * {ks[jj]}[j]" for jj, c in enumerate(tab.b) if c != 0.0]
        body.add(f"for (j = 0; j < {n}; ++j) {h}[j] = {h}[j]{''.join(terms)};", 2)
    else:
        raise ValueError(
            f"the C export does not support the solver {solver!r}; use one of semi_implicit, euler, midpoint, heun, rk4"
        )
    body.add("}")
    _emit_mapping(g, body, P, "output", h, out, m)
    return rhs


def _emit_cfc(g: _Gen, body: _Body, cell: CfCCell, x: str, nx: int, h: str, tag: str) -> None:
    """One CfC cell: reads ``x`` (nx floats) and ``h`` (H floats), writes the new state into ``h``."""
    H = cell.hidden_size
    cat = body.buf(f"{tag}_cat", nx + H)
    body.add(f"for (k = 0; k < {nx}; ++k) {cat}[k] = {x}[k];")
    body.add(f"for (k = 0; k < {H}; ++k) {cat}[{nx} + k] = {h}[k];")
    z = cat
    act = _ACT_C[cell.backbone_activation]
    for li, layer in enumerate(cell.backbone):
        assert isinstance(layer, nn.Linear)
        call = g.linear(_np32(layer.weight), _np32(layer.bias), None, f"{tag} backbone layer {li}")
        zn = body.buf(f"{tag}_z{li}", layer.out_features)
        body.add(call(z, zn))
        body.add(f"for (k = 0; k < {layer.out_features}; ++k) {zn}[k] = {act.format(x=zn + '[k]')};")
        z = zn
    mask = None if cell.sparsity_mask is None else _np32(cell.sparsity_mask)
    heads: list[tuple[str, nn.Linear | None, bool]] = [("f1", cell.f1, True)]
    if cell.mode != "pure":
        heads += [("f2", cell.f2, True), ("ta", cell.time_a, False), ("tb", cell.time_b, False)]
    u: dict[str, str] = {}
    for hname, lin, masked in heads:
        assert isinstance(lin, nn.Linear)
        call = g.linear(_np32(lin.weight), _np32(lin.bias), mask if masked else None, f"{tag} head {hname}")
        u[hname] = body.buf(f"{tag}_{hname}", H)
        body.add(call(z, u[hname]))
    if cell.mode == "pure":
        wt = g.floats(np.abs(_np32(cell.w_tau)), f"{tag} |w_tau|")
        A = g.floats(_np32(cell.A), f"{tag} A")
        u1 = u["f1"]
        body.add(f"for (k = 0; k < {H}; ++k)")
        body.add(f"{h}[k] = {A}[k] - {A}[k] * expf(-dt * ({wt}[k] + fabsf({u1}[k]))) * {u1}[k];", 2)
        return
    body.add(f"for (k = 0; k < {H}; ++k) {{")
    head = _ACT_C[cell.head_activation]
    body.add(f"float f1 = {head.format(x=u['f1'] + '[k]')}, f2 = {head.format(x=u['f2'] + '[k]')};", 2)
    body.add(f"float gt = {g.p}_sigmoid(-{u['ta']}[k] * dt + {u['tb']}[k]);", 2)
    if cell.mode == "no_gate":
        body.add(f"{h}[k] = f1 * gt + f2;", 2)
    else:
        body.add(f"{h}[k] = f2 + gt * (f1 - f2);", 2)
    body.add("}")


def _emit_lstm(g: _Gen, body: _Body, lstm: MixedMemoryLSTMCell, x: str, h: str, c: str) -> None:
    ni, H = lstm.input_size, lstm.hidden_size
    w = np.concatenate([_np32(lstm.input_map.weight), _np32(lstm.recurrent_map.weight)], axis=1)
    call = g.linear(w, _np32(lstm.input_map.bias), None, "mixed-memory LSTM [W_x | W_h]")
    cat = body.buf("lstm_cat", ni + H)
    zz = body.buf("lstm_z", 4 * H)
    body.add(f"for (k = 0; k < {ni}; ++k) {cat}[k] = {x}[k];")
    body.add(f"for (k = 0; k < {H}; ++k) {cat}[{ni} + k] = {h}[k];")
    body.add(call(cat, zz))
    body.add(f"for (k = 0; k < {H}; ++k) {{")
    body.add(
        f"{c}[k] = {c}[k] * {g.p}_sigmoid({zz}[{2 * H} + k] + 1.0f) + tanhf({zz}[k]) * {g.p}_sigmoid({zz}[{H} + k]);",
        2,
    )
    body.add(f"{h}[k] = tanhf({c}[k]) * {g.p}_sigmoid({zz}[{3 * H} + k]);", 2)
    body.add("}")


# ---------------------------------------------------------------------------------------------- public
@dataclass
class CExport:
    """What :func:`to_c` wrote: file paths and the figures of the generated model."""

    header: Path
    source: Path
    prefix: str
    dtype: str
    input_size: int
    output_size: int
    state_size: int
    weight_bytes: int  # const data (flash), from the arrays written
    scratch_floats: int  # float scratch on the stack in prefix_step (excluding helper frames)
    kind: str


def to_c(model: nn.Module, out_dir: str | Path, prefix: str = "lf", dtype: str = "float32") -> CExport:
    """Write ``<prefix>.h`` and ``<prefix>.c``: one streaming step of ``model`` in C99.

    Args:
        model: a ``liquidflow.torch.LTC`` / ``CfC`` layer, or a sequence model with ``core``, ``head``,
            ``input_mean``, ``input_std`` (normalisation and head are baked in).
        out_dir: directory to write to (created if missing).
        prefix: C identifier prefix of every symbol (``<prefix>_step``, ``<PREFIX>_INPUT_SIZE``...).
        dtype: ``"float32"`` or ``"int8"`` (weights quantised per output channel, activations float).

    Returns:
        a :class:`CExport` with the paths and sizes.

    The API: ``void <prefix>_init(<prefix>_state_t *state)`` and
    ``void <prefix>_step(<prefix>_state_t *state, const float *x, float dt, float *y)``.
    """
    check_prefix(prefix)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}; got {dtype!r}")
    em: ExportModel = unwrap(model)
    core = em.core
    cell = core.cell
    P, p = prefix.upper(), prefix
    F, O, S, N = em.input_size, em.output_size, em.state_size, em.hidden_size
    widest = max(F, N, getattr(cell, "backbone_units", 0) or 0) + N + 1
    g = _Gen(p, dtype, "uint8_t" if widest < 256 else "uint16_t")
    body = _Body()
    extra_fns: list[str] = []
    with torch.no_grad():
        # input normalisation
        x = "x"
        if em.input_mean is not None or em.input_std is not None:
            x = body.buf("xn", F)
            expr = "x[k]"
            if em.input_mean is not None:
                expr = f"({expr} - {g.floats(_np32(em.input_mean), 'input mean')}[k])"
            if em.input_std is not None:
                expr = f"{expr} / {g.floats(_np32(em.input_std), 'input std')}[k]"
            body.add(f"for (k = 0; k < {F}; ++k) {x}[k] = {expr};")
        h = "state->s"
        if core.lstm is not None:
            _emit_lstm(g, body, core.lstm, x, h, f"(state->s + {N})")
        cell_out = body.buf("cell_y", int(cell.output_size))  # type: ignore[arg-type]
        if isinstance(cell, LTCCell):
            extra_fns.append(_emit_ltc(g, body, cell, x, h, cell_out))
        elif isinstance(cell, WiredCfCCell):
            src, nsrc, off = x, F, 0
            for li, (sub, size) in enumerate(zip(cell.layers, cell.layer_sizes, strict=True)):
                hl = f"(state->s + {off})" if off else h
                assert isinstance(sub, CfCCell)
                _emit_cfc(g, body, sub, src, nsrc, hl, f"l{li}")
                src, nsrc, off = hl, size, off + size
            body.add(f"for (k = 0; k < {cell.output_size}; ++k) {cell_out}[k] = {src}[k];")
        elif isinstance(cell, CfCCell):
            _emit_cfc(g, body, cell, x, F, h, "cfc")
            body.add(f"for (k = 0; k < {N}; ++k) {cell_out}[k] = {h}[k];")
        else:  # pragma: no cover - unwrap only admits LTC/CfC
            raise TypeError(f"unsupported cell {type(cell).__name__}")
        y = cell_out
        for what, lin in (("projection (proj_size)", core.fc), ("head", em.head)):
            if lin is None:
                continue
            call = g.linear(_np32(lin.weight), _np32(lin.bias), None, what)
            nxt = body.buf("proj_y" if lin is core.fc else "head_y", lin.out_features)
            body.add(call(y, nxt))
            y = nxt
        body.add(f"for (k = 0; k < {O}; ++k) y[k] = {y}[k];")

    used = "\n".join(body.lines) + "".join(extra_fns)
    locals_ = ["    int k;"]
    for var, decl in (("j", "    int j;"), ("u", "    int u;"), ("hs", "    float hs;")):
        if re.search(rf"\b{var}\b", "\n".join(body.lines)):
            locals_.append(decl)
    if "dt" not in "\n".join(body.lines):
        body.lines.insert(0, "    (void)dt;")
    banner = (
        f"/* Generated by liquidflow.export.to_c - do not edit.\n"
        f" * Model: {em.kind}; inputs {F}, outputs {O}, state {S} floats; weights {dtype}.\n"
        f" * API: {p}_init(&state); {p}_step(&state, x, dt, y) once per observation, dt = elapsed time.\n"
        f" * Export format version {FORMAT_VERSION} ({P}_FORMAT_VERSION).\n */\n"
    )
    guard = f"{P}_H_INCLUDED"
    layout = f"Layout: h[0..{N}), then the LSTM cell c." if core.lstm is not None else "One float per neuron."
    header = f"""{banner}#ifndef {guard}
#define {guard}

#ifdef __cplusplus
extern "C" {{
#endif

#define {P}_FORMAT_VERSION {FORMAT_VERSION}
#define {P}_INPUT_SIZE {F}
#define {P}_OUTPUT_SIZE {O}
#define {P}_STATE_SIZE {S}

/* Recurrent state (RAM). {layout} */
typedef struct {{
    float s[{P}_STATE_SIZE];
}} {p}_state_t;

/* Reset the state to zeros. */
void {p}_init({p}_state_t *state);

/* One step: x ({P}_INPUT_SIZE floats) observed dt after the previous one; writes y ({P}_OUTPUT_SIZE floats). */
void {p}_step({p}_state_t *state, const float *x, float dt, float *y);

#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
"""
    need_sigmoid = f"{p}_sigmoid" in used
    sig = f"static float {p}_sigmoid(float v)\n{{\n    return 1.0f / (1.0f + expf(-v));\n}}\n\n"
    if not need_sigmoid:
        sig = ""
    source = (
        f'{banner}#include "{p}.h"\n\n#include <math.h>\n#include <stdint.h>\n\n'
        + "\n".join(g.data)
        + "\n"
        + sig
        + _helpers_code(g)
        + ("\n" if g.helpers else "")
        + "".join(f + "\n" for f in extra_fns)
        + f"void {p}_init({p}_state_t *state)\n{{\n    int k;\n"
        + f"    for (k = 0; k < {P}_STATE_SIZE; ++k) state->s[k] = 0.0f;\n}}\n\n"
        + f"void {p}_step({p}_state_t *state, const float *x, float dt, float *y)\n{{\n"
        + "\n".join(locals_ + body.decls)
        + "\n\n"
        + "\n".join(body.lines)
        + "\n}\n"
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hpath, cpath = out / f"{p}.h", out / f"{p}.c"
    atomic_write(hpath, header)
    atomic_write(cpath, source)
    return CExport(hpath, cpath, p, dtype, F, O, S, g.weight_bytes, body.scratch_floats, em.kind)
