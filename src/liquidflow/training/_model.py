"""A complete sequence model: input normalisation -> core (LTC/CfC or a baseline) -> optional head.

The normalisation statistics are buffers (``input_mean``, ``input_std``, shape (F,)), so they travel
with the weights in every checkpoint and export: a model applied to raw readings normalises them
itself with the statistics fitted on the training split.

Tasks (``task``):

- ``classification``: one label per sequence; output (B, C) logits from the last observed step.
- ``step_classification``: one label per step; output (B, T, C) logits.
- ``regression``: one real vector per sequence; output (B, O).
- ``forecast``: one real vector per step (e.g. the next reading); output (B, T, O).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..torch import LTC, CfC
from ..wirings import AutoNCP, FullyConnected, Random, Wiring
from ._baselines import DtGRU, DtLSTM, DtTransformer

Tensor = torch.Tensor

TASKS = ("classification", "step_classification", "regression", "forecast")
PER_STEP_TASKS = ("step_classification", "forecast")
CORE_CLASSES: dict[str, type[nn.Module]] = {
    "LTC": LTC,
    "CfC": CfC,
    "DtLSTM": DtLSTM,
    "DtGRU": DtGRU,
    "DtTransformer": DtTransformer,
}
KINDS = ("cfc", "ltc", "lstm", "gru", "transformer")


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}; got {task!r}")
    return task


class SequenceModel(nn.Module):
    """Input normalisation, a sequence ``core`` and a linear ``head`` (or None).

    ``forward(x (B, T, F), timespans=None | float | (B, T), mask=None | (B, T) bool) -> predictions``
    with the shape given by ``task`` (module docstring). ``core`` follows the LTC/CfC interface
    ``core(x, timespans=..., mask=...) -> (output, state)``.
    """

    core: Any  # LTC, CfC or a baseline (duck-typed: input_size, out_features, return_sequences, get_config)
    head: nn.Linear | None
    input_mean: Tensor
    input_std: Tensor

    def __init__(
        self,
        core: nn.Module,
        head: nn.Linear | None,
        task: str = "classification",
        input_mean: Tensor | None = None,
        input_std: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.task = _check_task(task)
        if type(core).__name__ not in CORE_CLASSES:
            raise TypeError(f"core must be one of {sorted(CORE_CLASSES)}; got {type(core).__name__}")
        per_step = task in PER_STEP_TASKS
        if bool(core.return_sequences) != per_step:
            raise ValueError(
                f"task {task!r} needs a core with return_sequences={per_step}; got {core.return_sequences}"
            )
        if head is not None and head.in_features != core.out_features:
            raise ValueError(f"head.in_features={head.in_features} but the core gives {core.out_features} features")
        self.core = core
        self.head = head
        n = int(self.core.input_size)
        self.register_buffer("input_mean", torch.zeros(n))
        self.register_buffer("input_std", torch.ones(n))
        if input_mean is not None or input_std is not None:
            self.set_normalization(input_mean, input_std)

    @property
    def input_size(self) -> int:
        return int(self.core.input_size)

    @property
    def output_size(self) -> int:
        return int(self.head.out_features) if self.head is not None else int(self.core.out_features)

    @property
    def per_step(self) -> bool:
        return self.task in PER_STEP_TASKS

    def set_normalization(self, mean: Tensor | Any | None, std: Tensor | Any | None) -> None:
        """Store per-feature mean and std (std <= 1e-8 is replaced by 1: a constant feature stays 0)."""
        n = self.input_size
        if mean is not None:
            m = torch.as_tensor(mean, dtype=self.input_mean.dtype).reshape(-1)
            if m.numel() != n or not torch.isfinite(m).all():
                raise ValueError(f"mean must hold {n} finite values (one per input feature); got {m.tolist()}")
            self.input_mean.copy_(m)
        if std is not None:
            s = torch.as_tensor(std, dtype=self.input_std.dtype).reshape(-1)
            if s.numel() != n or not torch.isfinite(s).all() or (s < 0).any():
                raise ValueError(f"std must hold {n} finite values >= 0 (one per input feature); got {s.tolist()}")
            self.input_std.copy_(torch.where(s > 1e-8, s, torch.ones_like(s)))

    def forward(self, x: Tensor, timespans: float | Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"input has {x.shape[-1] if x.dim() else 0} features (last axis) but the model expects "
                f"input_size={self.input_size}; got shape {tuple(x.shape)}"
            )
        z = (x - self.input_mean.to(x.dtype)) / self.input_std.to(x.dtype)
        out, _ = self.core(z, timespans=timespans, mask=mask)
        if self.head is not None:
            out = self.head(out)
            if self.per_step and mask is not None:
                m = mask if mask.dim() == out.dim() - 1 else mask[..., 0]
                out = out * m.unsqueeze(-1).to(out.dtype)
        return out

    def get_config(self) -> dict[str, Any]:
        """JSON-safe description; ``SequenceModel.from_config`` rebuilds the same architecture."""
        return {
            "core_class": type(self.core).__name__,
            "core": self.core.get_config(),
            "head": None
            if self.head is None
            else {"in_features": self.head.in_features, "out_features": self.head.out_features},
            "task": self.task,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SequenceModel:
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict; got {type(config).__name__}")
        missing = {"core_class", "core", "head", "task"} - set(config)
        if missing:
            raise ValueError(f"SequenceModel config is missing keys {sorted(missing)}")
        name = config["core_class"]
        if name not in CORE_CLASSES:
            raise ValueError(f"unknown core class {name!r}; known: {sorted(CORE_CLASSES)}")
        core = CORE_CLASSES[name].from_config(dict(config["core"]))  # type: ignore[attr-defined]
        head_cfg = config["head"]
        head = None if head_cfg is None else nn.Linear(int(head_cfg["in_features"]), int(head_cfg["out_features"]))
        return cls(core, head, task=config["task"])


def _make_wiring(
    wiring: str | Wiring | dict[str, Any] | None, units: int, output_size: int, seed: int
) -> Wiring | None:
    if wiring is None or isinstance(wiring, Wiring):
        return wiring.copy() if isinstance(wiring, Wiring) else None
    if isinstance(wiring, dict):
        return Wiring.from_config(wiring)
    names = {"autoncp": "AutoNCP", "fully_connected": "FullyConnected", "random": "Random", "ncp": "NCP"}
    if wiring not in names:
        raise ValueError(f"wiring must be None, a Wiring, a config dict or one of {sorted(names)}; got {wiring!r}")
    if wiring == "autoncp":
        if units < output_size + 3:
            raise ValueError(
                f"wiring='autoncp' needs units >= output_size + 3; got units={units}, output={output_size}"
            )
        return AutoNCP(units, output_size, seed=seed)
    if wiring == "fully_connected":
        return FullyConnected(units, output_size)
    if wiring == "random":
        return Random(units, output_size, sparsity_level=0.5, random_seed=seed)
    raise ValueError("wiring='ncp' needs explicit layer sizes: pass an NCP(...) object instead")


def build_model(
    kind: str = "cfc",
    input_size: int = 1,
    output_size: int = 1,
    units: int = 32,
    wiring: str | Wiring | dict[str, Any] | None = None,
    task: str = "classification",
    seed: int = 22222,
    input_mean: Any = None,
    input_std: Any = None,
    **kw: Any,
) -> SequenceModel:
    """Build a :class:`SequenceModel`.

    ``kind``: ``cfc``, ``ltc`` (liquid cores) or the baselines ``lstm``, ``gru``, ``transformer`` (each
    sees dt as an extra input channel). ``units``: hidden neurons. ``wiring``: for cfc/ltc, None (a
    dense layer plus a linear head), ``"autoncp"`` (an AutoNCP whose motor neurons are the outputs;
    no head), ``"fully_connected"``/``"random"`` (outputs = the first ``output_size`` neurons) or a
    Wiring / wiring config. Extra keywords go to the core (e.g. ``mixed_memory``, ``backbone_units``,
    ``ode_unfolds``, ``solver``, ``num_layers``, ``num_heads``).
    """
    _check_task(task)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}; got {kind!r}")
    for name, value in (("input_size", input_size), ("output_size", output_size), ("units", units)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    rs = task in PER_STEP_TASKS
    core: nn.Module
    head: nn.Linear | None
    if kind in ("cfc", "ltc"):
        w = _make_wiring(wiring, units, output_size, seed)
        cls = CfC if kind == "cfc" else LTC
        core = cls(input_size, w if w is not None else units, return_sequences=rs, **kw)
        out = int(core.out_features)  # type: ignore[arg-type]
        head = None if (w is not None and out == output_size) else nn.Linear(out, output_size)
    else:
        if wiring is not None:
            raise ValueError(f"wiring applies to cfc/ltc only; got wiring={wiring!r} with kind={kind!r}")
        bcls: type[nn.Module] = {"lstm": DtLSTM, "gru": DtGRU, "transformer": DtTransformer}[kind]
        core = bcls(input_size, units, return_sequences=rs, **kw)
        head = nn.Linear(units, output_size)
    return SequenceModel(core, head, task=task, input_mean=input_mean, input_std=input_std)
