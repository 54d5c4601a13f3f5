"""Apply simulated days to the EHR database (role ``ehr_writer``), one transaction per day.

Inserts go through COPY; updates are COPYed into a temporary table and applied with one
``UPDATE ... FROM``; deletes remove entered-in-error rows. ``sim_days`` makes each day
idempotent: applying a day twice is a no-op, and days must be applied in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
import psycopg

from hospital.errors import SimulationError
from hospital.simulator.config import SimConfig
from hospital.simulator.result import DayResult

EHR_TABLES = (
    "patients",
    "visits",
    "diagnoses",
    "allergies",
    "medications",
    "doctor_notes",
    "treatments",
)
PRIMARY_KEYS = {
    "patients": "patient_id",
    "visits": "visit_id",
    "diagnoses": "diagnosis_id",
    "allergies": "allergy_id",
    "medications": "medication_id",
    "doctor_notes": "note_id",
    "treatments": "treatment_id",
}
INSERT_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": (
        "patient_id", "national_id", "first_name", "last_name", "sex", "birth_date",
        "population_group", "address_line", "suburb", "city", "province", "postal_code", "phone",
        "created_at", "updated_at",
    ),
    "visits": (
        "visit_id", "patient_id", "facility_code", "department_code", "visit_type",
        "triage_level", "reason", "attending_staff_id", "started_at", "ended_at", "status",
        "created_at", "updated_at",
    ),
    "diagnoses": (
        "diagnosis_id", "visit_id", "patient_id", "icd10_code", "description", "is_primary",
        "diagnosed_at", "status", "created_at", "updated_at",
    ),
    "allergies": (
        "allergy_id", "patient_id", "substance", "reaction", "severity", "status", "recorded_at",
        "created_at", "updated_at",
    ),
    "medications": (
        "medication_id", "patient_id", "visit_id", "drug_code", "drug_name", "dose", "route",
        "frequency", "prescriber_id", "start_date", "end_date", "status", "created_at",
        "updated_at",
    ),
    "doctor_notes": (
        "note_id", "visit_id", "patient_id", "author_staff_id", "written_at", "note_text",
        "created_at", "updated_at",
    ),
    "treatments": (
        "treatment_id", "visit_id", "patient_id", "treatment_code", "description",
        "performed_by", "performed_at", "status", "created_at", "updated_at",
    ),
}  # fmt: skip
# (table, key, [(column, sql type)]) of each kind of update.
UPDATES: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("visit_updates", "visits", "visit_id",
     (("ended_at", "timestamptz"), ("status", "text"), ("updated_at", "timestamptz"))),
    ("medication_updates", "medications", "medication_id",
     (("end_date", "date"), ("status", "text"), ("updated_at", "timestamptz"))),
    ("allergy_updates", "allergies", "allergy_id",
     (("severity", "text"), ("status", "text"), ("updated_at", "timestamptz"))),
    ("patient_updates", "patients", "patient_id",
     (("deceased_at", "timestamptz"), ("updated_at", "timestamptz"))),
)  # fmt: skip


@dataclass(frozen=True)
class DayWrite:
    day: date
    applied: bool  # False when the day was already in the EHR (nothing changed)
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


def _csv(frame: pl.DataFrame) -> bytes:
    # ISO timestamps with offset; nulls as unquoted empty fields (COPY's CSV NULL).
    return frame.write_csv(
        include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.6f%:z", null_value=""
    ).encode()


def _copy(cur: psycopg.Cursor[tuple[object, ...]], table: str, frame: pl.DataFrame) -> int:
    if frame.height == 0:
        return 0
    cols = ", ".join(frame.columns)
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(_csv(frame))
    return frame.height


class EhrWriter:
    """A connection to the EHR that applies :class:`DayResult`s."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> EhrWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- bookkeeping ---------------------------------------------------------------------------
    def world(self) -> tuple[str, date] | None:
        row = self.conn.execute("SELECT config_key, origin FROM sim_world WHERE id = 1").fetchone()
        self.conn.rollback()
        return (str(row[0]), row[1]) if row else None

    def last_day(self) -> date | None:
        row = self.conn.execute("SELECT max(sim_day) FROM sim_days").fetchone()
        self.conn.rollback()
        return row[0] if row and row[0] else None

    def claim_world(self, config: SimConfig) -> None:
        """Record the world this database holds, or refuse a different one."""
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO sim_world (id, config_key, origin) VALUES (1, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (config.key(), config.origin),
            )
            row = self.conn.execute("SELECT config_key FROM sim_world WHERE id = 1").fetchone()
        if row is None or row[0] != config.key():
            held = row[0] if row else "nothing"
            raise SimulationError(
                f"the EHR holds another simulated world ({held}); this run is {config.key()}. "
                "Use the same seed/settings, or start from an empty EHR."
            )

    # --- the day ----------------------------------------------------------------------------------
    def apply(self, result: DayResult, origin: date) -> DayWrite:
        """Write one day atomically; a day already applied is left alone."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            # Serialise writers: two processes applying days concurrently would interleave.
            cur.execute("LOCK TABLE sim_days IN EXCLUSIVE MODE")
            cur.execute("SELECT 1 FROM sim_days WHERE sim_day = %s", (result.day,))
            if cur.fetchone():
                return DayWrite(result.day, applied=False)
            if result.day != origin:
                cur.execute(
                    "SELECT 1 FROM sim_days WHERE sim_day = %s", (result.day - timedelta(days=1),)
                )
                if not cur.fetchone():
                    raise SimulationError(
                        f"cannot apply {result.day}: the previous simulated day is not in the EHR"
                    )
            inserted = 0
            for table in EHR_TABLES:
                frame: pl.DataFrame = getattr(
                    result, "doctor_notes" if table == "doctor_notes" else table
                )
                inserted += _copy(cur, table, frame.select(INSERT_COLUMNS[table]))
            updated = 0
            for attr, table, key, cols in UPDATES:
                frame = getattr(result, attr)
                if frame.height == 0:
                    continue
                tmp = f"tmp_{attr}"
                defs = ", ".join(f"{c} {t}" for c, t in cols)
                cur.execute(f"CREATE TEMP TABLE {tmp} ({key} uuid, {defs}) ON COMMIT DROP")
                _copy(cur, tmp, frame.select(key, *(c for c, _ in cols)))
                sets = ", ".join(f"{c} = u.{c}" for c, _ in cols)
                cur.execute(f"UPDATE {table} t SET {sets} FROM {tmp} u WHERE t.{key} = u.{key}")
                updated += cur.rowcount
            deleted = 0
            for frame, table, key in (
                (result.deleted_diagnoses, "diagnoses", "diagnosis_id"),
                (result.deleted_notes, "doctor_notes", "note_id"),
            ):
                if frame.height:
                    cur.execute(
                        f"DELETE FROM {table} WHERE {key} = ANY(%s::uuid[])",
                        (frame[key].to_list(),),
                    )
                    deleted += cur.rowcount
            cur.execute(
                "INSERT INTO sim_days (sim_day, inserted, updated, deleted) "
                "VALUES (%s, %s, %s, %s)",
                (result.day, inserted, updated, deleted),
            )
        return DayWrite(result.day, True, inserted, updated, deleted)


def table_checksums(dsn: str) -> dict[str, tuple[int, str]]:
    """(row count, md5 of all rows in key order) per EHR table: equal iff the contents are equal."""
    out: dict[str, tuple[int, str]] = {}
    with psycopg.connect(dsn) as conn:
        for table in EHR_TABLES:
            key = PRIMARY_KEYS[table]
            row = conn.execute(
                f"SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t.{key})), '') "
                f"FROM {table} t"
            ).fetchone()
            assert row is not None
            out[table] = (int(row[0]), str(row[1]))
    return out


def truncate_ehr(dsn: str) -> None:
    """Empty every simulator-written EHR table (tests and re-seeding; the owner may do this)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE " + ", ".join((*EHR_TABLES, "sim_days", "sim_world")) + " CASCADE")
