"""``liquidflow robustness``: the sampling-rate and perturbation experiment (docs/robustness.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def robustness(
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (table.md, results.json, plot)")] = Path(
        "runs/robustness"
    ),
    models: Annotated[str, typer.Option(help="comma-separated kinds among ltc, cfc, lstm, gru")] = "ltc,cfc,lstm,gru",
    n_train: Annotated[int, typer.Option(help="training sequences")] = 600,
    n_test: Annotated[int, typer.Option(help="test sequences")] = 300,
    rate: Annotated[float, typer.Option(help="training sampling rate in Hz")] = 10.0,
    duration: Annotated[float, typer.Option(help="seconds observed per sequence")] = 10.0,
    units: Annotated[int, typer.Option(help="hidden units per model")] = 16,
    epochs: Annotated[int, typer.Option(help="training epochs")] = 20,
    lr: Annotated[float | None, typer.Option(help="learning rate (default: per model kind)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    seeds: Annotated[
        str | None,
        typer.Option(help="comma-separated seeds, e.g. 0,1,2: one run per seed, table of mean ± std (replaces --seed)"),
    ] = None,
    threads: Annotated[int, typer.Option(help="torch CPU threads (small models run fastest on one)")] = 1,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Train models on damped oscillators at RATE Hz, evaluate at 0.1x/10x the rate and under noise,
    dropped samples, jitter and drift; print the markdown table.

    With --seeds the experiment runs once per seed and the table, JSON and plot give the mean and
    the standard deviation over seeds (the JSON keeps the per-seed values)."""
    import torch

    from liquidflow.robustness import KIND_OPTIONS, run_experiment

    kinds = tuple(k.strip().lower() for k in models.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KIND_OPTIONS]
    if not kinds or unknown:
        raise typer.BadParameter(f"models must be a comma-separated subset of {sorted(KIND_OPTIONS)}; got {models!r}")
    if threads < 1:
        raise typer.BadParameter(f"threads must be >= 1; got {threads}", param_hint="--threads")
    seed_list = _parse_seeds(seeds) if seeds is not None else None
    if seed_list is not None and seed != 0:
        raise typer.BadParameter(f"pass --seed or --seeds, not both; got --seed {seed} --seeds {seeds}")
    torch.set_num_threads(threads)
    table = run_experiment(
        out, kinds, n_train, n_test, rate, duration, units, epochs, lr, seed, progress, seeds=seed_list
    )
    typer.echo(table.to_markdown())
    typer.echo(f"\nwrote {out / 'table.md'}, {out / 'results.json'}, {out / 'robustness.png'}")


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise typer.BadParameter(
            f"seeds must be at least 2 distinct comma-separated integers, e.g. 0,1,2; got {text!r}",
            param_hint="--seeds",
        )
    return seeds


def register(app: typer.Typer) -> None:
    app.command("robustness")(robustness)
