"""The typed interface to the C kernels of :mod:`liquidflow._native`: one ``ctypes.Structure`` per call.

Each structure here mirrors, field by field, a C ``typedef struct`` of ``_native/lf_abi.h`` (same
order, same names; every field 8 bytes: ``int64``, ``double`` or a pointer), and the C code reads
the fields by name. Each library also describes itself (``lf_<kernel>_abi_version()``,
``lf_<kernel>_struct_size(type)``, ``lf_<kernel>_field_offset(type, field)``), and :func:`mismatch`
compares that with the structures here when the library is loaded: a library built from other
sources (a field added, removed or moved on one side only, a changed version) is refused with the
reason instead of being called with a layout it does not read.

This module imports ``ctypes`` and :mod:`liquidflow._native` (no torch), so it can serve any front end.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from .. import _native

__all__ = [
    "CFC_ABI_VERSION",
    "CFC_ACTIVATIONS",
    "CFC_MAX_BACKBONE",
    "CFC_MODES",
    "CFC_SAVE_DERIVATIVE",
    "CFC_STRUCTS",
    "LTC_ABI_VERSION",
    "LTC_STRUCTS",
    "STEP_ABI_VERSION",
    "STEP_STRUCTS",
    "SWITCHED_OFF",
    "KernelLibrary",
    "LfCfcDeep",
    "LfCfcLayer",
    "LfCfcLstm",
    "LfLtcSensory",
    "LfLtcSeq",
    "LfStepCfcLayer",
    "LfStepCfcPlan",
    "LfStepLinear",
    "LfStepLtcPlan",
    "LfStrided",
    "mismatch",
    "mixed_dtypes",
    "not_cpu",
    "not_float",
]

# bumped with every change of a kernel's structs or of the meaning of a field (LF_*_ABI_VERSION in C)
CFC_ABI_VERSION = 6
LTC_ABI_VERSION = 5
STEP_ABI_VERSION = 2

# the reasons the wrappers give (their why_not functions) for what all kernels have in common
SWITCHED_OFF = "native kernels switched off (LIQUIDFLOW_NATIVE=0 or use_native(False))"


def not_cpu(device: object) -> str:
    return f"tensors on {device}; the C kernels take CPU tensors"


def not_float(dtype: object) -> str:
    return f"dtype {dtype}; the C kernels take float32/float64"


def mixed_dtypes(detail: str) -> str:
    return f"mixed dtypes ({detail}); the C kernels take one dtype for all tensors"


_I64, _F64, _PTR = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
_log = logging.getLogger("liquidflow.native")


class _Struct(ctypes.Structure):
    c_name: ClassVar[str]  # the C typedef this structure mirrors


# ============================================================================================ CfC (cfc.c)
class LfStrided(_Struct):
    """A matrix or vector read in place: element (i, j) is ``data[i * stride0 + j * stride1]``."""

    c_name = "lf_strided"
    _fields_ = [("data", _PTR), ("stride0", _I64), ("stride1", _I64)]


class LfCfcDeep(_Struct):
    """Backbone layer k >= 1 of a CfC layer: weights, dropout multipliers, saved activations, gradients."""

    c_name = "lf_cfc_deep"
    _fields_ = [
        ("w_t", LfStrided),  # (K, K): element (i, j) is W_k[j, i]
        ("b", LfStrided),  # (K)
        ("drop", _PTR),  # (T, B, K) dropout multipliers or NULL
        ("z", _PTR),  # saved (T, B, K)
        ("zd", _PTR),  # saved (T, B, K) act'(u) times the dropout multiplier, or NULL
        ("grad_w_t", _PTR),
        ("grad_b", _PTR),
    ]


class LfCfcLayer(_Struct):
    """One layer of a CfC chain: sizes, options, weights, the saved activations, the gradients out."""

    c_name = "lf_cfc_layer"
    _fields_ = [
        ("hidden", _I64),  # H
        ("width", _I64),  # K: outputs of the first linear map
        ("in_size", _I64),  # inputs of the map from layer l-1 (0 for layer 0)
        ("backbone", _I64),  # backbone layers, 0..CFC_MAX_BACKBONE
        ("mode", _I64),  # a code of CFC_MODES
        ("offset", _I64),  # of the layer's state in the chain state
        ("activation", _I64),  # the backbone's, a code of CFC_ACTIVATIONS
        ("head_activation", _I64),  # f1, f2: tanh or lecun_tanh, codes of CFC_ACTIVATIONS
        ("wx_t", LfStrided),  # (I, K)
        ("wh_t", LfStrided),  # (H, K)
        ("b", LfStrided),  # (K)
        ("hw_t", LfStrided),  # (K, 4H), pure: (K, H)
        ("hb", LfStrided),  # (4H), pure: (H)
        ("a", LfStrided),  # (H) pure mode
        ("w_tau", LfStrided),  # (H) pure mode
        ("deep", _PTR),  # backbone - 1 LfCfcDeep, or NULL
        ("drop", _PTR),  # (T, B, K) dropout multipliers of backbone layer 0, or NULL
        ("z", _PTR),  # saved (T, B, K)
        ("f", _PTR),  # saved (T, B, 2H)
        ("g", _PTR),  # saved (T, B, H)
        ("zd", _PTR),  # saved (T, B, K) act'(u) (times the dropout multiplier): gelu, silu, or with dropout
        ("grad_u", _PTR),  # (T, B, K), layer 0: dP
        ("grad_wx_t", _PTR),
        ("grad_wh_t", _PTR),
        ("grad_b", _PTR),
        ("grad_hw_t", _PTR),
        ("grad_hb", _PTR),
        ("grad_a", _PTR),
        ("grad_w_tau", _PTR),
    ]


class LfCfcLstm(_Struct):
    """The mixed-memory LSTM run before a CfC chain at every step (lstm_impl.h)."""

    c_name = "lf_cfc_lstm"
    _fields_ = [
        ("size", _I64),  # N
        ("r_t", LfStrided),  # (N, 4N) = R^T
        ("pre", _PTR),  # (T, B, 4N)
        ("c0", _PTR),  # (B, N)
        ("c", _PTR),  # (T, B, N) out
        ("hl", _PTR),  # (T, B, N) saved, or NULL
        ("gates", _PTR),  # (T, B, 4N) saved, or NULL
        ("grad_c", _PTR),  # (T, B, N) or NULL
        ("grad_pre", _PTR),
        ("grad_r_t", _PTR),
        ("grad_c0", _PTR),
    ]


#: the backbone activations of LfCfcLayer.activation (LF_CFC_ACT_* of lf_abi.h, the step kernel's codes)
CFC_ACTIVATIONS = {"lecun_tanh": 0, "tanh": 1, "relu": 2, "gelu": 3, "silu": 4}
#: those whose derivative the backward pass cannot take from z: the forward pass saves act'(u) (zd)
CFC_SAVE_DERIVATIVE = ("gelu", "silu")
#: LfCfcLayer.mode (LF_CFC_MODE_*)
CFC_MODES = {"default": 0, "no_gate": 1, "pure": 2}
#: backbone layers of one CfC layer at most (LF_CFC_MAXBB)
CFC_MAX_BACKBONE = 4

CFC_STRUCTS: tuple[type[_Struct], ...] = (LfStrided, LfCfcDeep, LfCfcLstm, LfCfcLayer)


# ============================================================================================ LTC (ltc.c)
class LfLtcSeq(_Struct):
    """A dense or edge-list LTC sequence call, forward or backward (see lf_abi.h for the shapes)."""

    c_name = "lf_ltc_seq"
    _fields_ = [
        ("steps", _I64),
        ("batch", _I64),
        ("neurons", _I64),
        ("unfolds", _I64),
        ("edges", _I64),
        ("need_w", _I64),
        ("threads", _I64),
        ("base", _PTR),
        ("c", _PTR),
        ("keep", _PTR),
        ("h0", _PTR),
        ("w", _PTR),
        ("we", _PTR),
        ("sigma", _PTR),
        ("sm", _PTR),
        ("src", _PTR),
        ("dst", _PTR),
        ("states", _PTR),
        ("v", _PTR),
        ("d", _PTR),
        ("grad_states", _PTR),
        ("grad_base", _PTR),
        ("grad_c", _PTR),
        ("grad_h0", _PTR),
        ("grad_w", _PTR),
        ("grad_we", _PTR),
        ("grad_sigma", _PTR),
        ("grad_sm", _PTR),
        ("stages", _I64),  # 0: semi-implicit; S: explicit Runge-Kutta with the tableau below
        ("rk_a", _PTR),  # (S, S) float64, row-major, strictly lower triangular
        ("rk_b", _PTR),  # (S) float64
        ("lstm_pre", _PTR),  # mixed memory: (T, B, 4N), NULL: none
        ("lstm_r", _PTR),  # (4N, N)
        ("lstm_r_t", _PTR),  # (N, 4N)
        ("lstm_c0", _PTR),  # (B, N)
        ("lstm_c", _PTR),  # (T, B, N) out
        ("lstm_hl", _PTR),  # (T, B, N) saved
        ("lstm_gates", _PTR),  # (T, B, 4N) saved
        ("lstm_grad_c", _PTR),  # (T, B, N) or NULL
        ("lstm_grad_pre", _PTR),  # (T, B, 4N)
        ("lstm_grad_r_t", _PTR),  # (N, 4N) or NULL
        ("lstm_grad_c0", _PTR),  # (B, N)
    ]


class LfLtcSensory(_Struct):
    """The sensory synapses and the leak of all rows at once, forward or backward."""

    c_name = "lf_ltc_sensory"
    _fields_ = [
        ("rows", _I64),
        ("inputs", _I64),
        ("neurons", _I64),
        ("need_w", _I64),
        ("threads", _I64),
        ("x", _PTR),
        ("leak", _PTR),
        ("sw", _PTR),
        ("swe", _PTR),
        ("ssig", _PTR),
        ("ssm", _PTR),
        ("base", _PTR),
        ("grad_base", _PTR),
        ("grad_x", _PTR),
        ("grad_leak", _PTR),
        ("grad_sw", _PTR),
        ("grad_swe", _PTR),
        ("grad_ssig", _PTR),
        ("grad_ssm", _PTR),
    ]


LTC_STRUCTS: tuple[type[_Struct], ...] = (LfLtcSeq, LfLtcSensory)


# ============================================================================= streaming step (step.c)
class LfStepLinear(_Struct):
    """A linear map read in place: weight (out, in) row-major, bias (out) or NULL."""

    c_name = "lf_step_linear"
    _fields_ = [("weight", _PTR), ("bias", _PTR)]


class LfStepCfcLayer(_Struct):
    """One CfCCell (dense, or a sub-layer of a WiredCfCCell)."""

    c_name = "lf_step_cfc_layer"
    _fields_ = [
        ("in_size", _I64),
        ("hidden", _I64),
        ("backbone_layers", _I64),
        ("backbone_units", _I64),
        ("backbone", ctypes.POINTER(LfStepLinear)),  # backbone_layers of them
        ("f1", LfStepLinear),
        ("f2", LfStepLinear),
        ("time_a", LfStepLinear),
        ("time_b", LfStepLinear),
        ("w_tau", _PTR),  # pure mode
        ("a", _PTR),  # pure mode
        ("sparsity_mask", _PTR),
    ]


class LfStepCfcPlan(_Struct):
    """A CfC layer's streaming step: sizes, options, its sub-layers and fc."""

    c_name = "lf_step_cfc_plan"
    _fields_ = [
        ("layers", _I64),
        ("activation", _I64),  # codes of _native_step._ACTIVATIONS
        ("mode", _I64),  # 0 default, 1 no_gate, 2 pure
        ("proj", _I64),  # fc outputs, 0: no fc
        ("state_size", _I64),
        ("in_size", _I64),
        ("layer", ctypes.POINTER(LfStepCfcLayer)),  # `layers` of them
        ("fc", LfStepLinear),
    ]


