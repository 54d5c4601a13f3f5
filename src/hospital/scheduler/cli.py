"""``hospital run`` and ``hospital report``: a thin layer over :mod:`hospital.scheduler.runner`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated

import typer
from rich.console import Console

from hospital.errors import HospitalError
from hospital.settings import Settings, get_settings

app = typer.Typer(help="scheduler stage.", no_args_is_help=True)
console = Console()


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()  # noqa: DTZ007 - a calendar date
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a YYYY-MM-DD date") from None


def run_command(
    profile: Annotated[
        str | None,
        typer.Option(help="demo, walkthrough, nine-days-1455 or backfill (default: RUN_PROFILE)"),
    ] = None,
    speed: Annotated[
        str | None,
        typer.Option(help="'max' (as fast as the pipelines go) or simulated days per real minute"),
    ] = None,
    day_seconds: Annotated[
        float | None, typer.Option("--day-seconds", help="Real seconds per simulated day")
    ] = None,
    days: Annotated[
        int | None, typer.Option(help="Simulated days to run from the first unfinished one")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Last simulated day, YYYY-MM-DD")] = None,
    workers: Annotated[
        bool, typer.Option(help="Run the CDC/stream/batch/FHIR workers as supervised children")
    ] = True,
    stack: Annotated[bool, typer.Option(help="Start the stack first when it is down")] = True,
    jobs: Annotated[
        str | None,
        typer.Option(help="Comma-separated subset of simulator,stream,batch,fhir (default: all)"),
    ] = None,
    drain_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds to wait for workers to catch up (RUN_DRAIN_TIMEOUT_SECONDS)"),
    ] = None,
    plain: Annotated[
        bool | None, typer.Option("--plain/--live", help="Log lines instead of the live display")
    ] = None,
    dashboard: Annotated[
        bool,
        typer.Option(help="Start the dashboard before the run and pgAdmin after it (left running)"),
    ] = False,
) -> None:
    """Run the hospital on the simulated clock: every path, supervised workers, live progress,
    and a reconciliation report (exit code 1 on any unexplained difference)."""
    from hospital.scheduler import report, runner
    from hospital.scheduler.profiles import parse_speed

    options = runner.RunOptions(
        profile=profile,
        seconds_per_day=parse_speed(speed, day_seconds),
        days=days,
        until=_day(until),
        workers=workers,
        start_stack=stack,
        jobs={j.strip() for j in jobs.split(",")} if jobs else None,
        drain_timeout=drain_timeout,
        plain=plain,
    )
    settings = get_settings()
    urls: dict[str, str | None] = {}
    if dashboard:
        if stack:
            from hospital.stack import Stack

            with console.status("starting the stack"):
                Stack(settings).up()
        urls["dashboard"] = _service("dashboard", runner.start_dashboard, settings)
    result = runner.run(settings, options, console)
    console.print(report.render(result.as_dict()))
    console.print(f"report: {report.reports_dir(settings) / 'latest.html'} (and latest.json)")
    if dashboard:
        with console.status("starting pgAdmin 4 (the first start installs it)"):
            urls["pgAdmin 4"] = _service("pgAdmin", runner.start_pgadmin, settings)
        for name, url in urls.items():
            if url:
                console.print(f"{name}: [bold]{url}[/]")
        if urls.get("pgAdmin 4"):
            console.print(f"pgAdmin login: {settings.pgadmin_email} (PGADMIN_PASSWORD)")
        console.print("stop everything: make stop  (or: hospital stack down)")
    if not result.clean:
        raise typer.Exit(1)


def _service(name: str, start: Callable[[Settings], str | None], settings: Settings) -> str | None:
    """Start a companion service; its failure is reported, never fatal to the run."""
    try:
        return start(settings)
    except HospitalError as exc:
        console.print(f"[yellow]{name} not started: {exc}[/]")
    except Exception as exc:  # a companion's own failure must not hide the run's report
        console.print(f"[yellow]{name} not started: {type(exc).__name__}: {exc}[/]")
    return None


def report_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON form")] = False,
) -> None:
    """Print the last run's reconciliation report (exit code 1 when it was not clean)."""
    import json

    from hospital.scheduler import report

    data = report.latest(get_settings())
    if data is None:
        console.print("no run report yet: run `hospital run` first")
        raise typer.Exit(2)
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        console.print(report.render(data))
    if not data.get("clean"):
        raise typer.Exit(1)


app.command("run")(run_command)
app.command("report")(report_command)
