"""The ``hospital`` command: a thin layer over the library API."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from hospital.batch import cli as batch_cli
from hospital.cdc import cli as cdc_cli
from hospital.dashboard import cli as dashboard_cli
from hospital.errors import HospitalError
from hospital.fhir import cli as fhir_cli
from hospital.scheduler import cli as scheduler_cli
from hospital.settings import get_settings
from hospital.simulator import cli as simulator_cli
from hospital.stream import cli as stream_cli

if TYPE_CHECKING:
    from hospital.stack import Stack

console = Console()
app = typer.Typer(
    help="Hospital data platform: a simulated hospital, CDC, stream, batch and FHIR pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(
    help="Start, stop and inspect the local stack (PostgreSQL, Kafka, Connect).",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Database roles and schema migrations.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(db_app, name="db")


app.add_typer(simulator_cli.app, name="simulate")
app.add_typer(fhir_cli.app, name="fhir")
app.add_typer(cdc_cli.app, name="cdc")
app.add_typer(stream_cli.app, name="stream")
app.add_typer(batch_cli.app, name="batch")
app.command("export")(batch_cli.export_command)
app.add_typer(dashboard_cli.app, name="dashboard")
app.command("run")(scheduler_cli.run_command)
app.command("report")(scheduler_cli.report_command)
# `hospital reconcile cdc|paths`: each stage registers its check here.
reconcile_app = typer.Typer(help="Prove that sources and targets agree.", no_args_is_help=True)
app.add_typer(reconcile_app, name="reconcile")
reconcile_app.command("cdc")(cdc_cli.reconcile_cdc_command)
reconcile_app.command("paths")(stream_cli.reconcile_paths_command)


def _stack() -> Stack:
    from hospital.stack import Stack

    return Stack(get_settings())


def _print_status(as_json: bool) -> bool:
    statuses = _stack().status()
    if as_json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        table = Table(title="hospital stack")
        for column in ("service", "pid", "port", "health", "address"):
            table.add_column(column)
        for s in statuses:
            health = (
                "[green]running[/] (background)"
                if s.kind == "background"
                else "[green]healthy[/]"
                if s.healthy
                else ("[yellow]running, unhealthy[/]" if s.running else "[red]down[/]")
            )
            pid = "external" if s.external else (str(s.pid) if s.pid else "-")
            table.add_row(s.name, pid, str(s.port or "-"), health, s.address)
        console.print(table)
    return all(s.healthy for s in statuses)


@stack_app.command("up")
def stack_up() -> None:
    """Start (or repair) every service and apply migrations. A no-op when all are healthy."""
    with console.status("starting the stack") as spinner:

        def report(service: str, message: str) -> None:
            spinner.update(f"[bold]{service}[/]: {message}")

        results = _stack().up(report=report)
    for r in results:
        console.print(f"  {r.service:<9} {r.action:<16} {r.seconds:6.1f}s")
    _print_status(as_json=False)


@stack_app.command("down")
def stack_down() -> None:
    """Stop exactly the processes the stack started."""
    for r in _stack().down():
        console.print(f"  {r.service:<9} {r.action:<16} {r.seconds:6.1f}s")


@stack_app.command("status")
def stack_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Each service with pid, port and health (exit code 1 when any is unhealthy)."""
    if not _print_status(as_json):
        raise typer.Exit(1)


@stack_app.command("logs")
def stack_logs(
    service: Annotated[str, typer.Argument(help="postgres, kafka or connect")],
    lines: Annotated[int, typer.Option("--lines", "-n")] = 80,
) -> None:
    """The last lines of a service's log."""
    print(_stack().logs(service, lines))


@stack_app.command("setup")
def stack_setup() -> None:
    """Fetch the JVM jars (Kafka, Connect, Debezium) with Maven, once."""
    from hospital.stack import jvm

    layout = jvm.ensure_resolved(get_settings())
    console.print(f"jars in {layout.lib}, Connect plugins in {layout.plugins}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create roles/databases (local stack) and apply every migration."""
    _stack().migrate()
    console.print("migrations applied")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "base",
) -> None:
    """Take both databases down to REVISION (default: empty)."""
    from hospital.warehouse import migrate

    migrate.downgrade(get_settings(), revision=revision)
    console.print(f"downgraded to {revision}")


def main() -> None:
    try:
        app()
    except HospitalError as exc:
        console.print(f"[red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
