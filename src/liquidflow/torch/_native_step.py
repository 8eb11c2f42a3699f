"""Streaming ``layer.step`` in C (liquidflow._native, ``step.c``): one whole step, no torch calls.

At batch 1 a step of a small liquid network is a few µs of arithmetic, and the torch path spends
50-150 µs in per-operation overhead. Here the whole step (LTC with the semi-implicit solver; CfC
with or without backbone, wired or not; the ``fc`` projection) is one C call on the layer's raw
parameters, read in place on every call, so in-place edits of the weights (``p.add_``,
``p.data.mul_``, ``load_state_dict``) are seen by the next step.

Per layer, a :class:`_Plan` keeps what does not change between steps: the struct given to C
(:class:`~liquidflow._ops.native_abi.LfStepCfcPlan` or :class:`~liquidflow._ops.native_abi.LfStepLtcPlan`,
``lf_abi.h``) with the
sizes, options and the parameters' data pointers. It is checked on every call, cheaply:
the modules, parameters and options it was built from must be the same objects (found by the
same dictionary keys) and the parameters' ``data_ptr()`` the same; otherwise it is rebuilt (after
``p.data = ...``, ``layer.to(...)``, a replaced module, a changed ``ode_unfolds``...). Plans live
in a module-level table keyed by the layer's id (dropped with the layer), not on the layer, so
that pickling and copying a layer is unaffected.

:func:`why_not` says why the C step does not apply to a call, or None when it does: native kernels
unavailable or switched off, explicit LTC solvers, other cell classes, CfC dropout in training mode,
unsupported activations, parameters of mixed dtype / not on the CPU / not contiguous, wrong input
shape, dtype or device, elapsed times that are not finite and positive. :func:`step` returns None
exactly there, and the torch path then runs (and raises the error for malformed calls) — and also
where the C kernel finds NaN or Inf in the input or state, or a tensor of elapsed times that are not
finite and positive: values are only read by the kernel itself, so :func:`why_not` cannot see those.

Why one file (about 510 lines): the plan (what C is given) and the reasons (when C is not given
anything) are two sides of one contract with ``step.c`` — every option the plan encodes is one the
reasons must rule out otherwise — so they are kept where one reading checks both.
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
from .._ops import native_abi as abi
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

_lib: ctypes.CDLL | None = None  # set once the library is loaded and checked (the per-step fast path)
_plans: dict[int, _Plan] = {}


def _setup(lib: ctypes.CDLL) -> None:
    # (plan address, x, xld, h, dt, dts, dtc, y, hn, B, threads) -> int; the plan is passed as the
    # address of its struct (kept by the _Plan), the cheapest argument for ctypes to convert
    args = [_P, _P, _I64, _P, _P, _I64, _D, _P, _P, _I64, _I64]
    for sfx in _SFX.values():  # getattr caches the function objects (lib[name] makes new ones)
        for kind in ("cfc", "ltc"):
            fn = getattr(lib, f"lf_step_{kind}_{sfx}")
            fn.argtypes, fn.restype = args, ctypes.c_int


_LIB = abi.KernelLibrary("step", abi.STEP_ABI_VERSION, abi.STEP_STRUCTS, _setup)


def _library() -> ctypes.CDLL | None:
    global _lib
    if _lib is None:
        _lib = _LIB.get()
    return _lib


class _Unsupported(Exception):
    """Raised while building a plan for a layer the C kernels do not cover; says why."""


class _Plan:
    """What one layer's step needs besides the call's arguments (see the module docstring)."""

    __slots__ = (
        "I",
        "N",
        "dicts",
        "dtype",
        "fn",
        "keep",
        "keys",
        "layer_ref",
        "ltc",
        "motor",
        "objs",
        "out",
        "plan",
        "proj",
        "ptrs",
        "reason",
        "struct",
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
        self.reason: str | None = None  # why not, where fn is None
        self.ltc = False
        self.dtype: torch.dtype | None = None
        self.I = self.N = self.out = self.proj = 0
        self.motor = 0  # CfC without fc: y is the last `motor` entries of the new state
        self.struct: abi.LfStepCfcPlan | abi.LfStepLtcPlan | None = None  # what step_impl.h reads
        self.keep: list[Any] = []  # the ctypes arrays the struct points to
        self.plan = 0  # the struct's address
        self.threads_from = 1 << 62  # batch size from which rows are split over threads
        try:
            self._build(layer)
        except _Unsupported as e:
            self.fn, self.reason = None, str(e)

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
            raise _Unsupported(f"{name} is a {type(m).__name__}; the C step takes {cls.__name__}")
        return m

    def _attr(self, obj: nn.Module, name: str) -> Any:
        if name not in obj.__dict__:
            raise _Unsupported(f"{type(obj).__name__} has no attribute {name!r} (changed by hand?)")
        return self._get(obj.__dict__, name)

    def _tensor(self, mod: nn.Module, name: str, shape: tuple[int, ...] | None, optional: bool = False) -> int:
        if name not in mod._parameters and name not in mod._buffers:
            if not optional:
                raise _Unsupported(f"parameter {name} is missing")
            self._get(mod._parameters, name)  # absent: one assigned later changes the math
            self._get(mod._buffers, name)
            return 0
        d = mod._parameters if name in mod._parameters else mod._buffers
        t = d[name]
        if t is None:
            if optional:
                return 0
            raise _Unsupported(f"parameter {name} is missing")
        if not isinstance(t, Tensor):
            raise _Unsupported(f"parameter {name} is a {type(t).__name__}, not a tensor")
        if t.device.type != "cpu":
            raise _Unsupported(abi.not_cpu(t.device))
        if self.dtype is None:
            if t.dtype not in _SFX:
                raise _Unsupported(abi.not_float(t.dtype))
            self.dtype = t.dtype
        if t.dtype != self.dtype:
            raise _Unsupported(abi.mixed_dtypes(f"parameters {self.dtype}, {name} {t.dtype}"))
        if shape is not None and tuple(t.shape) != shape:
            raise _Unsupported(f"shape: parameter {name} {tuple(t.shape)}, expected {shape}")
        if not t.is_contiguous():
            raise _Unsupported(f"parameter {name} is not contiguous")
        self.tdicts.append(d)
        self.tkeys.append(name)
        self.ptrs.append(int(_data_ptr(t)))
        return self.ptrs[-1]

    def _linear(self, parent: nn.Module, name: str, out: int, width: int) -> abi.LfStepLinear:
        lin = self._module(parent, name, nn.Linear)
        if lin is None:
            raise _Unsupported(f"{name} is missing")
        weight = self._tensor(lin, "weight", (out, width))
        return abi.LfStepLinear(weight, self._tensor(lin, "bias", (out,), optional=True))

    def _build(self, layer: nn.Module) -> None:
        cell = self._module(layer, "cell")
        fc = self._module(layer, "fc", nn.Linear)
        if self._module(layer, "lstm") is not None:
            raise _Unsupported("mixed_memory=True is not in the C step")  # layer.step never calls here then
        struct: abi.LfStepCfcPlan | abi.LfStepLtcPlan
        if type(cell) is LTCCell:
            struct = self._build_ltc(cell)
            width = struct.motor_size
            self.ltc = True
        elif type(cell) is CfCCell:
            sub = self._build_cfc(cell, cell.input_size, True)
            act = _ACTIVATIONS[cell.backbone_activation]
            struct = self._cfc_plan(act, cell.mode, cell.hidden_size, cell.input_size, [sub])
            width = self.motor = cell.hidden_size
        elif type(cell) is WiredCfCCell:
            struct, width = self._build_wired(cell)
            self.motor = width
        else:
            raise _Unsupported(f"cell {type(cell).__name__} is not in the C step")
        proj = 0
        if fc is not None:
            proj = int(fc.weight.shape[0])
            struct.fc = self._linear(layer, "fc", proj, width)
            struct.proj = proj
        self.out, self.proj = proj or width, proj
        if isinstance(struct, abi.LfStepLtcPlan):  # synapse evaluations of one row
            work = struct.unfolds * struct.state_size**2 + struct.in_size * struct.state_size
        else:
            work = self._cfc_macs(struct)
        self.struct = struct
        self.plan = ctypes.addressof(struct)
        lib = _library()
        assert lib is not None and self.dtype is not None
        self.fn = getattr(lib, f"lf_step_{'ltc' if self.ltc else 'cfc'}_{_SFX[self.dtype]}")
        self.threads_from = max(2, -(-_THREADS_FROM // max(work, 1)))

    @staticmethod
    def _cfc_macs(plan: abi.LfStepCfcPlan) -> int:
        """Multiply-adds of one row of a CfC step."""
        total = 0
        for l in range(plan.layers):
            sub = plan.layer[l]
            width = sub.in_size + sub.hidden
            for _ in range(sub.backbone_layers):
                total, width = total + width * sub.backbone_units, sub.backbone_units
            total += 4 * sub.hidden * width
        return total + plan.proj * plan.layer[plan.layers - 1].hidden

    def _array(self, cls: type[Any], items: list[Any]) -> Any:
        """A C array of ``items`` as a pointer for a struct field (None when empty), kept alive here."""
        if not items:
            return None
        arr = (cls * len(items))(*items)
        self.keep.append(arr)
        return ctypes.cast(arr, ctypes.POINTER(cls))

    def _build_ltc(self, cell: LTCCell) -> abi.LfStepLtcPlan:
        solver = self._attr(cell, "solver")
        unfolds = self._attr(cell, "ode_unfolds")
        eps = float(self._attr(cell, "epsilon"))
        if type(solver) is not SemiImplicitEuler:
            name = getattr(solver, "name", type(solver).__name__)
            raise _Unsupported(f"solver {name!r}; the C step has the semi-implicit one only")
        if isinstance(unfolds, bool) or not isinstance(unfolds, int) or unfolds < 1:
            raise _Unsupported(f"ode_unfolds={unfolds!r}; the C step takes an int >= 1")
        N, I, M = int(cell.state_size), int(cell.sensory_size), int(cell.motor_size)
        self.I, self.N = I, N
        p = abi.LfStepLtcPlan(state_size=N, in_size=I, motor_size=M, unfolds=unfolds, epsilon=eps)
        # sizes from the wiring: the parameters' shapes are checked against them
        p.gleak_raw, p.vleak, p.cm_raw = (self._tensor(cell, name, (N,)) for name in ("gleak_raw", "vleak", "cm_raw"))
        p.w_raw, p.sigma, p.mu, p.erev = (self._tensor(cell, name, (N, N)) for name in ("w_raw", "sigma", "mu", "erev"))
        sensory = ("sensory_w_raw", "sensory_sigma", "sensory_mu", "sensory_erev")
        p.sensory_w_raw, p.sensory_sigma, p.sensory_mu, p.sensory_erev = (
            self._tensor(cell, name, (I, N)) for name in sensory
        )
        p.sparsity_mask = self._tensor(cell, "sparsity_mask", (N, N))
        p.sensory_sparsity_mask = self._tensor(cell, "sensory_sparsity_mask", (I, N))
        # the mappings follow the parameters that exist, as LTCCell.map_inputs / map_outputs do
        in_w, in_b = self._tensor(cell, "input_w", (I,), True), self._tensor(cell, "input_b", (I,), True)
        out_w, out_b = self._tensor(cell, "output_w", (M,), True), self._tensor(cell, "output_b", (M,), True)
        if (in_b and not in_w) or (out_b and not out_w):
            raise _Unsupported("a bias without a weight in the LTC's input or output mapping")
        p.input_w, p.input_b, p.output_w, p.output_b = in_w, in_b, out_w, out_b
        p.input_mapping = 2 if in_b else (1 if in_w else 0)
        p.output_mapping = 2 if out_b else (1 if out_w else 0)
        return p

    def _build_cfc(self, cell: CfCCell, in_features: int, dense: bool) -> abi.LfStepCfcLayer:
        """One CfCCell (a dense cell, or a wired sub-layer) as step_impl.h reads it."""
        mode = self._attr(cell, "mode")
        act = self._attr(cell, "backbone_activation")
        fn = self._attr(cell, "_act")
        # sizes: the parameters' shapes are checked against them
        H, I, nbb = cell.hidden_size, cell.input_size, cell.backbone_layers
        units = cell.backbone_units if nbb > 0 else 0
        if mode not in _MODES:
            raise _Unsupported(f"mode={mode!r} is not in the C step")
        if act not in _ACTIVATIONS or fn is not ACTIVATIONS[act]:
            raise _Unsupported(f"backbone activation {act!r} is not in the C step")
        if I != in_features:
            raise _Unsupported(f"shape: a CfC sub-layer takes {I} inputs, the previous one gives {in_features}")
        head = self._attr(cell, "head_activation")
        if head != "tanh":
            raise _Unsupported(f"head_activation={head!r} is not in the C kernel")
        if dense:
            self.I, self.N = I, H
        backbone = self._module(cell, "backbone", nn.ModuleList)
        if nbb > 1:  # dropout acts between backbone layers, in training mode
            dropout = self._module(cell, "dropout")
            if dropout is not None and (type(dropout) is not nn.Dropout or self._attr(dropout, "training")):
                raise _Unsupported("backbone dropout in training mode (call layer.eval() to stream)")
        if backbone is None or len(backbone) != nbb:
            raise _Unsupported(f"the backbone has not backbone_layers={nbb} layers (changed by hand?)")
        maps: list[abi.LfStepLinear] = []
        width = I + H
        for k in range(nbb):
            maps.append(self._linear(backbone, str(k), units, width))
            width = units
        sub = abi.LfStepCfcLayer(in_size=I, hidden=H, backbone_layers=nbb, backbone_units=units)
        sub.backbone = self._array(abi.LfStepLinear, maps)
        sub.f1 = self._linear(cell, "f1", H, width)
        if mode == "pure":
            sub.w_tau, sub.a = self._tensor(cell, "w_tau", (H,)), self._tensor(cell, "A", (H,))
        else:
            sub.f2, sub.time_a, sub.time_b = (self._linear(cell, name, H, width) for name in ("f2", "time_a", "time_b"))
        sub.sparsity_mask = self._tensor(cell, "sparsity_mask", (H, width), optional=True)
        return sub

    def _cfc_plan(self, act: int, mode: str, N: int, I: int, subs: list[abi.LfStepCfcLayer]) -> abi.LfStepCfcPlan:
        """The CfC plan over its sub-layers (fc, where there is one, is added by _build)."""
        layers = self._array(abi.LfStepCfcLayer, subs)
        return abi.LfStepCfcPlan(layers=len(subs), activation=act, mode=_MODES[mode], state_size=N, in_size=I,
                                 layer=layers)  # fmt: skip

    def _build_wired(self, cell: WiredCfCCell) -> tuple[abi.LfStepCfcPlan, int]:
        mode = self._attr(cell, "mode")
        sizes = self._attr(cell, "layer_sizes")
        layers = self._module(cell, "layers", nn.ModuleList)
        I = int(cell.input_size)
        if mode not in _MODES:
            raise _Unsupported(f"mode={mode!r} is not in the C step")
        if layers is None or len(layers) != len(sizes) or not sizes:
            raise _Unsupported("the wired CfC's layers do not match its layer_sizes (changed by hand?)")
        subs: list[abi.LfStepCfcLayer] = []
        in_features = I
        for l, H in enumerate(sizes):
            cell_l = self._module(layers, str(l), CfCCell)
            sub = self._build_cfc(cell_l, in_features, False)
            if sub.hidden != H or sub.backbone_layers != 0 or cell_l.mode != mode:
                raise _Unsupported(f"wired CfC sub-layer {l} differs from the wiring (changed by hand?)")
            subs.append(sub)
            in_features = H
        self.I, self.N = I, sum(sizes)
        # the activation code is unused without backbones (a wired cell's sub-layers have none)
        return self._cfc_plan(0, mode, sum(sizes), I, subs), sizes[-1]

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


# the kernel's return codes (step_impl.h) where it declines a call; the torch path then raises the error
_DECLINED = {
    1: "NaN or Inf in the input or state",
    2: "an elapsed time that is not finite and > 0",
    3: "the C step could not allocate its scratch memory",
}


def _place_reason(t: Tensor, name: str, dtype: torch.dtype | None) -> str | None:
    """Why tensor ``name`` cannot go to C as it is: not on the CPU, or not in the layer's dtype."""
    if not t.is_cpu:
        return abi.not_cpu(t.device)
    if t.dtype is not dtype:
        return abi.mixed_dtypes(f"layer {dtype}, {name} {t.dtype}")
    return None


