"""Which EHR tables are mirrored, and with which columns: read from the catalogs, never hard-coded.

A mirror is a table of the ``hospital_cdc`` publication (minus the heartbeat table) that also
exists in the hospital database's ``public`` schema. Its data columns are the hospital table's
columns without the lineage columns; its key is the hospital table's primary key. Other stages
may add columns to EHR tables and their mirrors at any time (a new migration); the applier
re-reads this catalog when an event carries a column it does not know yet.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from hospital.cdc.envelope import HEARTBEAT_TABLE, LINEAGE, TableSpec
from hospital.errors import CdcError
from hospital.settings import Settings

PUBLICATION = "hospital_cdc"
JDBC_SCHEMA = "cdc_jdbc"


def published_tables(settings: Settings) -> list[str]:
    """Tables of the EHR publication, without the heartbeat table."""
    with psycopg.connect(settings.dsn("ehr", "hospital_app")) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_publication_tables WHERE pubname = %s "
            "AND schemaname = 'public' ORDER BY tablename",
            (PUBLICATION,),
        ).fetchall()
    return [str(r[0]) for r in rows if r[0] != HEARTBEAT_TABLE]


def table_columns(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, table: str
) -> dict[str, str]:
    """column -> SQL type (format_type) of ``schema.table``, in column order."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (schema, table),
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def primary_key(conn: psycopg.Connection[tuple[object, ...]], schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = format('%%I.%%I', %s::text, %s::text)::regclass AND i.indisprimary "
        "ORDER BY array_position(i.indkey, a.attnum)",
        (schema, table),
    ).fetchall()
    return [str(r[0]) for r in rows]


def load_specs(settings: Settings, ensure_lineage: bool = True) -> dict[str, TableSpec]:
    """The mirrors, keyed by EHR table name; adds missing lineage columns when asked.

    A mirror created by a later migration without ``_cdc_lsn``/``_cdc_committed_at`` gets them
    here (the applier owns those two columns on every mirror).
    """
    published = published_tables(settings)
    specs: dict[str, TableSpec] = {}
    with psycopg.connect(settings.dsn("hospital", "hospital_app"), autocommit=True) as conn:
        for table in published:
            columns = table_columns(conn, "public", table)
            if not columns:
                continue
            key = primary_key(conn, "public", table)
            if not key:
                raise CdcError(f"mirror table {table} has no primary key")
            if ensure_lineage and not set(LINEAGE) <= set(columns):
                conn.execute(
                    sql.SQL(
                        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS _cdc_lsn bigint, "
                        "ADD COLUMN IF NOT EXISTS _cdc_committed_at timestamptz"
                    ).format(sql.Identifier(table))
                )
            data = tuple(c for c in columns if c not in LINEAGE)
            specs[table] = TableSpec(table, data, tuple(key))
    return specs
