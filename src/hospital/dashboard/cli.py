"""The `hospital dashboard` commands: a thin layer over the library API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from hospital.settings import get_settings

console = Console()
app = typer.Typer(
    help="Dashboard with charts (FastAPI, read-only) and pgAdmin 4.",
    invoke_without_command=True,
)


@app.callback()
def dashboard(
    ctx: typer.Context,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default DASHBOARD_PORT, 8050).")
    ] = None,
    run_in_background: Annotated[
        bool, typer.Option("--background", help="Start detached; stop: hospital dashboard stop.")
    ] = False,
) -> None:
    """Serve the dashboard on HOSPITAL_BIND_HOST:DASHBOARD_PORT (foreground unless --background)."""
    if ctx.invoked_subcommand is not None:
        return
    from hospital.dashboard import server

    settings = get_settings()
    if run_in_background:
        address = server.start_background(settings, port=port)
        console.print(f"dashboard: {address}  (stop: hospital dashboard stop)")
        return
    console.print(f"dashboard: {server.url(settings, port)}  (Ctrl-C to stop)")
    server.serve(settings, port=port)


@app.command("stop")
def stop() -> None:
    """Stop the background dashboard of this stack."""
    from hospital.dashboard import server

    stopped = server.stop(get_settings())
    console.print("dashboard stopped" if stopped else "dashboard was not running")


@app.command("pgadmin")
def pgadmin(
    stop: Annotated[bool, typer.Option("--stop", help="Stop pgAdmin instead.")] = False,
) -> None:
    """Install (once), configure and start pgAdmin 4 with the EHR and hospital servers."""
    from hospital.dashboard import pgadmin as pga

    settings = get_settings()
    if stop:
        console.print(
            "pgAdmin stopped" if pga.stop_pgadmin(settings) else "pgAdmin was not running"
        )
        return
    with console.status("starting pgAdmin 4 (the first start installs it from PyPI)"):
        address = pga.ensure_pgadmin(settings)
    console.print(f"pgAdmin 4: {address}  user {settings.pgadmin_email}")
    console.print("stop: hospital dashboard pgadmin --stop (or hospital stack down)")
