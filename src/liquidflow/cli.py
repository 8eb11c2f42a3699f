"""The ``liquidflow`` command line.

Each area of the library registers its own subcommands from ``liquidflow/commands/<area>.py``
(a module with ``register(app)``), so the command line grows with the library and stays one app.
Every subcommand is a plain typed function; ``--help`` comes from its signature and docstring.
"""

from __future__ import annotations

import importlib
import sys

AREAS = ("demo", "train", "reproduce", "tune", "maintenance", "export", "inspect", "bench", "robustness")


def build_app():  # type: ignore[no-untyped-def]
    try:
        import typer
    except ImportError as e:  # pragma: no cover - depends on the install
        raise SystemExit("the liquidflow command needs typer: pip install 'liquidflow[cli]'") from e
    app = typer.Typer(
        name="liquidflow",
        help="Liquid neural networks for irregular time series: train, evaluate, inspect, export.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root() -> None:
        """Liquid neural networks for irregular time series: train, evaluate, inspect, export."""

    for area in AREAS:
        name = f"liquidflow.commands.{area}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # that area is not part of this build
            raise
        module.register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    app = build_app()
    app(args=sys.argv[1:] if argv is None else argv, prog_name="liquidflow")


if __name__ == "__main__":  # pragma: no cover
    main()
