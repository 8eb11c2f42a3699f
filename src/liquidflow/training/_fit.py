"""``fit``: one training run from a TrainConfig, on one process or many (Lightning strategies).

Outputs, in ``out_dir``:

- ``model.lf``: the trained model (best validation epoch) with its normalisation, saved by
  :mod:`liquidflow.checkpoint`; the metadata holds the data pipeline, so ``evaluate``/``predict``
  can repeat it on new files;
- ``results.json``: config, metrics on validation and test data, per-epoch history, run time;
- ``curve.png``: the training curve (train/val loss, validation metric);
- ``checkpoints/last.ckpt``: Lightning's full training state (optimizer, epoch) to ``resume`` from.

Under DDP every process runs the loop; only global rank 0 writes files. With ``strategy=ddp_spawn``
the history and best weights are passed back to the launching process through ``out_dir``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from ..checkpoint import load_model, save_model
from ..data import SeriesDataset, make_loader
from ..torch import count_parameters
from ._advice import advise
from ._config import TrainConfig
from ._model import SequenceModel, build_model
from ._module import loss_and_targets, make_metrics
from ._pipeline import PreparedData, prepare_data

_log = logging.getLogger("liquidflow.training")


PARALLEL_WORK = 20e6  # multiply-adds per batch (batch x steps x parameters) from which threads pay off


def choose_threads(model: SequenceModel, batch: dict[str, torch.Tensor], most: int) -> int:
    """1 or ``most`` threads for training ``model`` on batches like ``batch``, from the work per batch.

    Small models gain little from a second thread and lose a lot when another process holds a core
    (OpenMP threads wait on each other at every step), so one thread unless a batch is at least
    :data:`PARALLEL_WORK` multiply-adds (rows x steps x parameters). On this project's 2-core machine:
    CfC(1, 16) at batch 32 x 16 steps (1.3 M) runs 1.63 / 1.37 ms per step on 1 / 2 threads, CfC(1, 64)
    at 256 x 32 (340 M) 32 / 21 ms, CfC(1, 192) at 128 x 32 (600 M) 50 / 29 ms. A rule, not a
    timing, so that a run and its resumed continuation use the same threads (same sums, same weights).
    """
    if most <= 1:
        return 1
    rows, steps = int(batch["x"].shape[0]), int(batch["x"].shape[1]) if batch["x"].dim() > 2 else 1
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return most if rows * steps * params >= PARALLEL_WORK else 1


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all processes) through Lightning."""
    L.seed_everything(seed, workers=True, verbose=False)


class _History(L.Callback):
    """Per-epoch metrics, written by rank 0 to ``history.json`` (so ddp_spawn runs keep them)."""

    def __init__(self, path: Path, rows: list[dict[str, float]] | None = None) -> None:
        self.path = path
        self.rows: list[dict[str, float]] = list(rows or [])  # earlier epochs of a resumed run

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._pending = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row: dict[str, float] = {"epoch": float(trainer.current_epoch)}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train_")})
        row.update(getattr(self, "_pending", {}))
        self._pending = {}
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]] + [row]
        if trainer.is_global_zero:
            self.path.write_text(json.dumps(self.rows, indent=1))


class _BestWeights(L.Callback):
    """Keeps the weights of the best validation epoch in ``best.lf`` (rank 0)."""

    def __init__(self, path: Path, monitor: str, metadata: dict[str, Any]) -> None:
        self.path, self.monitor, self.metadata = path, monitor, metadata
        self.mode = "max" if monitor.endswith("acc") else "min"
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        better = value < self.best if self.mode == "min" else value > self.best
        if better or not self.path.exists():
            self.best = value
            if trainer.is_global_zero:
                meta = {**self.metadata, "best_epoch": trainer.current_epoch, f"best_{self.monitor}": value}
                save_model(pl_module.model, self.path, meta)  # type: ignore[arg-type]

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict["best"])


def evaluate_model(
    model: SequenceModel, dataset: SeriesDataset, batch_size: int = 256, pad_to: int | None = None
) -> dict[str, float]:
    """Loss and metrics of ``model`` on a labelled dataset (no Lightning; deterministic)."""
    if dataset.y is None:
        raise ValueError("evaluate needs labels; the dataset has none")
    metrics = make_metrics(model.task, model.output_size if "classification" in model.task else None)
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in make_loader(dataset, batch_size, pad_to=pad_to):
            preds = model(batch["x"], timespans=batch["timespans"], mask=batch["mask"])
            loss, p, t = loss_and_targets(model.task, preds, batch)
            n = int(t.shape[0])
            total += float(loss) * n
            count += n
            metrics.update(p, t)
    out = {"loss": total / max(count, 1)}
    out.update({k: float(v) for k, v in metrics.compute().items()})
    return out


