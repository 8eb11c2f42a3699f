"""``liquidflow demo`` (= ``make demo``): predictive maintenance on a simulated fleet, end to end.

Simulates a fleet of machines with duty-cycled vibration sensors, trains the liquid model and the
baselines on the same machines, prints one table (metric rows, one column per model) and writes a
run folder: table, metrics and figure data as JSON, figures, the trained liquid model, and (when
liquidflow.export and gcc are present) the liquid model exported to C with a check that the C risk
scores equal the Python ones.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer


def run_demo(
    out: Path | None = None,
    machines: int = 100,
    days: float = 60.0,
    epochs: int | None = None,
    units: int | None = None,
    seed: int = 0,
    liquid: str = "ltc",
    baselines: tuple[str, ...] = ("lstm", "gru", "transformer"),
    budget: float = 0.5,
    c_export: bool = True,
    progress: bool = True,
    echo: Any = print,
    horizon_days: float = 14.0,
    seeds: int = 5,
    recipe: str = "tuned",
) -> dict[str, Any]:
    """Run the demo; returns a summary dict (also written to ``<out>/metrics.json``)."""
    import torch

    from liquidflow.maintenance import (
        NAMES,
        TrainConfig,
        check_c_export,
        pick_machines,
        plot_risk,
        risk_figure_data,
        run_benchmark,
        save_risk_model,
        simulate_fleet,
        tuned_recipes,
        wiring_figure,
    )

    t_start = time.perf_counter()
    # the models are tiny: one thread per process is fastest (thread hand-offs cost more than the math)
    torch.set_num_threads(1)
    run_dir = Path(out) if out is not None else Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    steps = 6

    echo(f"[1/{steps}] Simulating {machines} machines over {days:g} days (seed {seed})...")
    fleet = simulate_fleet(n_machines=machines, days=days, seed=seed, horizon_days=horizon_days)
    df = fleet.readings
    n_fail = int(fleet.machines["fails_in_run"].sum())
    echo(
        f"      {len(df):,} readings; {n_fail} machines fail during the run "
        f"({(fleet.machines['fault_type'] == 'bearing').sum()} bearing, "
        f"{(fleet.machines['fault_type'] == 'imbalance').sum()} imbalance faults in all)"
    )
    df.to_parquet(run_dir / "fleet.parquet", index=False)

    echo(f"[2/{steps}] Training the liquid model ({NAMES[liquid]}) and baselines ({', '.join(baselines)})...")
    cfg = TrainConfig(epochs=epochs or 20, units=units or 16, seed=seed)
    recipes = tuned_recipes(seed=seed, epochs=epochs, units=units) if recipe == "tuned" else None
    bench = run_benchmark(
        df,
        liquid=liquid,
        baselines=baselines,
        budget=budget,
        config=cfg,
        recipes=recipes,
        train_seeds=[seed + k for k in range(seeds)] if seeds > 1 else None,
        seed=seed,
        progress=progress,
        log=lambda s: echo("      " + s),
    )

    echo(
        f"[3/{steps}] Results on {len(bench.test.ids)} held-out machines "
        f"(H = {bench.horizon_days:g} days, alarms at {budget:g} false alarms per machine-month):"
    )
    table = bench.table_text()
    echo("")
    echo(table)
    echo("")

    echo(f"[4/{steps}] Figures...")
    chosen = pick_machines(bench, 4)
    risk_data = risk_figure_data(bench, chosen)
    plot_risk(risk_data, liquid, run_dir / "risk_over_time.png")
    wiring_data = wiring_figure(bench, liquid, run_dir / "wiring.png")

    echo(f"[5/{steps}] Saving the liquid model...")
    model = bench.models[liquid]
    thr = bench.val_thresholds.get(liquid, 0.5)
    save_risk_model(model, str(run_dir / "liquid_model.lf"), extra={"threshold": thr, "budget": budget})

    c_result: dict[str, Any] = {"ok": False, "message": "skipped: --no-c-export"}
    if c_export:
        echo(f"[6/{steps}] Exporting the liquid model to C and comparing with Python...")
        assert bench.test.y is not None
        failing = [i for i in range(len(bench.test.ids)) if bench.test.y[i].any()] or [0]
        check = check_c_export(model, bench.test, failing[0], run_dir / "c")
        c_result = {
            "ok": check.ok,
            "message": check.message,
            "max_abs_diff": check.max_abs_diff,
            "readings": check.readings,
            "flash_bytes": check.flash_bytes,
        }
    else:
        echo(f"[6/{steps}] C export skipped (--no-c-export)")
    echo("      " + c_result["message"])

    elapsed = time.perf_counter() - t_start
    summary = {
        "run_dir": str(run_dir),
        "seconds": elapsed,
        "fleet": fleet.config.to_dict(),
        "train_config": cfg.to_dict(),
        "recipe": recipe,
        "recipes": {k: v.to_dict() for k, v in (recipes or {}).items()},
        "budget": budget,
        "horizon_days": bench.horizon_days,
        "split": {k: [bench_id for bench_id in v] for k, v in bench.split.items()},
        "amplitude_alarm": {"feature": bench.alarm.feature, "span": bench.alarm.span},
        "metrics": {NAMES.get(k, k): v for k, v in bench.metrics.items()},
        "table": bench.table().to_dict(),
        "c_export": c_result,
        "liquid_alarm_threshold": thr,
    }
    (run_dir / "table.txt").write_text(table + "\n")
    (run_dir / "table.md").write_text(bench.table_markdown() + "\n")
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=1, default=str))
    figures = {"risk_over_time": risk_data, "wiring": wiring_data, "table": bench.table().to_dict()}
    (run_dir / "figures.json").write_text(json.dumps(figures, default=float))
    echo(
        f"Done in {elapsed:.0f} s. Run folder: {run_dir}/ (table.txt, metrics.json, figures.json, "
        "risk_over_time.png, wiring.png, liquid_model.lf, fleet.parquet)"
    )
    echo(f"Try: liquidflow maintenance monitor --model {run_dir}/liquid_model.lf < readings.csv")
    return summary


def demo(
    out: Annotated[Path | None, typer.Option("--out", help="run folder (default: runs/demo-<timestamp>/)")] = None,
    machines: Annotated[int, typer.Option(help="machines in the simulated fleet")] = 100,
    days: Annotated[float, typer.Option(help="days simulated")] = 60.0,
    epochs: Annotated[
        int | None, typer.Option(help="training epochs per model (default: each recipe's; plain: 20)")
    ] = None,
    units: Annotated[
        int | None, typer.Option(help="liquid neurons (AutoNCP / NCP; default: the recipe's; plain: 16)")
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed (fleet, split, initialisation)")] = 0,
    liquid: Annotated[
        str, typer.Option(help="liquid model: ltc (LTC + NCP, the best tuned liquid model) or cfc (CfC + AutoNCP)")
    ] = "ltc",
    baselines: Annotated[
        str, typer.Option(help="comma-separated baselines (lstm, gru, transformer)")
    ] = "lstm,gru,transformer",
    budget: Annotated[
        float, typer.Option(help="false alarms allowed per machine-month when setting alarm thresholds")
    ] = 0.5,
    c_export: Annotated[bool, typer.Option(help="export the liquid model to C and check it against Python")] = True,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    horizon_days: Annotated[
        float, typer.Option("--horizon-days", help="H: predict failures within H days (the alarm's lead-time goal)")
    ] = 14.0,
    seeds: Annotated[
        int, typer.Option(help="training seeds per model (same machines): the table shows mean ± std")
    ] = 5,
    recipe: Annotated[
        str,
        typer.Option(
            help="tuned: each family's recipe from benchmarks/maintenance_tune.py (docs/evidence.md); "
            "plain: one recipe for all (epochs 20, lr 0.01)"
        ),
    ] = "tuned",
) -> None:
    """Predictive maintenance on a simulated fleet: the liquid model against an amplitude alarm,
    LSTM, GRU and Transformer; prints one table and writes figures and JSON into a run folder."""
    names = tuple(b.strip() for b in baselines.split(",") if b.strip())
    allowed = ("lstm", "gru", "transformer")
    bad = [b for b in names if b not in allowed]
    if bad:
        raise typer.BadParameter(f"unknown baselines {bad}; allowed: {', '.join(allowed)}", param_hint="--baselines")
    if liquid not in ("cfc", "ltc"):
        raise typer.BadParameter(f"liquid must be cfc or ltc; got {liquid!r}", param_hint="--liquid")
    if recipe not in ("tuned", "plain"):
        raise typer.BadParameter(f"recipe must be tuned or plain; got {recipe!r}", param_hint="--recipe")
    if seeds < 1:
        raise typer.BadParameter(f"seeds must be >= 1; got {seeds}", param_hint="--seeds")
    if not horizon_days > 0:
        raise typer.BadParameter(f"horizon must be > 0 days; got {horizon_days}", param_hint="--horizon-days")
    run_demo(
        out=out,
        machines=machines,
        days=days,
        epochs=epochs,
        units=units,
        seed=seed,
        liquid=liquid,
        baselines=names,
        budget=budget,
        c_export=c_export,
        progress=progress,
        echo=typer.echo,
        horizon_days=horizon_days,
        seeds=seeds,
        recipe=recipe,
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