class LfStepLtcPlan(_Struct):
    """An LTC layer's streaming step (semi-implicit solver): sizes, options, the raw parameters, fc."""

    c_name = "lf_step_ltc_plan"
    _fields_ = [
        ("state_size", _I64),
        ("in_size", _I64),
        ("motor_size", _I64),
        ("unfolds", _I64),
        ("input_mapping", _I64),  # 0 none, 1 linear, 2 affine
        ("output_mapping", _I64),
        ("proj", _I64),  # fc outputs, 0: no fc
        ("epsilon", _F64),
        ("gleak_raw", _PTR),
        ("vleak", _PTR),
        ("cm_raw", _PTR),
        ("w_raw", _PTR),
        ("sigma", _PTR),
        ("mu", _PTR),
        ("erev", _PTR),
        ("sensory_w_raw", _PTR),
        ("sensory_sigma", _PTR),
        ("sensory_mu", _PTR),
        ("sensory_erev", _PTR),
        ("sparsity_mask", _PTR),
        ("sensory_sparsity_mask", _PTR),
        ("input_w", _PTR),
        ("input_b", _PTR),
        ("output_w", _PTR),
        ("output_b", _PTR),
        ("fc", LfStepLinear),
    ]


STEP_STRUCTS: tuple[type[_Struct], ...] = (LfStepLinear, LfStepCfcLayer, LfStepCfcPlan, LfStepLtcPlan)


