"""The LightningModule: any SequenceModel, its loss and torchmetrics, for every task."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torchmetrics.classification import MulticlassAccuracy

from ..data import IGNORE_INDEX
from ._model import SequenceModel

Tensor = torch.Tensor


def make_metrics(task: str, num_classes: int | None) -> torchmetrics.MetricCollection:
    """accuracy for classification tasks; mse and mae for regression and forecasting."""
    if task in ("classification", "step_classification"):
        if not num_classes:
            raise ValueError(f"task {task!r} needs num_classes")
        return torchmetrics.MetricCollection(
            {"acc": MulticlassAccuracy(num_classes=num_classes, average="micro", ignore_index=IGNORE_INDEX)}
        )
    return torchmetrics.MetricCollection(
        {"mse": torchmetrics.MeanSquaredError(), "mae": torchmetrics.MeanAbsoluteError()}
    )


def loss_and_targets(task: str, preds: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """The task's loss (mean over observed entries) and (preds, targets) flattened for the metrics."""
    y = batch["y"]
    if task == "classification":
        return F.cross_entropy(preds, y), preds, y
    if task == "step_classification":
        flat_p, flat_y = preds.reshape(-1, preds.shape[-1]), y.reshape(-1)
        keep = flat_y != IGNORE_INDEX
        return F.cross_entropy(flat_p, flat_y, ignore_index=IGNORE_INDEX), flat_p[keep], flat_y[keep]
    if task == "regression":
        return F.mse_loss(preds, y), preds, y
    m = batch["mask"]  # forecast: (B, T, O) over observed steps only
    p, t = preds[m], y[m]
    return F.mse_loss(p, t), p, t


def l2_kernels(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weight matrices that a Keras ``kernel_regularizer`` would cover: every parameter of the
    model's ``core`` whose name contains ``weight`` with two or more axes (the CfC backbone and heads,
    the baselines' input and recurrent matrices), except the mixed-memory LSTM's (the CfC paper's
    ``MixedCfcCell`` has no regulariser there). Biases, LTC's synapse parameters and the output head
    are not penalised."""
    core = getattr(model, "core", model)
    return [
        p
        for name, p in core.named_parameters()
        if p.requires_grad and p.dim() >= 2 and "weight" in name.rsplit(".", 1)[-1] and not name.startswith("lstm.")
    ]


class SequenceTask(L.LightningModule):
    """Train a :class:`SequenceModel` with the recipe of a :class:`TrainerConfig` (docs/training.md).

    Logs ``train_loss`` (the data loss, without any L2 penalty), ``val_loss`` and ``val_<metric>``
    per epoch (synchronised across processes under DDP), and ``test_*`` in ``trainer.test``.
    The positional arguments keep their earlier meaning (AdamW, cosine schedule by default).
    """

    def __init__(
        self,
        model: SequenceModel,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
        lr_schedule: str | None = "cosine",
        max_epochs: int = 1,
        *,
        optimizer: str = "adamw",
        optimizer_options: dict[str, Any] | None = None,
        weight_decay_mode: str = "optimizer",
        lr_decay: float = 0.95,
        lr_schedule_interval: str = "step",
        gradient_clip_mode: str = "global",
        steps_per_epoch: int | None = None,
    ) -> None:
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.model = model
        self.task = model.task
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.lr_schedule = lr_schedule
        self.max_epochs = int(max_epochs)
        self.optimizer_name = optimizer
        self.optimizer_options = dict(optimizer_options or {})
        self.weight_decay_mode = weight_decay_mode
        self.lr_decay = float(lr_decay)
        self.lr_schedule_interval = lr_schedule_interval
        self.gradient_clip_mode = gradient_clip_mode
        self._l2 = l2_kernels(model) if weight_decay_mode == "l2_kernels" and self.weight_decay > 0 else []
        num_classes = model.output_size if self.task in ("classification", "step_classification") else None
        metrics = make_metrics(self.task, num_classes)
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")

    @classmethod
    def from_config(cls, model: SequenceModel, trainer: Any, steps_per_epoch: int | None = None) -> SequenceTask:
        """The module for a :class:`TrainerConfig`'s recipe (``steps_per_epoch``: optimiser steps per epoch,
        for the per-step schedules; asked from Lightning when not given)."""
        return cls(
            model,
            trainer.lr,
            trainer.weight_decay,
            trainer.lr_schedule,
            trainer.epochs,
            optimizer=trainer.optimizer,
            optimizer_options=trainer.optimizer_options,
            weight_decay_mode=trainer.weight_decay_mode,
            lr_decay=trainer.lr_decay,
            lr_schedule_interval=trainer.lr_schedule_interval,
            gradient_clip_mode=trainer.gradient_clip_mode,
            steps_per_epoch=steps_per_epoch,
        )

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.model(batch["x"], timespans=batch["timespans"], mask=batch["mask"])

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, _, _ = loss_and_targets(self.task, self(batch), batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=batch["x"].shape[0])
        if self._l2:  # Keras kernel_regularizer=L2(wd): wd * sum(W**2) per kernel, added to the loss
            loss = loss + self.weight_decay * sum(p.square().sum() for p in self._l2)
        return loss

    def _eval_step(self, batch: dict[str, Tensor], stage: str) -> None:
        loss, p, t = loss_and_targets(self.task, self(batch), batch)
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        metrics.update(p, t)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=batch["x"].shape[0])
        self.log_dict(metrics, on_step=False, on_epoch=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: float | None = None, gradient_clip_algorithm: str | None = None
    ) -> None:
        if gradient_clip_val is None or gradient_clip_val <= 0:
            return
        if self.gradient_clip_mode == "per_tensor":  # Keras clipnorm: each gradient tensor on its own
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        torch.nn.utils.clip_grad_norm_(p, gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def _optimizer(self) -> torch.optim.Optimizer:
        params = self.model.parameters()
        wd = self.weight_decay if self.weight_decay_mode == "optimizer" else 0.0
        opts = self.optimizer_options
        klass: Any = {
            "adamw": torch.optim.AdamW,
            "adam": torch.optim.Adam,
            "rmsprop": torch.optim.RMSprop,
            "sgd": torch.optim.SGD,
        }[self.optimizer_name]
        try:
            return klass(params, lr=self.lr, weight_decay=wd, **opts)  # type: ignore[no-any-return]
        except TypeError as e:
            raise ValueError(f"trainer.optimizer_options {opts} do not fit {klass.__name__}: {e}") from e

    def configure_optimizers(self) -> Any:
        opt = self._optimizer()
        if self.lr_schedule in (None, "constant"):
            return opt

        def total_steps() -> (
            int
        ):  # Lightning's estimate iterates the training loader: asked only without steps_per_epoch
            if self.steps_per_epoch is not None:
                return max(self.steps_per_epoch * self.max_epochs, 1)
            return max(int(self.trainer.estimated_stepping_batches), 1)

        sched: Any
        interval = "epoch"
        if self.lr_schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=max(self.max_epochs, 1), eta_min=self.lr * 0.05
            )
        elif self.lr_schedule == "exponential":
            decay = self.lr_decay
            if self.lr_schedule_interval == "step":  # Keras ExponentialDecay(lr, steps_per_epoch, decay)
                per_epoch = max(total_steps() // max(self.max_epochs, 1), 1)
                sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: decay ** (step / per_epoch))
                interval = "step"
            else:
                sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=decay)
        else:  # onecycle
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=total_steps())
            interval = "step"
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}
