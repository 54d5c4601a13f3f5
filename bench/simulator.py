"""Simulator benchmark: vectorized population vs a Faker row-by-row baseline, and sim-day cost.

Run: ``uv run python bench/simulator.py [--people N] [--faker-people N] [--days N] [--runs N]``.
Writes ``bench/results/simulator.json``.

Rules (bench/README.md): both sides build the same columns for the same kind of people (the
output is people rows in memory on both sides; neither writes them in the compared figure);
the baseline is what a competent row-by-row developer writes (Faker, a plain Python Luhn
check digit, one dict per person); each side runs ``--runs`` times (default 3), alternating,
in the same process; medians are reported, with ``os.getloadavg()`` at start and end. The
rate is per person, so the two sides may use different person counts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from faker import Faker
from rich.console import Console
from rich.table import Table

from hospital.simulator import names
from hospital.simulator.activity import HospitalSim
from hospital.simulator.config import SimConfig
from hospital.simulator.population import People, generate_population, write_population

ORIGIN = date(2020, 1, 1)
RESULTS = Path(__file__).parent / "results" / "simulator.json"


def luhn_digit(body: str) -> int:
    """The Luhn check digit of ``body``, as a row-by-row developer writes it (plain Python)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        v = int(ch)
        if i % 2 == 0:  # the digit next to the check digit is doubled
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return (10 - total % 10) % 10


def faker_people(n: int, seed: int) -> list[dict[str, object]]:
    """The same columns as the vectorized generator, one Python row at a time."""
    fake = Faker()
    fake.seed_instance(seed)
    rows: list[dict[str, object]] = []
    for _ in range(n):
        group = fake.random_element(names.POPULATION_GROUPS)
        male = fake.boolean()
        birth = fake.date_between(ORIGIN - timedelta(days=36_500), ORIGIN - timedelta(days=1))
        seq = fake.random_int(5000 if male else 0, 9999 if male else 4999)
        body = f"{birth:%y%m%d}{seq:04d}08"
        check = luhn_digit(body)
        suburb = fake.random_element(names.SUBURBS)
        rows.append(
            {
                "person_id": fake.uuid4(),
                "national_id": body + str(check),
                "first_name": fake.random_element(
                    (names.MALE_FIRST if male else names.FEMALE_FIRST)[group]
                ),
                "last_name": fake.random_element(names.SURNAMES[group]),
                "sex": "M" if male else "F",
                "birth_date": birth,
                "population_group": group,
                "address_line": f"{fake.random_int(1, 2999)} {fake.random_element(names.STREETS)}",
                "suburb": suburb[0],
                "city": suburb[1],
                "province": "Gauteng",
                "postal_code": suburb[2],
                "phone": fake.numerify("+2782#######"),
            }
        )
    return rows


def _timed(fn: object, *args: object) -> float:
    started = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=5_000_000)
    parser.add_argument("--faker-people", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=7, help="simulated days to time per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    load_start = os.getloadavg()
    gen_runs: list[float] = []
    faker_runs: list[float] = []
    for run in range(args.runs):  # alternating, so both sides see the same machine load
        gen_runs.append(_timed(generate_population, args.people, 42 + run, ORIGIN))
        faker_runs.append(_timed(faker_people, args.faker_people, 42 + run))

    frame = generate_population(args.people, 42, ORIGIN)
    write_runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            write_runs.append(_timed(write_population, frame, Path(tmp)))

    people = People.from_frame(frame)
    sim = HospitalSim(SimConfig(num_people=args.people, origin=ORIGIN), people)
    sim.step()  # day 0 also fills the initial census; time ordinary days
    day_runs: list[float] = []
    rows = 0
    for _ in range(args.runs):
        t = time.perf_counter()
        for _ in range(args.days):
            rows += sim.step().ehr_row_count()
        day_runs.append((time.perf_counter() - t) / args.days)
    load_end = os.getloadavg()

    gen_s = statistics.median(gen_runs)
    faker_s = statistics.median(faker_runs)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    people_per_s = args.people / gen_s
    faker_per_s = args.faker_people / faker_s
    metrics = {
        "people": args.people,
        "runs": args.runs,
        "generate_seconds_median": round(gen_s, 3),
        "generate_seconds_all_runs": [round(x, 3) for x in gen_runs],
        "people_per_s": round(people_per_s),
        "write_csv_parquet_seconds_median": round(statistics.median(write_runs), 3),
        "seconds_per_sim_day_median": round(statistics.median(day_runs), 4),
        "ehr_rows_per_sim_day": round(rows / (args.days * args.runs)),
        "peak_rss_mb": round(peak_mb, 1),
        "loadavg_1m_5m_15m_start": [round(x, 2) for x in load_start],
        "loadavg_1m_5m_15m_end": [round(x, 2) for x in load_end],
        "cpu_count": os.cpu_count(),
    }
    baseline = {
        "faker_people": args.faker_people,
        "faker_seconds_median": round(faker_s, 3),
        "faker_seconds_all_runs": [round(x, 3) for x in faker_runs],
        "faker_people_per_s": round(faker_per_s),
    }
    ratios = {"ratio_vs_faker": round(people_per_s / faker_per_s, 1)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "simulator",
                "rule": "same columns, competent row-by-row baseline, same run, median of runs",
                "metrics": metrics,
                "baseline": baseline,
                "ratios": ratios,
            },
            indent=2,
        )
        + "\n"
    )
    table = Table(title="simulator")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in {**metrics, **baseline, **ratios}.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value))
    Console().print(table)


if __name__ == "__main__":
    main()
