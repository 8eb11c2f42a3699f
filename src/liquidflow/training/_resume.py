"""Step-level checkpoints and exact mid-epoch resume.

Lightning resumes a run mid-epoch exactly only when the training DataLoader is *stateful*
(``state_dict``/``load_state_dict``): otherwise it restarts the epoch's data from the beginning.
:class:`ResumableLoader` is a DataLoader whose state is its position ``(epoch, batches done)``;
:class:`StepCheckpoint` keeps that position up to date and writes ``last.ckpt`` atomically every
``every_n_steps`` optimizer steps (and at the end of every epoch). A run killed at any moment and
resumed from that file continues with the next batch of the same epoch and the same shuffled
order (the sampler is seeded per epoch), so it ends with the weights an uninterrupted run gets,
having lost only the steps since the last checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch

from .._files import atomic_path


class ResumableLoader(torch.utils.data.DataLoader):  # type: ignore[type-arg]
    """A DataLoader that can skip to a saved position; build with :meth:`wrap`."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.position: tuple[int, int] = (0, 0)  # (epoch, batches completed in it)
        self._skip = 0

    @classmethod
    def wrap(cls, loader: torch.utils.data.DataLoader) -> ResumableLoader:  # type: ignore[type-arg]
        """The same loader (dataset, batch size, sampler, collation, workers) made resumable."""
        return cls(
            loader.dataset,
            batch_size=loader.batch_size,
            sampler=loader.sampler,
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            drop_last=loader.drop_last,
        )

    def _epochs_done(self, epoch: int, batches: int) -> tuple[int, int]:
        return (epoch + 1, 0) if batches >= len(self) else (epoch, batches)

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self._epochs_done(*self.position)
        return {"epoch": epoch, "batches": batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, batches = self._epochs_done(int(state["epoch"]), int(state["batches"]))
        self.position = (epoch, batches)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        self._skip = batches

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        it = super().__iter__()
        skip, self._skip = self._skip, 0
        for _ in range(skip):  # batches already trained on before the checkpoint
            next(it)
        return it


class StepCheckpoint(L.Callback):
    """Track the loader position and save ``path`` atomically every ``every_n_steps`` steps and each epoch end."""

    def __init__(self, path: str | os.PathLike[str], every_n_steps: int) -> None:
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 1:
            raise ValueError(f"every_n_steps must be an integer >= 1; got {every_n_steps!r}")
        self.path = Path(path)
        self.every = every_n_steps
        self.loader: ResumableLoader | None = None

    def attach(self, loader: torch.utils.data.DataLoader) -> ResumableLoader:  # type: ignore[type-arg]
        """Make the training ``loader`` resumable and track its position; returns the loader to train on."""
        self.loader = ResumableLoader.wrap(loader)
        return self.loader

    def _save(self, trainer: L.Trainer) -> None:
        if not trainer.is_global_zero:  # every rank must make the call (a barrier); only global rank 0 writes
            trainer.save_checkpoint(self.path)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            trainer.save_checkpoint(tmp)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        batch_idx = int(args[-1])
        if self.loader is not None:
            self.loader.position = (trainer.current_epoch, batch_idx + 1)
        if trainer.global_step % self.every == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.loader is not None:
            self.loader.position = (trainer.current_epoch + 1, 0)
        self._save(trainer)