def predict_model(
    model: SequenceModel, dataset: SeriesDataset, batch_size: int = 256, pad_to: int | None = None
) -> list[np.ndarray]:
    """Predictions per sequence: (C,) class probabilities / (O,) values, or per step (T_i, C|O)."""
    outs: list[np.ndarray] = [np.empty(0)] * len(dataset)
    model.eval()
    with torch.no_grad():
        for batch in make_loader(dataset, batch_size, pad_to=pad_to):
            preds = model(batch["x"], timespans=batch["timespans"], mask=batch["mask"])
            if "classification" in model.task:
                preds = preds.softmax(-1)
            for b, i in enumerate(batch["index"].tolist()):
                p = preds[b]
                if model.per_step:
                    p = p[batch["mask"][b]]
                outs[i] = p.numpy()
    return outs


def _write_curve(history: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [int(r["epoch"]) + 1 for r in history]
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        ys = [r.get(key, float("nan")) for r in history]
        ax.plot(epochs, ys, style, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    metric = next((k for k in ("val_acc", "val_mse") if history and k in history[-1]), None)
    if metric:
        ax2 = ax.twinx()
        ax2.plot(epochs, [r.get(metric, float("nan")) for r in history], ":", color="tab:green", label=metric)
        ax2.set_ylabel(metric)
        ax2.legend(loc="center right")
    ax.legend(loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fit(
    config: TrainConfig,
    resume: str | os.PathLike[str] | None = None,
    callbacks: list[L.Callback] | None = None,
) -> dict[str, Any]:
    """Train, pick the best validation epoch, evaluate on val/test, write the outputs; returns the results.

    ``resume``: a Lightning ``.ckpt`` (e.g. ``out_dir/checkpoints/last.ckpt``) to continue from.
    """
    cfg = config
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.trainer.seed)
    data: PreparedData = prepare_data(cfg.data)
    advice = advise(cfg, data)
    for line in advice:
        _log.warning("recommendation: %s", line)
    model = build_model(
        cfg.model.kind,
        data.input_size,
        data.output_size,
        units=cfg.model.units,
        wiring=cfg.model.wiring,
        task=data.task,
        **cfg.model.options,
    )
    model.set_normalization(data.preprocessor.input_mean, data.preprocessor.input_std)
    from ._module import SequenceTask

    n_procs = cfg.trainer.num_nodes * (cfg.trainer.devices if isinstance(cfg.trainer.devices, int) else 1)
    per_process = math.ceil(len(data.train) / max(n_procs, 1))
    module = SequenceTask.from_config(
        model, cfg.trainer, steps_per_epoch=math.ceil(per_process / cfg.trainer.batch_size)
    )
    meta = {**data.metadata(cfg.data), "train_config": cfg.to_dict()}
    best_path = out / "best.lf"
    if best_path.exists() and resume is None:
        best_path.unlink()
    earlier = json.loads((out / "history.json").read_text()) if resume and (out / "history.json").exists() else []
    history = _History(out / "history.json", earlier)
    cbs: list[L.Callback] = [history, _BestWeights(best_path, cfg.trainer.monitor, meta)]
    if cfg.trainer.patience is not None:
        from lightning.pytorch.callbacks import EarlyStopping

        mode = "max" if cfg.trainer.monitor.endswith("acc") else "min"
        cbs.append(EarlyStopping(monitor=cfg.trainer.monitor, patience=cfg.trainer.patience, mode=mode))
    step_ckpt = None
    if cfg.trainer.checkpoints and cfg.trainer.checkpoint_every_n_steps:  # exact mid-epoch resume (_resume.py)
        from ._resume import StepCheckpoint

        step_ckpt = StepCheckpoint(out / "checkpoints" / "last.ckpt", cfg.trainer.checkpoint_every_n_steps)
        cbs.append(step_ckpt)
    elif cfg.trainer.checkpoints:
        from lightning.pytorch.callbacks import ModelCheckpoint

        cbs.append(
            ModelCheckpoint(
                dirpath=out / "checkpoints",
                filename="epoch{epoch}",
                save_last=True,
                save_top_k=0,
                auto_insert_metric_name=False,
            )
        )
    cbs += callbacks or []
    trainer = L.Trainer(
        max_epochs=cfg.trainer.epochs,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        strategy=cfg.trainer.strategy,
        num_nodes=cfg.trainer.num_nodes,
        precision=cfg.trainer.precision,  # type: ignore[arg-type]
        gradient_clip_val=cfg.trainer.gradient_clip,
        deterministic=cfg.trainer.deterministic,
        callbacks=cbs,
        logger=False,
        enable_checkpointing=cfg.trainer.checkpoints,
        enable_progress_bar=cfg.trainer.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        use_distributed_sampler=False,  # ShardedSampler shards the training data itself (same global batches)
        default_root_dir=str(out),
    )
    bs, nw = cfg.trainer.batch_size, cfg.trainer.num_workers
    train_loader = make_loader(
        data.train,
        bs,
        shuffle=cfg.trainer.shuffle,
        seed=cfg.trainer.seed,
        pad_to=data.pad_to,
        num_workers=nw,
        shard=True,
    )
    val_loader = make_loader(data.val, max(bs, 256), pad_to=data.pad_to, num_workers=nw)
    if step_ckpt is not None:
        train_loader = step_ckpt.attach(train_loader)
    old_threads = torch.get_num_threads()
    threads = _threads_for(cfg, model, data)
    torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        trainer.fit(module, train_loader, val_loader, ckpt_path=None if resume is None else str(resume))
        seconds = time.perf_counter() - t0
        if not trainer.is_global_zero:
            return {}
        return _finish(cfg, out, model, data, meta, history, best_path, seconds, threads, advice)
    finally:
        torch.set_num_threads(old_threads)


def _threads_for(cfg: TrainConfig, model: SequenceModel, data: PreparedData) -> int:
    """``trainer.threads`` as a number: ``auto`` by the work per batch (see :func:`choose_threads`)."""
    setting = cfg.trainer.threads
    cores = os.cpu_count() or 1
    most = torch.get_num_threads()
    devices = cfg.trainer.devices
    if cfg.trainer.accelerator == "cpu" and isinstance(devices, int) and devices > 1:
        most = max(1, min(most, cores // devices))  # processes share the cores
    if setting != "auto":
        return int(setting)
    batch = next(iter(make_loader(data.train, cfg.trainer.batch_size, pad_to=data.pad_to)))
    chosen = choose_threads(model, batch, most)
    _log.info("trainer.threads=auto: %d thread(s) (1 or %d, by the work per batch)", chosen, most)
    return chosen


def _finish(
    cfg: TrainConfig,
    out: Path,
    model: SequenceModel,
    data: PreparedData,
    meta: dict[str, Any],
    history: _History,
    best_path: Path,
    seconds: float,
    threads: int,
    advice: list[str] | None = None,
) -> dict[str, Any]:
    """Best (or last) weights, val/test metrics, model.lf, curve.png and results.json."""
    best_meta: dict[str, Any] = {}
    if best_path.exists() and cfg.trainer.restore_best:
        best, best_meta = load_model(best_path)
        model.load_state_dict(best.state_dict())
    model.eval()
    rows = json.loads((out / "history.json").read_text()) if (out / "history.json").exists() else history.rows
    results: dict[str, Any] = {
        "task": data.task,
        "model": cfg.model.kind,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "effective_parameters": count_parameters(model),  # less the wiring's structural zeros
        "epochs_run": len(rows),
        "best_epoch": best_meta.get("best_epoch"),
        "restored": "best" if best_meta else "last",
        "train_seconds": round(seconds, 3),
        "threads": threads,
        "val": evaluate_model(model, data.val, pad_to=data.pad_to),
        "test": evaluate_model(model, data.test, pad_to=data.pad_to),
        "history": rows,
        "config": cfg.to_dict(),
        "advice": list(advice or []),
    }
    meta = {**meta, "metrics": {"val": results["val"], "test": results["test"]}, "best_epoch": results["best_epoch"]}
    results["model_path"] = str(save_model(model, out / "model.lf", meta))
    if rows:
        _write_curve(rows, out / "curve.png", f"{cfg.model.kind} on {cfg.data.source}")
        results["curve_path"] = str(out / "curve.png")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return results


def fit_seeds(config: TrainConfig, seeds: list[int]) -> dict[str, Any]:
    """:func:`fit` once per training seed (``out_dir/seed<k>``), then mean ± std of every test and
    validation metric over the seeds (population std, as the papers report it), written to
    ``out_dir/seeds.json``. The data (``data.seed``) stay the same; only ``trainer.seed`` changes."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers, at least one; got {seeds!r}")
    out = Path(config.out_dir)
    runs = []
    for seed in seeds:
        cfg = config.with_overrides([f"trainer.seed={int(seed)}", f"out_dir={json.dumps(str(out / f'seed{seed}'))}"])
        res = fit(cfg)
        if not res:  # not global rank 0
            continue
        runs.append({"seed": seed, "val": res["val"], "test": res["test"], "num_parameters": res["num_parameters"],
                     "effective_parameters": res["effective_parameters"], "train_seconds": res["train_seconds"],
                     "epochs_run": res["epochs_run"]})  # fmt: skip
    if not runs:
        return {}
    summary: dict[str, dict[str, float]] = {}
    for split in ("val", "test"):
        for key in runs[0][split]:
            vals = [float(r[split][key]) for r in runs]
            summary[f"{split}_{key}"] = {"mean": float(np.mean(vals)), "std": float(np.std(vals))}
    result = {"seeds": list(seeds), "runs": runs, "summary": summary, "config": config.to_dict()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "seeds.json").write_text(json.dumps(result, indent=1))
    return result
