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
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders")] = None,
    watch: Annotated[
        bool, typer.Option(help="Keep ingesting files dropped into lake/fhir/inbox")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between inbox polls")] = 2.0,
) -> None:
    """Ingest FHIR Bundles / NDJSON into the fhir schema of the hospital database."""
    from hospital.fhir.load import IngestReport, inbox_path, ingest_paths
    from hospital.fhir.load import watch as watch_inbox

    settings = get_settings()
    try:
        if paths:
            _print_report(ingest_paths(settings, paths))
        if watch:
            console.print(f"watching {inbox_path(settings)} (Ctrl-C to stop)")

            def show(files: list[Path], report: IngestReport) -> None:
                console.print(f"{len(files)} file(s): {report.as_dict()}")

            try:
                watch_inbox(settings, poll_seconds=poll, on_report=show)
            except KeyboardInterrupt:
                console.print("stopped")
        elif not paths:
            console.print("nothing to do: give files/folders or --watch")
            raise typer.Exit(2)
    except HospitalError as exc:
        raise _fail(exc) from exc


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
