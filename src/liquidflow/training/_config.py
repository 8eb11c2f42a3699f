"""Training configuration: three sections (data, model, trainer) as dataclasses, from YAML/JSON or flags.

A config file mirrors the dataclasses::

    data:    {source: xor, max_bits: 8, n_train: 4000}
    model:   {kind: cfc, units: 16, options: {backbone_units: 32}}
    trainer: {epochs: 30, batch_size: 64, lr: 0.01, seed: 0}
    out_dir: runs/xor

Unknown keys are errors that list the allowed ones; ``with_overrides(["trainer.epochs=5"])`` applies
``section.key=value`` strings (values parsed as YAML: ``5``, ``0.1``, ``null``, ``[a, b]``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ._model import KINDS, TASKS

SOURCES = ("xor", "spirals", "walker2d", "ucr", "csv", "parquet")
XOR_PAPER_SEEDS = (1234984, 2718281, 48736)  # train (the paper's), validation (ours), test (the paper's)


def _check_int(name: str, value: Any, low: int = 1, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}{' or null' if allow_none else ''}; got {value!r}")


@dataclass
class DataConfig:
    """Where the data comes from and how it becomes model inputs.

    ``source``: ``xor`` (event-based XOR; ``xor_encoding: paper`` draws the CfC paper's exact
    training and test sets when ``seed`` is 0), ``spirals`` (damped spirals at random times),
    ``walker2d`` (the CfC paper's Walker2d rollouts in the folder ``path``, split and thinned by the
    paper's protocol, windows of ``window`` steps, default 64), ``ucr`` (the UCR/UEA set ``name`` from
    the folder or sktime wheel ``path``: its TRAIN file split into training and validation by
    ``val_fraction``, its TEST file the test split), or ``csv`` / ``parquet`` (a long-format
    file at ``path``). ``task``: defaults to classification (xor),
    regression (spirals) and, for files, step_classification/regression by ``target_level``/``target_kind``.
    """

    source: str = "xor"
    path: str | None = None
    task: str | None = None
    seed: int = 0
    # synthetic tasks
    n_train: int = 2000
    n_val: int = 500
    n_test: int = 1000
    max_bits: int = 8
    xor_encoding: str = "run"
    xor_time_scale: float | None = None  # elapsed time = run length / this (default max_bits + 1, the paper's)
    length: int = 48
    mean_gap: float = 0.25
    noise: float = 0.0
    missing: float = 0.0
    # UCR/UEA archives
    name: str | None = None
    val_fraction: float = 0.2
    # long-format files
    entity: str | None = "entity"
    time: str = "timestamp"
    features: list[str] | None = None
    target: str | None = None
    target_level: str = "step"
    target_kind: str = "auto"
    sort: bool = False
    time_unit: str = "s"
    time_scale: float = 1.0
    window: int | None = None
    stride: int | None = None
    window_label: str = "last"
    horizon: int = 1
    split: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    # preprocessing
    forward_fill: bool = True
    indicators: bool = True
    pad_to: int | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"data.source must be one of {list(SOURCES)}; got {self.source!r}")
        if self.source in ("csv", "parquet") and not self.path:
            raise ValueError(f"data.source={self.source!r} needs data.path (the file to read)")
        if self.source == "ucr" and not (self.path and self.name):
            raise ValueError("data.source='ucr' needs data.path (a .ts folder or an sktime wheel) and data.name")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in (0, 1); got {self.val_fraction!r}")
        if self.source == "walker2d" and not self.path:
            raise ValueError("data.source='walker2d' needs data.path (the folder of rollout_*.npy files)")
        if self.xor_encoding not in ("run", "paper"):
            raise ValueError(f"data.xor_encoding must be 'run' or 'paper'; got {self.xor_encoding!r}")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"data.task must be one of {list(TASKS)} or null; got {self.task!r}")
        for name in ("n_train", "n_val", "n_test", "max_bits", "length", "horizon"):
            _check_int(f"data.{name}", getattr(self, name))
        for name in ("window", "stride", "pad_to"):
            _check_int(f"data.{name}", getattr(self, name), allow_none=True)
        if len(self.split) != 3:
            raise ValueError(f"data.split must be three fractions [train, val, test]; got {self.split!r}")


@dataclass
class ModelConfig:
    """``kind``: cfc, ltc, lstm, gru or transformer; ``wiring`` (cfc/ltc): null, autoncp, random ...;
    ``options``: extra keywords for the core (e.g. backbone_units, mixed_memory, ode_unfolds, num_heads)."""

    kind: str = "cfc"
    units: int = 32
    wiring: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model.kind must be one of {list(KINDS)}; got {self.kind!r}")
        _check_int("model.units", self.units)
        if not isinstance(self.options, dict):
            raise ValueError(f"model.options must be a mapping; got {self.options!r}")


OPTIMIZERS = ("adamw", "adam", "rmsprop", "sgd")
LR_SCHEDULES = ("constant", "cosine", "exponential", "onecycle")
WEIGHT_DECAY_MODES = ("optimizer", "l2_kernels")
CLIP_MODES = ("global", "per_tensor")


@dataclass
class TrainerConfig:
    """Optimisation and the Lightning Trainer: ``devices``/``strategy``/``num_nodes`` go to Lightning
    unchanged (e.g. ``strategy: ddp``, ``devices: 2`` for two processes; ``accelerator: gpu``).

    The recipe (docs/training.md, "Recipes"): ``optimizer`` adamw | adam | rmsprop | sgd with
    ``optimizer_options`` passed to the torch optimiser (Keras's RMSprop is ``{alpha: 0.9, eps: 1e-7}``);
    ``lr_schedule`` constant | cosine | exponential (``lr_decay`` per epoch, moved every step as Keras's
    ExponentialDecay, or once per epoch with ``lr_schedule_interval: epoch``) | onecycle;
    ``weight_decay`` through the optimiser (``optimizer``: decoupled for AdamW, added to the gradients
    of every parameter for the others) or ``l2_kernels`` (Keras's
    ``kernel_regularizer=L2(wd)``: ``wd * sum(W**2)`` over the core's weight matrices added to the loss);
    ``gradient_clip`` by global norm, or ``per_tensor`` (Keras's ``clipnorm``: each tensor on its own);
    ``restore_best``: test with the best validation epoch's weights (else the last epoch's);
    ``threads``: torch/OpenMP threads for the run; ``auto``: one, or all of torch's threads when a
    batch is large enough to gain from them (:func:`liquidflow.training._fit.choose_threads`).
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.01
    optimizer: str = "adamw"
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    weight_decay: float = 0.0
    weight_decay_mode: str = "optimizer"
    lr_schedule: str | None = "cosine"
    lr_decay: float = 0.95
    lr_schedule_interval: str = "step"
    seed: int = 0
    patience: int | None = None
    monitor: str = "val_loss"
    restore_best: bool = True
    threads: int | str = "auto"
    shuffle: bool = True
    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    gradient_clip: float | None = 1.0
    gradient_clip_mode: str = "global"
    num_workers: int = 0
    deterministic: bool = False
    progress: bool = True
    checkpoints: bool = True
    checkpoint_every_n_steps: int | None = None  # also save last.ckpt every n steps (exact mid-epoch resume)

    def __post_init__(self) -> None:
        _check_int("trainer.epochs", self.epochs)
        _check_int("trainer.batch_size", self.batch_size)
        _check_int("trainer.patience", self.patience, allow_none=True)
        _check_int("trainer.num_nodes", self.num_nodes)
        _check_int("trainer.num_workers", self.num_workers, low=0)
        _check_int("trainer.checkpoint_every_n_steps", self.checkpoint_every_n_steps, allow_none=True)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"trainer.lr must be a positive number; got {self.lr!r}")
        if self.lr_schedule not in (None, *LR_SCHEDULES):
            raise ValueError(
                f"trainer.lr_schedule must be one of {list(LR_SCHEDULES)} or null; got {self.lr_schedule!r}"
            )
        for name, allowed in (
            ("optimizer", OPTIMIZERS),
            ("weight_decay_mode", WEIGHT_DECAY_MODES),
            ("gradient_clip_mode", CLIP_MODES),
            ("lr_schedule_interval", ("step", "epoch")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"trainer.{name} must be one of {list(allowed)}; got {getattr(self, name)!r}")
        if not isinstance(self.optimizer_options, dict):
            raise ValueError(f"trainer.optimizer_options must be a mapping; got {self.optimizer_options!r}")
        if not (isinstance(self.lr_decay, (int, float)) and 0 < self.lr_decay <= 1):
            raise ValueError(f"trainer.lr_decay must be in (0, 1] (the factor per epoch); got {self.lr_decay!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"trainer.weight_decay must be a number >= 0; got {self.weight_decay!r}")
        if self.gradient_clip is not None and not (
            isinstance(self.gradient_clip, (int, float)) and self.gradient_clip > 0
        ):
            raise ValueError(f"trainer.gradient_clip must be a positive number or null; got {self.gradient_clip!r}")
        if self.threads != "auto":
            _check_int("trainer.threads", self.threads)


@dataclass
class TrainConfig:
    """A whole training run: data, model, trainer, and the folder for results (``out_dir``)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    out_dir: str = "runs/train"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        if not isinstance(d, dict):
            raise ValueError(f"a training config must be a mapping; got {type(d).__name__}")
        sections = {"data": DataConfig, "model": ModelConfig, "trainer": TrainerConfig}
        unknown = set(d) - set(sections) - {"out_dir"}
        if unknown:
            raise ValueError(f"unknown config section(s) {sorted(unknown)}; allowed: {[*sections, 'out_dir']}")
        kw: dict[str, Any] = {}
        for name, klass in sections.items():
            part = d.get(name) or {}
            if not isinstance(part, dict):
                raise ValueError(f"config section {name!r} must be a mapping; got {part!r}")
            allowed = [f.name for f in dataclasses.fields(klass)]
            bad = sorted(set(part) - set(allowed))
            if bad:
                raise ValueError(f"unknown key(s) {bad} in section {name!r}; allowed: {allowed}")
            kw[name] = klass(**part)
        if "out_dir" in d:
            kw["out_dir"] = str(d["out_dir"])
        return cls(**kw)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Read a YAML (.yaml/.yml) or JSON (.json) config file."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"config file {path!r} does not exist")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        import yaml

        try:  # safe loaders only: a config file never constructs Python objects
            d = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as e:
            raise ValueError(f"{path}: not a valid {'JSON' if path.endswith('.json') else 'YAML'} config: {e}") from e
        try:
            return cls.from_dict(d or {})
        except (ValueError, TypeError) as e:
            raise ValueError(f"{path}: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_overrides(self, overrides: list[str]) -> TrainConfig:
        """Apply ``section.key=value`` strings (or ``out_dir=...``); values are parsed as YAML."""
        import yaml

        d = self.to_dict()
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"override must look like section.key=value; got {item!r}")
            key, raw = item.split("=", 1)
            try:
                value = yaml.safe_load(raw) if raw.strip() else None
            except yaml.YAMLError as e:
                raise ValueError(f"override {item!r}: the value is not plain YAML: {e}") from e
            parts = key.strip().split(".")
            if parts == ["out_dir"]:
                d["out_dir"] = str(value)
                continue
            if len(parts) < 2 or parts[0] not in ("data", "model", "trainer"):
                raise ValueError(f"override key must be data.<key>, model.<key>, trainer.<key> or out_dir; got {key!r}")
            target = d[parts[0]]
            for p in parts[1:-1]:
                target = target.setdefault(p, {})
            target[parts[-1]] = value
        return TrainConfig.from_dict(d)
