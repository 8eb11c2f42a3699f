"""Streaming ``layer.step`` in C (liquidflow._native, ``step.c``): one whole step, no torch calls.

At batch 1 a step of a small liquid network is a few µs of arithmetic, and the torch path spends
50-150 µs in per-operation overhead. Here the whole step (LTC with the semi-implicit solver; CfC
with or without backbone, wired or not; the ``fc`` projection) is one C call on the layer's raw
parameters, read in place on every call, so in-place edits of the weights (``p.add_``,
``p.data.mul_``, ``load_state_dict``) are seen by the next step.

Per layer, a :class:`_Plan` keeps what does not change between steps: the sizes and options given
to C, and a ctypes array with the parameters' data pointers. It is checked on every call, cheaply:
the modules, parameters and options it was built from must be the same objects (found by the
same dictionary keys) and the parameters' ``data_ptr()`` the same; otherwise it is rebuilt (after
``p.data = ...``, ``layer.to(...)``, a replaced module, a changed ``ode_unfolds``...). Plans live
in a module-level table keyed by the layer's id (dropped with the layer), not on the layer, so
that pickling and copying a layer is unaffected.

:func:`step` returns None wherever it does not apply, and the torch path then runs (and raises
the error for malformed calls): native kernels unavailable or switched off, explicit LTC solvers,
other cell classes, CfC dropout in training mode, unsupported activations, parameters of mixed
dtype / not on the CPU / not contiguous, wrong input shape, dtype or device, NaN or Inf in the
input or state, elapsed times that are not finite and positive.
"""

from __future__ import annotations

import ctypes
import math
import weakref
from collections.abc import Callable
from operator import is_
from typing import Any

import torch
from torch import nn

from .. import _native
from ._cells import ACTIVATIONS, CfCCell, LTCCell, WiredCfCCell
from ._solvers import SemiImplicitEuler

Tensor = torch.Tensor
_P, _I64, _D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
_SFX = {torch.float32: "f32", torch.float64: "f64"}
_ACTIVATIONS = {"lecun_tanh": 0, "tanh": 1, "relu": 2, "gelu": 3, "silu": 4}  # codes of step_impl.h
_MODES = {"default": 0, "no_gate": 1, "pure": 2}
_MAPPINGS = {None: 0, "linear": 1, "affine": 2}
_INF = math.inf
# batch rows are split over torch.get_num_threads() OpenMP threads from this much work per call
# (CfC multiply-adds, LTC synapse evaluations; about 1 ns each): a fork/join costs a few µs on an
# idle machine, and far more where other processes hold the cores (spinning OpenMP workers)
_THREADS_FROM = 1_000_000
_data_ptr: Callable[[Any], int] = Tensor.data_ptr

_lib: ctypes.CDLL | None = None
_plans: dict[int, _Plan] = {}


def _library() -> ctypes.CDLL | None:
    global _lib
    if _lib is None:
        lib = _native.load("step")
        if lib is None:
            return None
        # (plan, x, xld, h, dt, dts, dtc, y, hn, B, then threads (CfC) or eps (LTC)) -> int
        args = [_P, _P, _I64, _P, _P, _I64, _D, _P, _P, _I64]
        for sfx in _SFX.values():  # getattr caches the function objects (lib[name] makes new ones)
            cfc, ltc = getattr(lib, f"lf_step_cfc_{sfx}"), getattr(lib, f"lf_step_ltc_{sfx}")
            cfc.argtypes, ltc.argtypes = [*args, _I64], [*args, _D, _I64]
            cfc.restype = ltc.restype = ctypes.c_int
        _lib = lib
    return _lib


class _Unsupported(Exception):
    """Raised while building a plan for a layer the C kernels do not cover."""


