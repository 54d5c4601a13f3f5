"""The `hospital scheduler` commands: a thin layer over the library API."""

from __future__ import annotations

import typer

app = typer.Typer(help="scheduler stage.", no_args_is_help=True)
