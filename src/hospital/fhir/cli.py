"""``hospital fhir …``: thin wrappers over the FHIR library API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hospital.errors import HospitalError
from hospital.settings import get_settings

console = Console()
app = typer.Typer(
    help="FHIR path: SQL-on-FHIR conformance, ingestion of FHIR R4 bundles, export from the EHR.",
    no_args_is_help=True,
)


def _fail(exc: HospitalError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


@app.command()
def conformance(
    suite: Annotated[
        Path | None, typer.Option(help="Suite folder (default: ../shared/conformance/…)")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Where to write test_report.json (default: lake/fhir/test_report.json)"),
    ] = None,
) -> None:
    """Run the SQL-on-FHIR v2 conformance suite and write its test_report.json."""
    from hospital.fhir.conformance import run_suite, suite_dir, write_report

    settings = get_settings()
    try:
        directory = suite or suite_dir(settings.root)
        results = run_suite(directory)
    except HospitalError as exc:
        raise _fail(exc) from exc
    path = write_report(results, report or settings.lake_path / "fhir" / "test_report.json")
    passed = sum(r.passed for r in results)
    for r in results:
        if not r.passed:
            console.print(f"[red]FAIL[/red] {r.file} :: {r.name}: {r.reason}")
    console.print(f"conformance: {passed}/{len(results)} passed; report written to {path}")
    if passed != len(results):
        raise typer.Exit(1)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders")],
) -> None:
    """Ingest FHIR Bundles / NDJSON into the fhir schema of the hospital database.

    Bad entries are quarantined (fhir.quarantine) and the rest loads; exits 1 only when
    nothing could be loaded at all.
    """
    from hospital.fhir.load import ingest_paths

    try:
        report = ingest_paths(get_settings(), paths)
    except HospitalError as exc:
        raise _fail(exc) from exc
    _print_report(report)
    if report.quarantined:
        console.print(
            f"{report.quarantined} entr{'y' if report.quarantined == 1 else 'ies'} quarantined "
            "(all in fhir.quarantine with file, entry and reason), e.g.:",
            highlight=False,
        )
        for example in report.examples:
            console.print(f"  {example}", highlight=False, markup=False)
    if report.resources == 0 and report.delete_requests == 0 and report.quarantined:
        console.print("[red]error:[/red] nothing could be loaded: every entry was quarantined")
        raise typer.Exit(1)


@app.command()
def watch(
    inbox: Annotated[
        Path | None, typer.Option(help="Folder to watch (default: lake/fhir/inbox)")
    ] = None,
    once: Annotated[bool, typer.Option(help="Process what is there now, then exit")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between inbox polls")] = 2.0,
    batch_files: Annotated[int, typer.Option(help="Files per transaction")] = 64,
) -> None:
    """Ingest every bundle / NDJSON file dropped into the inbox (until SIGTERM / Ctrl-C).

    Done files move to processed/, unreadable ones to rejected/ with a .reason.txt file.
    """
    import signal
    import threading

    from hospital.fhir.watch import WatchReport, inbox_path
    from hospital.fhir.watch import watch as watch_inbox

    settings = get_settings()
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    folder = inbox or inbox_path(settings)

    def show(batch: WatchReport) -> None:
        r = batch.ingest
        console.print(
            f"{r.files} file(s): {r.inserted} inserted, {r.updated} updated, "
            f"{r.unchanged} unchanged, {r.quarantined} quarantined, "
            f"{len(batch.rejected)} rejected",
            highlight=False,
        )

    if not once:
        console.print(f"watching {folder} (SIGTERM or Ctrl-C to stop)")
    try:
        total = watch_inbox(
            settings,
            inbox=folder,
            poll_seconds=poll,
            once=once,
            stop=stop,
            on_batch=show,
            batch_files=batch_files,
        )
    except HospitalError as exc:
        raise _fail(exc) from exc
    console.print(
        f"stopped: {len(total.processed)} file(s) processed, {len(total.rejected)} rejected",
        highlight=False,
    )


@app.command()
def export(
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: lake/fhir/export)")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many patients")] = None,
    per_bundle: Annotated[int, typer.Option(help="Patients per bundle file")] = 100,
) -> None:
    """Write EHR patients (allergies, medications, visits, diagnoses) as FHIR R4 bundles."""
    from hospital.fhir.export import export_ehr

    try:
        result = export_ehr(get_settings(), out_dir=out, limit=limit, per_bundle=per_bundle)
    except HospitalError as exc:
        raise _fail(exc) from exc
    console.print(
        f"exported {result.patients} patients ({result.resources} resources) "
        f"into {len(result.files)} bundle(s) under {result.out_dir}"
    )


def _print_report(report: object) -> None:
    from hospital.fhir.load import IngestReport

    assert isinstance(report, IngestReport)
    table = Table(title="FHIR ingest")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in report.as_dict().items():
        if key != "rows":
            table.add_row(key, str(value))
    for name, n in report.rows.items():
        table.add_row(f"rows: fhir.{name}", str(n))
    table.add_row("resources/s", f"{report.resources_per_s:,.0f}")
    console.print(table)
