"""``liquidflow bench``: speed and memory side by side with ncps and torch's LSTM/GRU."""

from __future__ import annotations

import typer


def bench(
    quick: bool = typer.Option(False, help="tiny sizes and few repeats: a sanity run, not a measurement"),
    threads: int = typer.Option(2, help="torch threads (the issue's targets are for 2; try 1 on a busy machine)"),
    out: str = typer.Option("benchmarks/results", help="folder for <name>.json and <name>.md"),
    name: str = typer.Option("", help="file stem (default: latest, or quick with --quick)"),
    sections: str = typer.Option("train,infer,stream,configs,batch,scaling,memory", help="comma-separated subset"),
    models: str = typer.Option("cfc64,ltc64,cfc_ncp,ltc_ncp", help="comma-separated subset"),
    repeats: int = typer.Option(0, help="timed repeats per case (0: the default, 7; 2 with --quick)"),
    scaling_peers: bool = typer.Option(True, help="also time ncps in the T = 10..10000 and batch 1..1024 sweeps"),
    configs: str = typer.Option("", help="comma-separated rows of the configs section (default: all)"),
    doc: str = typer.Option("", help="write the configs/batch tables into this markdown file's bench:configs block"),
) -> None:
    """Time liquidflow, ncps 1.0.1 and nn.LSTM/GRU on the same machine; write JSON and markdown."""
    from liquidflow import bench as b

    argv = ["--threads", str(threads), "--out", out, "--sections", *sections.split(","), "--models", *models.split(",")]
    if quick:
        argv.append("--quick")
    if name:
        argv += ["--name", name]
    if configs:
        argv += ["--configs", *configs.split(",")]
    if doc:
        argv += ["--doc", doc]
    if repeats:
        argv += ["--repeats", str(repeats)]
    if not scaling_peers:
        argv.append("--no-scaling-peers")
    raise typer.Exit(b.main(argv))


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
