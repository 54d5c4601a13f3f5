"""The `hospital cdc` commands: a thin layer over the library API."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hospital.settings import get_settings

app = typer.Typer(
    help="Change data capture: EHR -> Debezium -> Kafka -> hospital mirrors.", no_args_is_help=True
)
console = Console()


@app.command("register")
def register_command(
    sink: Annotated[
        str,
        typer.Option("--sink", help="applier (source only) or jdbc (also Debezium's JDBC sink)"),
    ] = "applier",
) -> None:
    """Create or update the Debezium source connector (idempotent)."""
    from hospital.cdc import connector

    if sink not in ("applier", "jdbc"):
        raise typer.BadParameter("--sink is applier or jdbc")
    states = connector.register(get_settings(), sink=sink)  # type: ignore[arg-type]
    for name, state in states.items():
        console.print(f"  {name}: {state.get('connector', {}).get('state')}")


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Connectors and tasks, the slot's retained WAL, last event per table, lag, quarantine."""
    from hospital.cdc.status import status

    st = status(get_settings())
    if as_json:
        print(json.dumps(st.as_dict(), indent=2, default=str))
        return
    table = Table(title="CDC")
    table.add_column("what")
    table.add_column("value")
    for name, c in st.connectors.items():
        table.add_row(f"connector {name}", f"{c.get('state')} tasks={c.get('tasks')}")
    if st.slot:
        table.add_row(
            f"slot {st.slot['name']}",
            f"active={st.slot['active']} retained WAL={st.slot['retained_wal_bytes']:,} bytes",
        )
    else:
        table.add_row("slot", "[yellow]none[/]")
    for t, when in st.last_event.items():
        table.add_row(f"last event {t}", str(when or "-"))
    for group, lag in st.lag.items():
        table.add_row(f"lag {group}", f"{lag:,} messages")
    table.add_row("quarantined", f"{st.quarantined:,}")
    console.print(table)


@app.command("reset")
def reset_command(
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: really remove it all.")] = False,
    mirrors: Annotated[
        bool, typer.Option("--mirrors", help="Also empty the mirror and JDBC-sink tables.")
    ] = False,
) -> None:
    """Remove connectors, their offsets, the slot, the topics and the applier offsets."""
    from hospital.cdc import connector

    if not yes:
        console.print("reset removes the connectors, slot, topics and offsets: pass --yes")
        raise typer.Exit(1)
    connector.reset(get_settings(), mirrors=mirrors)
    console.print("CDC reset")


@app.command("apply")
def apply_command(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop once every topic is consumed.")
    ] = False,
) -> None:
    """Run the applier (a long-running worker; SIGTERM stops it after the current batch)."""
    from hospital.cdc import applier

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    report = applier.run(get_settings(), until_idle=until_idle, stop=stop)
    console.print(json.dumps(report.as_dict()))


def reconcile_cdc_command(
    schema: Annotated[
        str, typer.Option("--schema", help="public (the applier) or cdc_jdbc (the JDBC sink)")
    ] = "public",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Compare now, without waiting to catch up.")
    ] = False,
) -> None:
    """EHR vs mirror: counts and content checksums per table (exit 1 on any difference)."""
    from hospital.cdc.reconcile import reconcile_cdc

    result = reconcile_cdc(get_settings(), schema=schema, wait=not no_wait)
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        console.print(result.render())
    if not result.clean:
        raise typer.Exit(1)
