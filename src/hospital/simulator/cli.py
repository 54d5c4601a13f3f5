"""``hospital simulate``: population, one day, or a range of days into the EHR."""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hospital.errors import HospitalError
from hospital.settings import get_settings

if TYPE_CHECKING:
    from hospital.simulator.activity import DayResult
    from hospital.simulator.config import SimConfig
    from hospital.simulator.ehr_writer import DayWrite

app = typer.Typer(help="Run the synthetic Johannesburg hospital: people, days of activity, EHR.")
console = Console()

SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (default: SEED).")]
PeopleOpt = Annotated[
    int | None, typer.Option("--people", help="Population size (default: NUM_PEOPLE).")
]


def _config(seed: int | None, people: int | None) -> SimConfig:
    # numpy/polars load only when a command runs, so `hospital --help` stays quick.
    from hospital.simulator.config import SimConfig

    overrides: dict[str, object] = {}
    if seed is not None:
        overrides["seed"] = seed
    if people is not None:
        overrides["num_people"] = people
    return SimConfig.from_settings(get_settings(), **overrides)


def _parse_day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()  # noqa: DTZ007 - a calendar date
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a YYYY-MM-DD date") from None


@app.command()
def population(
    out: Annotated[Path | None, typer.Option(help="Output folder (default: lake/seeds).")] = None,
    seed: SeedOpt = None,
    people: PeopleOpt = None,
) -> None:
    """Generate the population: people.csv and people.parquet."""
    from hospital.simulator import api

    config = _config(seed, people)
    out_dir = out or api.seeds_dir(get_settings())
    t0 = time.perf_counter()
    with console.status(f"generating {config.num_people:,} people"):
        files = api.population_files(config, out_dir)
    secs = time.perf_counter() - t0
    console.print(
        f"{files.rows:,} people in {secs:.1f} s ({files.rows / secs:,.0f} rows/s) -> {out_dir}"
    )


def _run(
    start: date | None, days: int, seed: int | None, people: int | None, out: Path | None
) -> None:
    from hospital.simulator import api

    settings = get_settings()
    config = _config(seed, people)
    seeds = out or api.seeds_dir(settings)
    with console.status("loading the population"):
        pop = api.build_population(config, seeds)
    progress = Progress(
        TextColumn("[bold]{task.fields[sim_date]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} rows/s"),
        TimeElapsedColumn(),
        console=console,
    )
    t0 = time.perf_counter()
    rows = 0
    with progress:
        task = progress.add_task("days", total=days, sim_date="-", rate="0")

        def on_day(result: DayResult, write: DayWrite) -> None:
            nonlocal rows
            rows += write.inserted + write.updated + write.deleted
            rate = rows / max(time.perf_counter() - t0, 1e-9)
            progress.update(task, advance=1, sim_date=str(result.day), rate=f"{rate:,.0f}")

        report = api.apply_range(settings, config, pop, start, days, on_day)
    if report.staff is not None:
        api.write_seed_files(report.staff, report.assignments, report.census, seeds, config)
    skipped = len(report.writes) - report.applied
    console.print(
        f"applied {report.applied} day(s), skipped {skipped} already in the EHR; "
        f"{rows:,} rows changed in {time.perf_counter() - t0:.1f} s"
    )


@app.command()
def day(
    date_: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: next)")] = None,
    seed: SeedOpt = None,
    people: PeopleOpt = None,
    out: Annotated[Path | None, typer.Option(help="Folder for staff/roster CSVs.")] = None,
) -> None:
    """Simulate one day and write it to the EHR."""
    try:
        _run(_parse_day(date_), 1, seed, people, out)
    except HospitalError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None


@app.command("range")
def range_(
    start: Annotated[str | None, typer.Option(help="First day YYYY-MM-DD (default: next)")] = None,
    days: Annotated[int, typer.Option(min=1, help="Number of days")] = 1,
    seed: SeedOpt = None,
    people: PeopleOpt = None,
    out: Annotated[Path | None, typer.Option(help="Folder for staff/roster CSVs.")] = None,
) -> None:
    """Simulate N days from --start and write them to the EHR (resumable)."""
    try:
        _run(_parse_day(start), days, seed, people, out)
    except HospitalError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