# ============================================================================================== the check
def mismatch(lib: Any, kernel: str, version: int, structs: Sequence[type[_Struct]]) -> str | None:
    """None when ``lib`` reads the structures as this module writes them, else what differs."""
    try:
        c_version = getattr(lib, f"lf_{kernel}_abi_version")
        c_size = getattr(lib, f"lf_{kernel}_struct_size")
        c_offset = getattr(lib, f"lf_{kernel}_field_offset")
    except AttributeError as e:
        return f"it does not describe its structs ({e}); it was built from other sources"
    c_version.argtypes, c_version.restype = [], _I64
    c_size.argtypes, c_size.restype = [ctypes.c_char_p], _I64
    c_offset.argtypes, c_offset.restype = [ctypes.c_char_p, ctypes.c_char_p], _I64
    got = c_version()
    if got != version:
        return f"ABI version {got} in C, {version} in Python"
    for s in structs:
        name = s.c_name.encode()
        size = c_size(name)
        if size < 0:
            return f"struct {s.c_name} is not in the C library"
        if size != ctypes.sizeof(s):
            return f"struct {s.c_name} is {size} bytes in C, {ctypes.sizeof(s)} in Python"
        for field, *_ in s._fields_:
            off, py_off = c_offset(name, field.encode()), getattr(s, field).offset
            if off < 0:
                return f"field {s.c_name}.{field} is not in the C struct"
            if off != py_off:
                return f"field {s.c_name}.{field} is at byte {off} in C, {py_off} in Python"
    return None