class _Plan:
    """What one layer's step needs besides the call's arguments (see the module docstring)."""

    __slots__ = (
        "I",
        "N",
        "arr",
        "dicts",
        "dtype",
        "eps",
        "fn",
        "keys",
        "layer_ref",
        "ltc",
        "motor",
        "objs",
        "out",
        "plan",
        "proj",
        "ptrs",
        "tdicts",
        "threads_from",
        "tkeys",
    )  # fmt: skip

    def __init__(self, layer: nn.Module) -> None:
        self.layer_ref = weakref.ref(layer)
        # re-read on every call: modules and options (dictionary, key) that must hold the same
        # objects, and parameters / buffers (dictionary, key) whose data_ptr() must not change
        self.dicts: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.objs: list[Any] = []
        self.tdicts: list[dict[str, Any]] = []
        self.tkeys: list[str] = []
        self.ptrs: list[int] = []
        self.fn: Any = None  # the C function, or None: not supported (the torch path runs)
        self.ltc = False
        self.eps = 0.0
        self.dtype: torch.dtype | None = None
        self.I = self.N = self.out = self.proj = 0
        self.motor = 0  # CfC without fc: y is the last `motor` entries of the new state
        self.arr: Any = None  # the int64 array of step_impl.h: [k, cfg..., pointers from k...]
        self.plan = 0  # its address
        self.threads_from = 1 << 62  # batch size from which rows are split over threads
        try:
            self._build(layer)
        except _Unsupported:
            self.fn = None

    # ---------------------------------------------------------------------- building
    def _get(self, d: dict[str, Any], key: str) -> Any:
        self.dicts.append(d)
        self.keys.append(key)
        value = d.get(key)
        self.objs.append(value)
        return value

    def _module(self, parent: nn.Module, name: str, cls: type | None = None) -> Any:
        m = self._get(parent._modules, name)
        if m is not None and cls is not None and type(m) is not cls:
            raise _Unsupported(f"{name} is a {type(m).__name__}")
        return m

    def _attr(self, obj: nn.Module, name: str) -> Any:
        if name not in obj.__dict__:
            raise _Unsupported(name)
        return self._get(obj.__dict__, name)

    def _tensor(self, mod: nn.Module, name: str, shape: tuple[int, ...] | None, optional: bool = False) -> int:
        if name not in mod._parameters and name not in mod._buffers:
            if not optional:
                raise _Unsupported(f"{name} is missing")
            self._get(mod._parameters, name)  # absent: one assigned later changes the math
            self._get(mod._buffers, name)
            return 0
        d = mod._parameters if name in mod._parameters else mod._buffers
        t = d[name]
        if t is None:
            if optional:
                return 0
            raise _Unsupported(f"{name} is missing")
        if not isinstance(t, Tensor) or t.device.type != "cpu" or not t.is_contiguous():
            raise _Unsupported(f"{name} is not a contiguous CPU tensor")
        if self.dtype is None:
            if t.dtype not in _SFX:
                raise _Unsupported(f"dtype {t.dtype}")
            self.dtype = t.dtype
        if t.dtype != self.dtype or (shape is not None and tuple(t.shape) != shape):
            raise _Unsupported(f"{name}: dtype {t.dtype}, shape {tuple(t.shape)}")
        self.tdicts.append(d)
        self.tkeys.append(name)
        self.ptrs.append(int(_data_ptr(t)))
        return self.ptrs[-1]

    def _linear(self, parent: nn.Module, name: str, out: int, width: int) -> list[int]:
        lin = self._module(parent, name, nn.Linear)
        if lin is None:
            raise _Unsupported(f"{name} is missing")
        return [self._tensor(lin, "weight", (out, width)), self._tensor(lin, "bias", (out,), optional=True)]

    def _build(self, layer: nn.Module) -> None:
        cell = self._module(layer, "cell")
        fc = self._module(layer, "fc", nn.Linear)
        if self._module(layer, "lstm") is not None:
            raise _Unsupported("mixed memory")  # layer.step never calls here then; direct calls may
        if type(cell) is LTCCell:
            ptrs, cfg = self._build_ltc(cell)
            width = cfg[2]
            self.ltc = True
        elif type(cell) is CfCCell:
            ptrs, layers = self._build_cfc(cell, cell.input_size, True)
            cfg = [1, _ACTIVATIONS[cell.backbone_activation], _MODES[cell.mode], 0, cell.hidden_size, cell.input_size]
            cfg += layers
            width = self.motor = cell.hidden_size
        elif type(cell) is WiredCfCCell:
            ptrs, cfg, width = self._build_wired(cell)
            self.motor = width
        else:
            raise _Unsupported(f"cell {type(cell).__name__}")
        proj = 0
        if fc is not None:
            proj = int(fc.weight.shape[0])
            ptrs += self._linear(layer, "fc", proj, width)
            if self.ltc:
                cfg[6] = proj
            else:
                cfg[3] = proj
        self.out, self.proj = proj or width, proj
        if ctypes.sizeof(ctypes.c_void_p) != 8:
            raise _Unsupported("pointers of 64 bits expected")
        values = [1 + len(cfg), *cfg, *ptrs]
        self.arr = (ctypes.c_int64 * len(values))(*values)
        self.plan = ctypes.addressof(self.arr)
        lib = _library()
        assert lib is not None and self.dtype is not None
        self.fn = getattr(lib, f"lf_step_{'ltc' if self.ltc else 'cfc'}_{_SFX[self.dtype]}")
        work = cfg[3] * cfg[0] * cfg[0] + cfg[1] * cfg[0] if self.ltc else self._cfc_macs(cfg)
        self.threads_from = max(2, -(-_THREADS_FROM // max(work, 1)))

    @staticmethod
    def _cfc_macs(cfg: list[int]) -> int:
        """Multiply-adds of one row of a CfC step (cfg as in step_impl.h)."""
        total, proj = 0, cfg[3]
        for l in range(cfg[0]):
            width, H, nbb, units = cfg[6 + 4 * l] + cfg[7 + 4 * l], cfg[7 + 4 * l], cfg[8 + 4 * l], cfg[9 + 4 * l]
            for _ in range(nbb):
                total, width = total + width * units, units
            total += 4 * H * width
        return total + proj * cfg[7 + 4 * (cfg[0] - 1)]

    def _build_ltc(self, cell: LTCCell) -> tuple[list[int], list[int]]:
        solver = self._attr(cell, "solver")
        unfolds = self._attr(cell, "ode_unfolds")
        self.eps = float(self._attr(cell, "epsilon"))
        if type(solver) is not SemiImplicitEuler:
            raise _Unsupported("LTC solver")
        if isinstance(unfolds, bool) or not isinstance(unfolds, int) or unfolds < 1:
            raise _Unsupported("ode_unfolds")
        N, I, M = int(cell.state_size), int(cell.sensory_size), int(cell.motor_size)
        self.I, self.N = I, N
        # sizes from the wiring: the parameters' shapes are checked against them
        ptrs = [self._tensor(cell, name, (N,)) for name in ("gleak_raw", "vleak", "cm_raw")]
        ptrs += [self._tensor(cell, name, (N, N)) for name in ("w_raw", "sigma", "mu", "erev")]
        ptrs += [self._tensor(cell, name, (I, N)) for name in ("sensory_w_raw", "sensory_sigma", "sensory_mu")]
        ptrs += [self._tensor(cell, "sensory_erev", (I, N))]
        ptrs += [self._tensor(cell, "sparsity_mask", (N, N)), self._tensor(cell, "sensory_sparsity_mask", (I, N))]
        # the mappings follow the parameters that exist, as LTCCell.map_inputs / map_outputs do
        in_w, in_b = self._tensor(cell, "input_w", (I,), True), self._tensor(cell, "input_b", (I,), True)
        out_w, out_b = self._tensor(cell, "output_w", (M,), True), self._tensor(cell, "output_b", (M,), True)
        if (in_b and not in_w) or (out_b and not out_w):
            raise _Unsupported("a bias without a weight in the mappings")
        ptrs += [in_w, in_b, out_w, out_b]
        cfg = [N, I, M, unfolds, 2 if in_b else (1 if in_w else 0), 2 if out_b else (1 if out_w else 0), 0]
        return ptrs, cfg

    def _build_cfc(self, cell: CfCCell, in_features: int, dense: bool) -> tuple[list[int], list[int]]:
        """Pointers and [in, H, nbb, units] of one CfCCell (a dense cell, or a wired sub-layer)."""
        mode = self._attr(cell, "mode")
        act = self._attr(cell, "backbone_activation")
        fn = self._attr(cell, "_act")
        # sizes: the parameters' shapes are checked against them
        H, I, nbb = cell.hidden_size, cell.input_size, cell.backbone_layers
        units = cell.backbone_units if nbb > 0 else 0
        if mode not in _MODES or act not in _ACTIVATIONS or fn is not ACTIVATIONS[act] or I != in_features:
            raise _Unsupported("CfC mode or activation")
        if self._attr(cell, "head_activation") != "tanh":
            raise _Unsupported("head_activation")
        if dense:
            self.I, self.N = I, H
        backbone = self._module(cell, "backbone", nn.ModuleList)
        if nbb > 1:  # dropout acts between backbone layers, in training mode
            dropout = self._module(cell, "dropout")
            if dropout is not None and (type(dropout) is not nn.Dropout or self._attr(dropout, "training")):
                raise _Unsupported("dropout in training mode")
        if backbone is None or len(backbone) != nbb:
            raise _Unsupported("backbone")
        ptrs: list[int] = []
        width = I + H
        for k in range(nbb):
            ptrs += self._linear(backbone, str(k), units, width)
            width = units
        ptrs += self._linear(cell, "f1", H, width)
        if mode == "pure":
            ptrs += [self._tensor(cell, "w_tau", (H,)), self._tensor(cell, "A", (H,)), 0, 0, 0, 0]
        else:
            for name in ("f2", "time_a", "time_b"):
                ptrs += self._linear(cell, name, H, width)
        ptrs.append(self._tensor(cell, "sparsity_mask", (H, width), optional=True))
        return ptrs, [I, H, nbb, units]

    def _build_wired(self, cell: WiredCfCCell) -> tuple[list[int], list[int], int]:
        mode = self._attr(cell, "mode")
        sizes = self._attr(cell, "layer_sizes")
        layers = self._module(cell, "layers", nn.ModuleList)
        I = int(cell.input_size)
        if mode not in _MODES or layers is None or len(layers) != len(sizes) or not sizes:
            raise _Unsupported("wired CfC layers")
        ptrs: list[int] = []
        cfg = [len(sizes), 0, _MODES[mode], 0, sum(sizes), I]
        in_features = I
        for l, H in enumerate(sizes):
            sub = self._module(layers, str(l), CfCCell)
            p, c = self._build_cfc(sub, in_features, False)
            if c[1] != H or c[2] != 0 or sub.mode != mode:
                raise _Unsupported("wired CfC sub-layer")
            ptrs += p
            cfg += c
            in_features = H
        self.I, self.N = I, sum(sizes)
        return ptrs, cfg, sizes[-1]

    # ---------------------------------------------------------------------- per call
    def valid(self) -> bool:
        """Same modules and options (identity), parameters with the same data pointers."""
        if not all(map(is_, map(dict.get, self.dicts, self.keys), self.objs)):
            return False
        try:  # a parameter replaced by None or a non-tensor raises TypeError
            return list(map(_data_ptr, map(dict.get, self.tdicts, self.tkeys))) == self.ptrs
        except TypeError:
            return False


def _forget(key: int) -> None:
    _plans.pop(key, None)


def _new_plan(layer: nn.Module) -> _Plan:
    key = id(layer)
    old = _plans.get(key)
    if old is None or old.layer_ref() is not layer:
        weakref.finalize(layer, _forget, key)  # drop the plan with the layer
    plan = _plans[key] = _Plan(layer)
    return plan


def step(layer: Any, input: Any, hx: Any, dt: Any) -> tuple[Tensor, Any] | None:
    """``layer.step(input, hx, dt)`` in C with gradients off, or None where it does not apply."""
    if not _native.enabled() or (_lib is None and _library() is None):
        return None
    plan = _plans.get(id(layer))
    if plan is None or plan.layer_ref() is not layer or not plan.valid():
        plan = _new_plan(layer)
    fn = plan.fn
    if fn is None or not isinstance(input, Tensor):
        return None
    x = input
    xshape = x.shape
    nd = len(xshape)
    if nd == 2:
        B = xshape[0]
    elif nd == 1:
        B = 1
    else:
        return None
    dtype = plan.dtype
    I = plan.I
    if x.dtype is not dtype or xshape[-1] != I or not x.is_cpu or B == 0:
        return None
    if x.is_contiguous():
        xld = I
    elif x.stride(-1) == 1:
        xld = x.stride(0)
    else:
        return None
    N = plan.N
    shape = (B, N) if nd == 2 else (N,)
    if hx is None:
        hp = None
        hn = torch.empty(shape, dtype=dtype)
    elif isinstance(hx, Tensor) and hx.dtype is dtype and hx.shape == shape and hx.is_cpu and hx.is_contiguous():
        hp = hx.data_ptr()
        hn = torch.empty_like(hx)
    else:
        return None
    if isinstance(dt, float) or (isinstance(dt, int) and not isinstance(dt, bool)):
        if not 0.0 < dt < _INF:
            return None
        dtp, dts, dtc = None, 0, float(dt)
    elif isinstance(dt, Tensor) and dt.dtype is dtype and dt.is_cpu and dt.numel() == B:
        if dt.is_contiguous():
            dts = 1
        elif dt.dim() == 1:
            dts = dt.stride(0)
        else:
            return None
        dtp, dtc = dt.data_ptr(), 1.0
    else:
        return None
    if plan.ltc:
        y = torch.empty((B, plan.out) if nd == 2 else (plan.out,), dtype=dtype)
        nt = 1 if B < plan.threads_from else torch.get_num_threads()
        rc = fn(plan.plan, x.data_ptr(), xld, hp, dtp, dts, dtc, y.data_ptr(), hn.data_ptr(), B, plan.eps, nt)
    else:
        if plan.proj:  # fc
            y = torch.empty((B, plan.out) if nd == 2 else (plan.out,), dtype=dtype)
        elif plan.motor == N:
            y = hn
        else:  # wired: the last layer's neurons
            y = hn[..., N - plan.motor :]
        nt = 1 if B < plan.threads_from else torch.get_num_threads()
        rc = fn(plan.plan, x.data_ptr(), xld, hp, dtp, dts, dtc, y.data_ptr(), hn.data_ptr(), B, nt)
    if rc != 0:  # NaN / Inf in input or state, or a bad elapsed time: the torch path raises
        return None
    return y, hn
