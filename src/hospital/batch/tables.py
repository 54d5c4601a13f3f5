"""The hospital tables the batch path writes, and emptying them.

The ingest ledger is keyed by a file's path under ``lake/batch``, so a database holds one
world's batch data: switching worlds (another seed or population) empties these first.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from hospital.settings import Settings

OWNED_TABLES = (
    "batch_ledger",
    "batch_quarantine",
    "bed_events",
    "staff_assignments",
    "staff",
    "departments",
    "people",
    "initial_census",
    "admissions",
    "transfers",
    "transports",
    "pharmacy_orders",
)


def empty(settings: Settings) -> None:
    """Truncate every batch-owned table that exists (``bed_events`` too: it is keyed by the
    same world's event ids)."""
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        present = [
            t
            for t in OWNED_TABLES
            if (row := conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()) and row[0]
        ]
        if present:
            conn.execute(
                sql.SQL("TRUNCATE {} CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in present)
                )
            )
