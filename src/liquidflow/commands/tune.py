"""``liquidflow tune``: hyper-parameter search with Optuna over a training config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def tune(
    config: Annotated[Path, typer.Argument(help="training config (YAML/JSON), as for liquidflow train")],
    trials: Annotated[int, typer.Option(help="Optuna trials (one training run each, pruned below the median)")] = 30,
    space: Annotated[Path | None, typer.Option(help="search space file (YAML/JSON); default: built in")] = None,
    metric: Annotated[str, typer.Option(help="validation metric to optimise (default: trainer.monitor)")] = "",
    seeds: Annotated[str, typer.Option(help="retrain the best config with these seeds (empty: skip)")] = "0,1,2",
    storage: Annotated[str, typer.Option(help="Optuna storage URL (e.g. sqlite:///study.db), shared by workers")] = "",
    study: Annotated[str, typer.Option(help="study name (workers with the same name share the study)")] = "",
    timeout: Annotated[float, typer.Option(help="stop starting trials after this many seconds (0: none)")] = 0.0,
    out: Annotated[Path | None, typer.Option(help="output folder (default: <out_dir>/tune)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="config override section.key=value")] = None,
) -> None:
    """Search hyper-parameters with Optuna; write tune.md, tune.json and the best recipe as best.yaml."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        typer.echo("liquidflow tune needs Optuna: pip install 'liquidflow[tune]'", err=True)
        raise typer.Exit(2) from None
    from liquidflow import tune as t
    from liquidflow.training import TrainConfig

    try:
        cfg = TrainConfig.from_file(config).with_overrides(list(set_ or []))
        sp = t.load_space(space) if space else None
        seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
    except (OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    try:
        result = t.tune(
            cfg, trials, sp, metric or None, seed_list, storage or None, study or None, timeout or None, out
        )
    except (ValueError, RuntimeError) as e:  # bad options, or no trial completed: one line, no traceback
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(t.markdown(result))
    typer.echo(f"wrote {Path(result.out_dir) / 'tune.md'}, tune.json and best.yaml", err=True)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)
