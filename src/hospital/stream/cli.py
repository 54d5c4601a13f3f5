"""The `hospital stream` commands: a thin layer over the library API."""

from __future__ import annotations

import json
import signal
import threading
from datetime import date
from typing import Annotated

import typer
from rich.console import Console

from hospital.settings import get_settings

app = typer.Typer(
    help="Real-time bed events: Kafka -> Delta lake + hospital DB.", no_args_is_help=True
)
console = Console()


def _stop_on_signals() -> threading.Event:
    """SIGTERM/SIGINT finish the current micro-batch, then stop (the scheduler's way to stop)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@app.command("produce")
def produce_command(
    day: Annotated[str, typer.Option("--date", help="First simulated day (YYYY-MM-DD).")],
    days: Annotated[int, typer.Option("--days", min=1, help="How many days.")] = 1,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0,
            help="Events/s for load tests (0: flat out). Default: "
            "one day per SECONDS_PER_SIM_DAY, ticks every STREAM_CADENCE_MINUTES.",
        ),
    ] = None,
) -> None:
    """Publish the simulated days' real-time events to Kafka, tick by tick."""
    from hospital.stream.producer import produce_days

    settings = get_settings()
    report = produce_days(settings, date.fromisoformat(day), days, rate, _stop_on_signals())
    console.print(
        f"published {report.events} events in {report.ticks} ticks ({report.days} day(s)) "
        f"to {settings.stream_topic} in {report.seconds:.1f}s"
    )


@app.command("consume")
def consume_command(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop once caught up and quiet.")
    ] = False,
) -> None:
    """Run the stream processor (lake + DB sinks, exactly once) until stopped."""
    from hospital.stream.consumer import run

    report = run(get_settings(), until_idle=until_idle, stop=_stop_on_signals())
    console.print(
        f"{report.messages} messages in {report.batches} batches: {report.lake_rows} lake rows, "
        f"{report.db_rows} DB rows, {report.quarantined} quarantined ({report.seconds:.1f}s)"
    )


@app.command("compact")
def compact_command(
    retention_hours: Annotated[
        int | None,
        typer.Option("--retention-hours", min=0, help="Default: STREAM_VACUUM_RETENTION_HOURS."),
    ] = None,
) -> None:
    """Compact the stream's Delta table (small files per date) and vacuum old files."""
    from hospital.stream.lake import compact

    report = compact(get_settings(), retention_hours)
    console.print(json.dumps(report.as_dict()))


def reconcile_paths_command(
    day: Annotated[str | None, typer.Option("--date", help="One day (YYYY-MM-DD).")] = None,
    all_days: Annotated[bool, typer.Option("--all", help="Every day either path holds.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Stream (lake + DB) vs batch per day and kind; exit 1 on a difference not filled in."""
    from hospital.stream.reconcile import reconcile_paths

    if day and all_days:
        raise typer.BadParameter("give --date or --all, not both")
    dates = [date.fromisoformat(day)] if day else None
    result = reconcile_paths(get_settings(), dates)
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        wide = Console(width=max(console.width, 150))  # eleven columns: never squeeze them
        wide.print(result.render())
        wide.print(
            f"filled in by batch: {result.filled_in_by_batch}; "
            + (
                "[green]clean[/]"
                if result.clean
                else "[red]differences the batch did not fill in[/]"
            )
        )
    if not result.clean:
        raise typer.Exit(1)
