"""The `hospital cdc` commands: a thin layer over the library API."""

from __future__ import annotations

import typer

app = typer.Typer(help="cdc stage.", no_args_is_help=True)
