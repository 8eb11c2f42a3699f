"""``liquidflow reproduce TASK``: a paper's protocol with its published hyper-parameters, beside its figures."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise typer.BadParameter(f"{name} must be comma-separated integers; got {text!r}") from e
    if not values:
        raise typer.BadParameter(f"{name} is empty; got {text!r}")
    return values


def reproduce(
    task: Annotated[str, typer.Argument(help="xor or walker2d")],
    models: Annotated[str | None, typer.Option(help="comma-separated models (default: the task's list)")] = None,
    seeds: Annotated[str, typer.Option(help="comma-separated training seeds")] = "0,1,2",
    epochs: Annotated[int | None, typer.Option(help="epochs per run (default: the paper's)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="data folder (walker2d: the rollout_*.npy files)")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default runs/reproduce-TASK)")] = None,
    threads: Annotated[str, typer.Option(help="torch threads per run: a number, or auto")] = "auto",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="config override for every run, section.key=value")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    merge: Annotated[
        list[Path] | None, typer.Option(help="merge these reproduce folders' results into --out instead of running")
    ] = None,
) -> None:
    """Run a paper's protocol (its data, recipes and epochs) for several models and seeds; writes
    results.json (per model and seed) and results.md (ours beside the paper's figures) to --out."""
    from liquidflow.training.reproduce import TASKS, get_task
    from liquidflow.training.reproduce import reproduce as run

    if task not in TASKS:
        raise typer.BadParameter(f"unknown task {task!r}; choose from {sorted(TASKS)}", param_hint="TASK")
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if threads != "auto" and not threads.isdigit():
        raise typer.BadParameter(f"--threads must be a positive integer or auto; got {threads!r}")
    th: int | str = int(threads) if threads.isdigit() else "auto"
    command = "liquidflow " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    t = get_task(task)
    digits = 2 if t.scale == 100.0 else 4

    def report(row: dict[str, object]) -> None:
        value = row[t.metric_name]
        assert isinstance(value, float)
        typer.echo(f"{row['model']} seed {row['seed']}: {t.metric_name} {value:.{digits}f} "
                   f"({row['parameters']} parameters, {row['epochs']} epochs, {row['seconds']} s)")  # fmt: skip

    if merge:
        from liquidflow.training.reproduce import merge as merge_runs

        if out is None:
            raise typer.BadParameter("--merge needs --out (the folder for the merged results)")
        try:
            merged = merge_runs(task, list(merge), out)
        except (ValueError, FileNotFoundError) as e:
            typer.echo(f"liquidflow reproduce: {e}", err=True)
            raise typer.Exit(2) from None
        from liquidflow.training.reproduce import markdown as table

        typer.echo(table(t, merged["summary"], merged["command"]))
        return
    try:
        result = run(
            task,
            names,
            _ints(seeds, "--seeds"),
            epochs,
            data_dir,
            out,
            th,
            list(set_ or []),
            progress,
            command,
            on_run=report,
        )
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"liquidflow reproduce: {e}", err=True)
        raise typer.Exit(2) from None
    from liquidflow.training.reproduce import markdown

    typer.echo(markdown(t, result["summary"], command))


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce)
