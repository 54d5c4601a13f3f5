"""The `hospital batch` commands and `hospital export`: a thin layer over the library API."""

from __future__ import annotations

import signal
import threading
from datetime import date, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from hospital.errors import HospitalError
from hospital.settings import get_settings

if TYPE_CHECKING:
    from hospital.batch.ingest import FileResult, IngestReport

app = typer.Typer(
    help="Batch path: daily CSV drops in lake/batch, loaded with COPY.", no_args_is_help=True
)
console = Console()


def _parse_day(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()  # noqa: DTZ007 - a calendar date
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a YYYY-MM-DD date") from None


def _fail(exc: HospitalError) -> typer.Exit:
    console.print(f"[red]error:[/] {exc}")
    return typer.Exit(2)


@app.command("write")
def write_command(
    date_: Annotated[str | None, typer.Option("--date", help="First day YYYY-MM-DD.")] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="Number of days.")] = 1,
    initial: Annotated[
        bool, typer.Option("--initial", help="Write the initial load (lake/batch/initial).")
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    people: Annotated[int | None, typer.Option("--people")] = None,
) -> None:
    """Write the initial load and/or daily drops lake/batch/date=YYYY-MM-DD/ (atomically)."""
    from hospital.batch import writer
    from hospital.simulator import api
    from hospital.simulator.config import SimConfig

    if not initial and date_ is None:
        raise typer.BadParameter("give --date D (and --days N) or --initial")
    settings = get_settings()
    overrides: dict[str, object] = {}
    if seed is not None:
        overrides["seed"] = seed
    if people is not None:
        overrides["num_people"] = people
    try:
        config = SimConfig.from_settings(settings, **overrides)
        with console.status("loading the population"):
            pop = api.build_population(config, api.seeds_dir(settings))
        if initial:
            console.print(f"initial load -> {writer.write_initial(settings, config, pop)}")
        if date_ is not None:
            writer.write_days(
                settings, config, pop, _parse_day(date_), days, lambda p: console.print(f"-> {p}")
            )
    except HospitalError as exc:
        raise _fail(exc) from None


def _print_file(result: FileResult) -> None:
    if result.status == "loaded":
        console.print(
            f"  loaded   {result.path}: {result.rows_loaded:,} rows, "
            f"{result.rows_rejected:,} quarantined ({result.seconds:.2f} s)"
        )
    elif result.status != "skipped":
        console.print(f"  [red]{result.status:<8}[/] {result.error}")


def _summary(report: IngestReport) -> None:
    table = Table(title="batch ingest")
    for col in ("files loaded", "skipped", "rejected", "rows loaded", "rows quarantined"):
        table.add_column(col, justify="right")
    table.add_row(
        str(report.loaded),
        str(report.skipped),
        str(report.rejected),
        f"{report.rows_loaded:,}",
        f"{report.rows_rejected:,}",
    )
    console.print(table)


@app.command("ingest")
def ingest_command(
    watch: Annotated[bool, typer.Option("--watch", help="Keep ingesting new drops.")] = False,
) -> None:
    """Load every new file of lake/batch (exit code 1 when a file was rejected)."""
    from hospital.batch import ingest

    settings = get_settings()
    try:
        if watch:
            stop = threading.Event()

            def _stop(signum: int, frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            report = ingest.watch(settings, stop, _print_file)
        else:
            report = ingest.ingest_pending(settings, _print_file)
    except HospitalError as exc:
        raise _fail(exc) from None
    _summary(report)
    if report.rejected and not watch:
        raise typer.Exit(1)


def export_command(
    table: Annotated[str, typer.Argument(help="Hospital table, e.g. admissions or fhir.patient")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", help="Output file.")] = None,
    where: Annotated[
        str | None, typer.Option("--where", help="SQL predicate, e.g. \"status = 'admitted'\"")
    ] = None,
) -> None:
    """Export a hospital table to CSV or Parquet (streamed; prints the row count)."""
    from hospital.batch import export

    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter(f"--format must be csv or parquet, not {fmt!r}")
    target = out or Path(f"{table}.{fmt}")
    try:
        result = export.export_table(get_settings(), table, fmt, target, where)  # type: ignore[arg-type]
    except HospitalError as exc:
        raise _fail(exc) from None
    console.print(f"{result.rows:,} rows of {result.table} -> {result.path}")
