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


class SequenceTask(L.LightningModule):
    """Train a :class:`SequenceModel` with AdamW (optionally a cosine learning-rate schedule).

    Logs ``train_loss``, ``val_loss`` and ``val_<metric>`` per epoch (synchronised across processes
    under DDP), and ``test_*`` in ``trainer.test``.
    """

    def __init__(
        self,
        model: SequenceModel,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
        lr_schedule: str | None = "cosine",
        max_epochs: int = 1,
    ) -> None:
        super().__init__()
        self.model = model
        self.task = model.task
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.lr_schedule = lr_schedule
        self.max_epochs = int(max_epochs)
        num_classes = model.output_size if self.task in ("classification", "step_classification") else None
        metrics = make_metrics(self.task, num_classes)
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.model(batch["x"], timespans=batch["timespans"], mask=batch["mask"])

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, _, _ = loss_and_targets(self.task, self(batch), batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=batch["x"].shape[0])
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

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_schedule != "cosine":
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(self.max_epochs, 1), eta_min=self.lr * 0.05)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