def _input_reason(x: Tensor, dtype: torch.dtype | None, I: int, B: int) -> str:
    if reason := _place_reason(x, "input", dtype):
        return reason
    if x.shape[-1] != I:
        return f"shape: input {tuple(x.shape)}, the layer takes {I} features"
    if B == 0:
        return f"shape: input {tuple(x.shape)}, an empty batch"
    return f"input strides {x.stride()}: its last axis is not contiguous"


def _state_reason(hx: Any, dtype: torch.dtype | None, shape: tuple[int, ...]) -> str:
    if not isinstance(hx, Tensor):
        return f"the state is a {type(hx).__name__}, not a tensor"
    if reason := _place_reason(hx, "state", dtype):
        return reason
    if hx.shape != shape:
        return f"shape: state {tuple(hx.shape)}, expected {shape}"
    return "the state is not contiguous"


def _dt_reason(dt: Any, dtype: torch.dtype | None, B: int) -> str:
    if isinstance(dt, float | int) and not isinstance(dt, bool):
        return f"dt={dt!r}; the C step takes a finite dt > 0"
    if not isinstance(dt, Tensor):
        return f"dt is a {type(dt).__name__}; the C step takes a float or a tensor"
    if reason := _place_reason(dt, "dt", dtype):
        return reason
    if dt.numel() != B:
        return f"shape: dt {tuple(dt.shape)}, expected one value per batch row ({B})"
    return f"dt of shape {tuple(dt.shape)} is not contiguous"


