"""``train_loop``: the in-memory training loop of the library's applications (maintenance, robustness).

One epoch loop for models trained on arrays already in memory, without Lightning's machinery
(``fit`` in :mod:`._fit` runs config-driven jobs on Lightning: files, devices, resumable runs):

    for each epoch: for each item of batches(epoch):
        loss, weight = loss_fn(model, item); zero_grad; backward; clip; optimizer step;
        (per-step schedule) scheduler step
    (per-epoch schedule) scheduler step; score = validate(model); keep the best epoch's weights

What is application-specific stays with the caller as two functions: ``batches(epoch)`` yields the
items of an epoch (a batch, or one chunk of a batch for truncated backpropagation through time,
where ``loss_fn`` carries the state between chunks), and ``loss_fn`` returns the loss of one item
and its weight in the epoch's mean loss. The loop owns the optimiser step, gradient clipping, the
learning-rate schedule, model selection on a validation score (higher is better: AUPRC, accuracy,
minus a loss) with early stopping after ``patience`` epochs without improvement, and the history.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class LoopConfig:
    """Optimiser, schedule and model selection of :func:`train_loop`."""

    epochs: int = 20
    lr: float = 1e-2
    optimizer: str = "adam"  #: adam or adamw
    schedule: str | None = "cosine"  #: cosine or None
    schedule_interval: str = "epoch"  #: epoch (T_max = epochs) or step (T_max = epochs x steps_per_epoch)
    steps_per_epoch: int | None = None  #: optimiser steps per epoch, for schedule_interval="step"
    eta_min_fraction: float = 0.0  #: cosine floor as a fraction of lr
    gradient_clip: float | None = 1.0  #: global gradient-norm clip (None: off)
    patience: int | None = None  #: stop after this many epochs without a better validation score
    restore_best: bool = True  #: end with the best epoch's weights (else the last)
    threads: int | None = None  #: torch threads while training (None: unchanged)

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"epochs must be an integer >= 0; got {self.epochs!r}")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw'; got {self.optimizer!r}")
        if self.schedule not in (None, "cosine"):
            raise ValueError(f"schedule must be 'cosine' or None; got {self.schedule!r}")
        if self.schedule_interval not in ("epoch", "step"):
            raise ValueError(f"schedule_interval must be 'epoch' or 'step'; got {self.schedule_interval!r}")
        if self.schedule_interval == "step" and self.schedule is not None and not self.steps_per_epoch:
            raise ValueError("schedule_interval='step' needs steps_per_epoch")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be None or >= 1; got {self.patience!r}")


@dataclass
class LoopResult:
    """What :func:`train_loop` returns (the model itself is trained in place)."""

    best_epoch: int
    best_score: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def train_loop(
    model: nn.Module,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, float]],
    config: LoopConfig | None = None,
    *,
    validate: Callable[[nn.Module], float] | None = None,
    progress: bool = False,
    label: str = "train",
) -> LoopResult:
    """Train ``model`` in place (module docstring); returns the best epoch, its score and the history.

    Without ``validate`` the best epoch is the one with the lowest mean training loss.
    """
    cfg = config or LoopConfig()
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(model, batches, loss_fn, cfg, validate, progress, label)
    finally:
        torch.set_num_threads(threads)


def _run(
    model: nn.Module,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, float]],
    cfg: LoopConfig,
    validate: Callable[[nn.Module], float] | None,
    progress: bool,
    label: str,
) -> LoopResult:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    klass = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    opt = klass(model.parameters(), lr=cfg.lr)
    sched: torch.optim.lr_scheduler.LRScheduler | None = None
    if cfg.schedule == "cosine":
        t_max = cfg.epochs if cfg.schedule_interval == "epoch" else cfg.epochs * int(cfg.steps_per_epoch or 1)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(t_max, 1), eta_min=cfg.lr * cfg.eta_min_fraction
        )
    per_step = sched is not None and cfg.schedule_interval == "step"
    best_score, best_state, best_epoch, stale = -math.inf, copy.deepcopy(model.state_dict()), 0, 0
    history: list[dict[str, float]] = []
    bar = tqdm(range(cfg.epochs), desc=label, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        total, count = 0.0, 0.0
        for item in batches(epoch):
            loss, weight = loss_fn(model, item)
            opt.zero_grad()
            loss.backward()
            if cfg.gradient_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.gradient_clip)
            opt.step()
            if per_step:
                sched.step()  # type: ignore[union-attr]
            total += float(loss.detach()) * float(weight)
            count += float(weight)
        if sched is not None and not per_step:
            sched.step()
        row = {"epoch": float(epoch), "loss": total / max(count, 1.0)}
        if validate is not None:
            score = float(validate(model))
            row["val_score"] = score
            bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{score:.3f}")
        else:
            score = -row["loss"]
        history.append(row)
        if score > best_score:
            best_score, best_state, best_epoch, stale = score, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
            if cfg.patience is not None and stale >= cfg.patience:
                break
    if cfg.restore_best:
        model.load_state_dict(best_state)
    model.eval()
    return LoopResult(best_epoch, best_score, time.perf_counter() - t0, history)
