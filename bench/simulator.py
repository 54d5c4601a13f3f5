"""Simulator benchmark: vectorized population vs a Faker row-by-row baseline, and sim-day cost.

Run: ``uv run python bench/simulator.py [--people N] [--faker-people N] [--days N]``.
Writes ``bench/results/simulator.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
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
from hospital.simulator.sa_id import luhn_check_digits

ORIGIN = date(2020, 1, 1)
RESULTS = Path(__file__).parent / "results" / "simulator.json"


def faker_people(n: int, seed: int) -> list[dict[str, object]]:
    """The same columns as the vectorized generator, one Python row at a time."""
    import numpy as np

    fake = Faker()
    fake.seed_instance(seed)
    rows: list[dict[str, object]] = []
    for _ in range(n):
        group = fake.random_element(names.POPULATION_GROUPS)
        male = fake.boolean()
        birth = fake.date_between(ORIGIN - timedelta(days=36_500), ORIGIN - timedelta(days=1))
        seq = fake.random_int(5000 if male else 0, 9999 if male else 4999)
        body = f"{birth:%y%m%d}{seq:04d}08"
        check = int(luhn_check_digits(np.frombuffer(body.encode(), np.uint8)[None, :] - 48)[0])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=5_000_000)
    parser.add_argument("--faker-people", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=7, help="simulated days to time")
    args = parser.parse_args()

    t0 = time.perf_counter()
    frame = generate_population(args.people, 42, ORIGIN)
    gen_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        write_population(frame, Path(tmp))
        write_s = time.perf_counter() - t1

    people = People.from_frame(frame)
    sim = HospitalSim(SimConfig(num_people=args.people, origin=ORIGIN), people)
    sim.step()  # day 0 also fills the initial census; time ordinary days
    t2 = time.perf_counter()
    rows = 0
    for _ in range(args.days):
        rows += sim.step().ehr_row_count()
    day_s = (time.perf_counter() - t2) / args.days

    t3 = time.perf_counter()
    faker_people(args.faker_people, 42)
    faker_s = time.perf_counter() - t3

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    people_per_s = args.people / gen_s
    faker_per_s = args.faker_people / faker_s
    scale = "5m" if args.people == 5_000_000 else str(args.people)
    metrics = {
        "people": args.people,
        f"seconds_{scale}_people": round(gen_s, 3),
        f"seconds_{scale}_people_write_csv_parquet": round(write_s, 3),
        "people_per_s": round(people_per_s),
        "peak_rss_mb": round(peak_mb, 1),
        "seconds_per_sim_day": round(day_s, 4),
        "ehr_rows_per_sim_day": round(rows / args.days),
    }
    baseline = {"faker_people": args.faker_people, "faker_people_per_s": round(faker_per_s)}
    ratios = {"ratio_vs_faker": round(people_per_s / faker_per_s, 1)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"benchmark": "simulator", "metrics": metrics, "baseline": baseline, "ratios": ratios},
            indent=2,
        )
        + "\n"
    )
    table = Table(title="simulator")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in {**metrics, **baseline, **ratios}.items():
        table.add_row(key, f"{value:,}")
    Console().print(table)


if __name__ == "__main__":
    main()