def _run(layer: Any, input: Any, hx: Any, dt: Any, go: bool) -> str | tuple[Tensor, Any] | None:
    """The C step's checks and, with ``go``, the step: a str says why it does not apply; else its
    result, or without ``go`` None. The checks are a few µs of the streaming step: each is one
    cheap test, and the reason is worked out only where one fails."""
    if not _native.enabled():
        return abi.SWITCHED_OFF
    if _lib is None and _library() is None:
        return _LIB.why_not() or abi.SWITCHED_OFF
    plan = _plans.get(id(layer))
    if plan is None or plan.layer_ref() is not layer or not plan.valid():
        plan = _new_plan(layer)
    fn = plan.fn
    if fn is None:
        return plan.reason or "not in the C step"
    if not isinstance(input, Tensor):
        return f"input is a {type(input).__name__}, not a tensor"
    x = input
    xshape = x.shape
    nd = len(xshape)
    if nd == 2:
        B = xshape[0]
    elif nd == 1:
        B = 1
    else:
        return f"shape: input {tuple(xshape)}; the C step takes (batch, features) or (features,)"
    dtype = plan.dtype
    I = plan.I
    if x.dtype is not dtype or xshape[-1] != I or not x.is_cpu or B == 0:
        return _input_reason(x, dtype, I, B)
    if x.is_contiguous():
        xld = I
    elif x.stride(-1) == 1:
        xld = x.stride(0)
    else:
        return _input_reason(x, dtype, I, B)
    N = plan.N
    shape = (B, N) if nd == 2 else (N,)
    if hx is None:
        hp = None
    elif isinstance(hx, Tensor) and hx.dtype is dtype and hx.shape == shape and hx.is_cpu and hx.is_contiguous():
        hp = hx.data_ptr()
    else:
        return _state_reason(hx, dtype, shape)
    if isinstance(dt, float) or (isinstance(dt, int) and not isinstance(dt, bool)):
        if not 0.0 < dt < _INF:
            return _dt_reason(dt, dtype, B)
        dtp, dts, dtc = None, 0, float(dt)
    elif isinstance(dt, Tensor) and dt.dtype is dtype and dt.is_cpu and dt.numel() == B:
        if dt.is_contiguous():
            dts = 1
        elif dt.dim() == 1:
            dts = dt.stride(0)
        else:
            return _dt_reason(dt, dtype, B)
        dtp, dtc = dt.data_ptr(), 1.0
    else:
        return _dt_reason(dt, dtype, B)
    if not go:
        return None
    hn = torch.empty(shape, dtype=dtype) if hx is None else torch.empty_like(hx)
    if plan.proj or plan.ltc:  # fc, or the LTC's motor neurons (through its output mapping)
        y = torch.empty((B, plan.out) if nd == 2 else (plan.out,), dtype=dtype)
    elif plan.motor == N:
        y = hn
    else:  # wired CfC: the last layer's neurons
        y = hn[..., N - plan.motor :]
    nt = 1 if B < plan.threads_from else torch.get_num_threads()
    rc = fn(plan.plan, x.data_ptr(), xld, hp, dtp, dts, dtc, y.data_ptr(), hn.data_ptr(), B, nt)
    if rc != 0:  # NaN / Inf in input or state, or a bad elapsed time: the torch path raises
        return _DECLINED.get(rc, f"the C step returned {rc}")
    return y, hn


def why_not(layer: Any, input: Any, hx: Any, dt: Any) -> str | None:
    """None when :func:`step` runs ``layer.step(input, hx, dt)`` in C, else the reason it does not.

    Values are not read here: :func:`step` also declines a call whose input or state holds NaN or
    Inf, or whose tensor of elapsed times is not finite and positive (found by the kernel)."""
    reason = _run(layer, input, hx, dt, False)
    return reason if isinstance(reason, str) else None


def step(layer: Any, input: Any, hx: Any, dt: Any) -> tuple[Tensor, Any] | None:
    """``layer.step(input, hx, dt)`` in C with gradients off, or None where it does not apply
    (see :func:`why_not`)."""
    out = _run(layer, input, hx, dt, True)
    return None if isinstance(out, str) else out
