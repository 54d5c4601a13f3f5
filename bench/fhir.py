"""FHIR ingest benchmark: ``uv run python bench/fhir.py`` -> ``bench/results/fhir.json``.

Metric: resources/s for parse + reference resolution + flatten (13 shipped ViewDefinitions)
+ load (COPY) of the 10 Synthea sample bundles into empty ``fhir`` tables. Each run happens
inside a transaction that is rolled back, so existing data in the database is left alone.

Baseline, same run: the classic per-row SQLAlchemy ORM loader of the Patient / name / address
tables (``session.merge`` per resource, into a scratch schema dropped afterwards), fed with the
sample patients copied under new ids so that the timing is not a handful of rows.

Needs the stack's PostgreSQL (``uv run hospital stack up``); settings come from the usual
environment / ``.env``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import ForeignKey, String, create_engine, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from hospital.fhir.bundles import loads
from hospital.fhir.flatten import shipped_views
from hospital.fhir.load import discover, ingest_files
from hospital.fhir.shared import samples_dir
from hospital.settings import Settings, get_settings

RUNS = 3
ORM_COPIES = 30  # sample patients x copies = rows for the ORM baseline
ORM_SCHEMA = "fhir_bench_orm"
RESULTS = Path(__file__).parent / "results" / "fhir.json"


class Base(DeclarativeBase):
    pass


class OrmPatient(Base):
    __tablename__ = "patient"
    __table_args__ = {"schema": ORM_SCHEMA}  # noqa: RUF012
    id: Mapped[str] = mapped_column(String, primary_key=True)
    gender: Mapped[str | None]
    birth_date: Mapped[str | None]
    family_name: Mapped[str | None]
    given_name: Mapped[str | None]


class OrmName(Base):
    __tablename__ = "patient_name"
    __table_args__ = {"schema": ORM_SCHEMA}  # noqa: RUF012
    patient_id: Mapped[str] = mapped_column(
        ForeignKey(f"{ORM_SCHEMA}.patient.id"), primary_key=True
    )
    name_index: Mapped[int] = mapped_column(primary_key=True)
    use: Mapped[str | None]
    family: Mapped[str | None]
    given: Mapped[str | None]


class OrmAddress(Base):
    __tablename__ = "patient_address"
    __table_args__ = {"schema": ORM_SCHEMA}  # noqa: RUF012
    patient_id: Mapped[str] = mapped_column(
        ForeignKey(f"{ORM_SCHEMA}.patient.id"), primary_key=True
    )
    address_index: Mapped[int] = mapped_column(primary_key=True)
    line: Mapped[str | None]
    city: Mapped[str | None]
    state: Mapped[str | None]
    postal_code: Mapped[str | None]


def bench_fast(settings: Settings, files: list[Path]) -> tuple[float, int]:
    """Seconds and resources for one ingest of ``files`` into empty tables (rolled back)."""
    tables = ["resource", "quarantine", *(t.table for t in shipped_views())]
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        # TRUNCATE is transactional: the rollback below restores whatever was there.
        conn.execute("TRUNCATE " + ", ".join(f"fhir.{t}" for t in tables))
        started = time.perf_counter()
        report = ingest_files(conn, files)
        seconds = time.perf_counter() - started
        conn.rollback()
    if report.quarantined or report.inserted != report.resources:
        raise SystemExit(f"unexpected ingest result: {report.as_dict()}")
    return seconds, report.resources


def _orm_patients(files: list[Path]) -> list[dict[str, Any]]:
    patients = []
    for path in files:
        bundle = loads(path.read_bytes())
        patients.extend(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
    copies = []
    for n in range(ORM_COPIES):
        for p in patients:
            copies.append({**p, "id": f"{p['id']}-{n}"})
    return copies


def _orm_load(session: Session, resource: dict[str, Any]) -> None:
    """The classic hand-written mapping, one ORM object per row, merged by primary key."""
    official = next((n for n in resource.get("name", []) if n.get("use") == "official"), {})
    session.merge(
        OrmPatient(
            id=resource["id"],
            gender=resource.get("gender"),
            birth_date=resource.get("birthDate"),
            family_name=official.get("family"),
            given_name=(official.get("given") or [None])[0],
        )
    )
    for i, name in enumerate(resource.get("name", [])):
        session.merge(
            OrmName(
                patient_id=resource["id"],
                name_index=i,
                use=name.get("use"),
                family=name.get("family"),
                given=" ".join(name.get("given", [])),
            )
        )
    for i, addr in enumerate(resource.get("address", [])):
        session.merge(
            OrmAddress(
                patient_id=resource["id"],
                address_index=i,
                line=", ".join(addr.get("line", [])),
                city=addr.get("city"),
                state=addr.get("state"),
                postal_code=addr.get("postalCode"),
            )
        )
    session.flush()


def bench_orm(settings: Settings, files: list[Path]) -> tuple[float, int]:
    patients = _orm_patients(files)
    engine = create_engine(settings.sqlalchemy_url("hospital", "hospital_app"))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {ORM_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {ORM_SCHEMA}"))
            Base.metadata.create_all(conn)
        started = time.perf_counter()
        with Session(engine) as session:
            for resource in patients:
                _orm_load(session, resource)
            session.commit()
        seconds = time.perf_counter() - started
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {ORM_SCHEMA} CASCADE"))
    finally:
        engine.dispose()
    return seconds, len(patients)


def main() -> int:
    settings = get_settings()
    folder = samples_dir(settings.root)
    files = discover([folder]) if folder.is_dir() else []
    if not files:
        print(f"samples not found at {folder}", file=sys.stderr)
        return 1
    shipped_views()  # compile the views outside the timed region, as a long-running loader does

    fast = [bench_fast(settings, files) for _ in range(RUNS)]
    orm = [bench_orm(settings, files) for _ in range(RUNS)]
    fast_s = statistics.median(s for s, _ in fast)
    orm_s = statistics.median(s for s, _ in orm)
    resources = fast[0][1]
    orm_resources = orm[0][1]
    metrics = {
        "resources": resources,
        "files": len(files),
        "ingest_seconds_median": round(fast_s, 4),
        "resources_per_s": round(resources / fast_s, 1),
        "runs": RUNS,
    }
    baseline = {
        "orm_patients": orm_resources,
        "orm_seconds_median": round(orm_s, 4),
        "orm_resources_per_s": round(orm_resources / orm_s, 1),
    }
    ratios = {
        "ratio_vs_orm": round(metrics["resources_per_s"] / baseline["orm_resources_per_s"], 2)
    }
    result = {"benchmark": "fhir", "metrics": metrics, "baseline": baseline, "ratios": ratios}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"{'measure':<42}{'value':>14}")
    print("-" * 56)
    for key, value in {**metrics, **baseline, **ratios}.items():
        print(f"{key:<42}{value:>14,}")
    print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