class KernelLibrary:
    """One C library of :mod:`liquidflow._native`, loaded, checked against its structs, and typed.

    :meth:`get` gives the library or None; :meth:`why_not` says why it is None. ``setup`` sets the
    argument types of the library's functions, once per library object."""

    def __init__(self, name: str, version: int, structs: Sequence[type[_Struct]],
                 setup: Callable[[ctypes.CDLL], object]) -> None:  # fmt: skip
        self.name, self.version, self.structs, self.setup = name, version, tuple(structs), setup
        self._checked: dict[int, tuple[ctypes.CDLL, str | None]] = {}  # id(lib) -> (lib, reason)
        self._lock = threading.Lock()

    def _check(self, lib: ctypes.CDLL) -> str | None:
        seen = self._checked.get(id(lib))
        if seen is not None and seen[0] is lib:
            return seen[1]
        with self._lock:
            reason = mismatch(lib, self.name, self.version, self.structs)
            if reason is None:
                self.setup(lib)
            else:
                reason = f"the C library {self.name!r} does not match liquidflow._ops.native_abi: {reason}"
                _log.warning("%s; the torch kernels run instead", reason)
            self._checked[id(lib)] = (lib, reason)
        return reason

    def get(self) -> ctypes.CDLL | None:
        """The library, ready to call; None when switched off, not built, or not matching."""
        lib = _native.load(self.name)
        if lib is None or self._check(lib) is not None:
            return None
        return lib

    def why_not(self) -> str | None:
        """None when :meth:`get` gives the library, else why not (builds it on first use)."""
        if not _native.enabled():
            return SWITCHED_OFF
        lib = _native.load(self.name)
        if lib is None:
            return f"the C library could not be built: {_native.status().get(self.name, 'unknown error')}"
        return self._check(lib)
