"""``hospital export``: any hospital table to CSV or Parquet, streamed in constant memory.

Runs as the read-only ``analyst`` role inside a READ ONLY transaction. CSV goes straight from
``COPY (SELECT ...) TO STDOUT`` to the file; Parquet is written one fetch of a server-side
cursor at a time (one row group per fetch). ``--where`` is a single SQL predicate: it may not
close the surrounding parenthesis, start a new statement or hide text in a comment, so it can
only filter the table (with whatever the analyst role may read anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from hospital.errors import HospitalError
from hospital.settings import Settings

Format = Literal["csv", "parquet"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")

# PostgreSQL type OID -> Arrow type; anything else is exported as text.
_ARROW: dict[int, Any] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    700: pa.float32(),
    701: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}


class ExportError(HospitalError):
    """The export request is invalid (unknown table, unsafe predicate) or failed."""


@dataclass(frozen=True)
class ExportResult:
    table: str
    path: Path
    rows: int
    format: Format


def check_predicate(where: str) -> str:
    """``where`` when it is one self-contained predicate, else :class:`ExportError`."""
    depth = 0
    i = 0
    n = len(where)
    while i < n:
        ch = where[i]
        if ch in ("'", '"'):
            end = where.find(ch, i + 1)
            while end != -1 and end + 1 < n and where[end + 1] == ch:  # doubled quote
                end = where.find(ch, end + 2)
            if end == -1:
                raise ExportError("--where has an unterminated quoted string")
            i = end + 1
            continue
        if ch == "\\":
            raise ExportError("--where may not contain backslashes")
        if ch == "$":
            raise ExportError("--where may not use dollar quoting")
        if ch == ";":
            raise ExportError("--where may not contain ';' (one predicate, not statements)")
        if where.startswith(("--", "/*"), i):
            raise ExportError("--where may not contain comments")
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ExportError("--where has an unbalanced ')'")
        i += 1
    if depth:
        raise ExportError("--where has an unbalanced '('")
    if not where.strip():
        raise ExportError("--where is empty")
    return where


def _table(conn: psycopg.Connection[Any], table: str) -> sql.Composable:
    if not _NAME.match(table):
        raise ExportError(f"{table!r} is not a table name")
    parts = table.split(".")
    schema, name = (parts[0], parts[1]) if len(parts) == 2 else ("public", parts[0])
    row = conn.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
        (schema, name),
    ).fetchone()
    if not row:
        raise ExportError(f"no table {schema}.{name} readable by the analyst role")
    return sql.Identifier(schema, name)


def _query(ident: sql.Composable, where: str | None) -> sql.Composed:
    query = sql.SQL("SELECT * FROM {}").format(ident)
    if where:
        query = sql.SQL("{} WHERE ({})").format(query, sql.SQL(check_predicate(where)))
    return query


def _to_arrow(values: list[Any], oid: int) -> pa.Array:
    arrow_type = _ARROW.get(oid)
    if arrow_type is not None:
        return pa.array(values, type=arrow_type)
    if oid in (114, 3802):  # json, jsonb: keep them as JSON text
        return pa.array(
            [None if v is None else orjson.dumps(v).decode() for v in values], type=pa.string()
        )
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def export_table(
    settings: Settings,
    table: str,
    fmt: Format,
    out: Path,
    where: str | None = None,
) -> ExportResult:
    """Write ``table`` (optionally filtered) to ``out``; returns the row count."""
    if fmt not in ("csv", "parquet"):
        raise ExportError(f"unknown format {fmt!r} (csv or parquet)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    try:
        with psycopg.connect(settings.dsn("hospital", "analyst")) as conn:
            conn.read_only = True  # before the first statement: the whole session reads only
            conn.execute("SET TimeZone = 'UTC'")
            ident = _table(conn, table)
            query = _query(ident, where)
            rows = (
                _csv(conn, query, tmp)
                if fmt == "csv"
                else _parquet(conn, query, tmp, settings.export_fetch_rows)
            )
    except psycopg.Error as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"export of {table} failed: {str(exc).strip().splitlines()[0]}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return ExportResult(table, out, rows, fmt)


def _csv(conn: psycopg.Connection[Any], query: sql.Composed, out: Path) -> int:
    copy_sql = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(query)
    with conn.cursor() as cur, out.open("wb") as fh:
        with cur.copy(copy_sql) as copy:
            for block in copy:
                fh.write(block)
        return cur.rowcount


def _parquet(conn: psycopg.Connection[Any], query: sql.Composed, out: Path, fetch: int) -> int:
    rows = 0
    with conn.transaction(), conn.cursor(name="hospital_export") as cur:
        cur.itersize = fetch
        cur.execute(query)
        desc = cur.description or []
        names = [d.name for d in desc]
        oids = [d.type_code for d in desc]
        schema = pa.schema(
            [(n, _ARROW.get(o, pa.string())) for n, o in zip(names, oids, strict=True)]
        )
        with pq.ParquetWriter(out, schema) as writer:
            while chunk := cur.fetchmany(fetch):
                columns = list(zip(*chunk, strict=True))
                arrays = [_to_arrow(list(col), o) for col, o in zip(columns, oids, strict=True)]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                rows += len(chunk)
    return rows
