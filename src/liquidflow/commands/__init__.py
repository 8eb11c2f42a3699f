"""Subcommands of the ``liquidflow`` command line, one module per area (see liquidflow.cli)."""
