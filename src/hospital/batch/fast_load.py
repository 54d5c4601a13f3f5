"""Running the fast paths of :mod:`hospital.batch.fast` on one file, in one transaction.

:func:`fast_load` gives the file's result when a fast path loaded it, or None: its transaction
was rolled back whole and the caller runs the strict path from scratch, so every refusal keeps
its usual message.

The direct path locks the target table (``ACCESS EXCLUSIVE``, without waiting: when someone
holds the table the typed path runs instead) for the length of the load, so readers that come
meanwhile wait for its commit. It takes that lock only while the table is no bigger than the
file (its primary key is rebuilt whole): readers of a table that already holds many files
never wait on a new one.
"""

from __future__ import annotations

import hashlib
import time
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from hospital.batch import fast as fastpath
from hospital.batch import files as bf
from hospital.batch import ledger, staging
from hospital.batch.inflight import COPY_CHUNK, FieldStarts, hashed_blocks
from hospital.batch.ledger import Conn, Cursor, FileResult
from hospital.errors import IngestError


class _Unconfirmed(Exception):
    """The client could not confirm the file's timestamps: the direct path stops sending."""


def fast_load(
    conn: Conn,
    path: Path,
    rel: str,
    spec: bf.FileSpec,
    entry: bf.ManifestEntry,
    day: date | None,
    st: Any,
    t0: float,
) -> FileResult | None:
    """Load a clean file of new records the fast way, or None (see the module docstring)."""
    try:
        bf.check_header(path, spec)
    except IngestError:
        return None
    try:
        for direct_allowed in (True, False):
            with conn.cursor() as cur:
                plan = _begin(cur, spec, rel)
                if plan is None:
                    conn.rollback()
                    return None
                loaded: int | None = None
                sha = ""
                if direct_allowed and plan.direct and _lock_direct(cur, plan.direct, entry.rows):
                    try:
                        loaded, sha = _direct(cur, plan.direct, path, entry)
                    except _Unconfirmed:
                        conn.rollback()
                        continue  # the typed path checks the timestamps in SQL
                else:
                    loaded, sha = _typed(cur, plan, path, entry)
                if loaded is None:
                    conn.rollback()
                    return None
                ledger.record(cur, rel, path, sha, st, "loaded", loaded, loaded, 0, None, t0, day)
            conn.commit()
            return FileResult(rel, "loaded", loaded, 0, seconds=time.perf_counter() - t0)
    except psycopg.OperationalError as exc:
        raise IngestError(f"{path}: database unavailable ({exc})") from None
    except psycopg.Error:
        # A value a typed COPY refused, a key already loaded or repeated: strict path.
        conn.rollback()
    return None


def _begin(cur: Cursor, spec: bf.FileSpec, rel: str) -> fastpath.FastSql | None:
    """The plan for ``spec`` with the file's lock held, or None: not for the fast paths."""
    cur.execute("SELECT EXISTS (SELECT 1 FROM people)")
    plan = fastpath.build(spec, bool(cur.fetchone()[0]))  # type: ignore[index]
    if plan is None:
        return None
    ledger.lock_file(cur, rel)
    cur.execute("SELECT 1 FROM batch_ledger WHERE path = %s", (rel,))
    if cur.fetchone():  # another ingestor got there first: let the usual path decide
        return None
    return plan


def _copy(cur: Cursor, statement: str, path: Path, scan: FieldStarts | None = None) -> str:
    """COPY ``path`` with ``statement``; the file's sha256, hashed (and scanned) in flight."""
    digest = hashlib.sha256()
    with cur.copy(statement) as copy:
        for block in hashed_blocks(path, digest, COPY_CHUNK):
            if scan is not None and not scan.feed(block):
                raise _Unconfirmed
            copy.write(block)
        if scan is not None and not scan.finish():
            raise _Unconfirmed
    return digest.hexdigest()


def _typed(
    cur: Cursor, plan: fastpath.FastSql, path: Path, entry: bf.ManifestEntry
) -> tuple[int | None, str]:
    """Typed TEMP table, one check query, one sorted insert: (rows loaded or None, sha256)."""
    cur.execute(plan.create)
    sha = _copy(cur, plan.copy, path)
    if cur.rowcount != entry.rows or sha != entry.sha256:
        return None, sha
    if joins := staging.join_plan(entry.rows):
        cur.execute(joins)
    cur.execute(plan.any_bad)
    if cur.fetchone()[0]:  # type: ignore[index]
        return None, sha
    cur.execute(plan.insert)
    return cur.rowcount, sha


def _lock_direct(cur: Cursor, direct: fastpath.DirectSql, rows: int) -> bool:
    """Whether the direct path may load ``rows`` rows into its table: then the table is locked.

    It may when the table is a plain one (no row security, owned by this role) whose only
    index is its primary key, no foreign key points at it, each file column has exactly the
    type the strict path casts to, and it holds no more rows than the file brings (rebuilding
    its key then costs at most twice the file's own).
    """
    table = sql.Identifier(direct.table)
    cur.execute(
        "SELECT c.relkind = 'r' AND NOT c.relhassubclass AND NOT c.relrowsecurity"
        " AND pg_has_role(c.relowner, 'MEMBER')"  # ALTER TABLE is the owner's
        " AND (SELECT array_agg(i.indisprimary) FROM pg_index i WHERE i.indrelid = c.oid)"
        " = ARRAY[true]"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = c.oid)"
        " AND (SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY n.i)"
        "      FROM unnest(%s::text[]) WITH ORDINALITY n(name, i)"
        "      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = n.name"
        "      AND NOT a.attisdropped) = %s::text[]"
        " FROM pg_class c WHERE c.oid = %s::regclass",
        (list(direct.columns), list(direct.types), table.as_string(None)),
    )
    if not cur.fetchone()[0] or _rows_upto(cur, table, rows) > rows:  # type: ignore[index]
        return False
    cur.execute("SAVEPOINT fast_direct")
    try:
        cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE NOWAIT").format(table))
    except pg_errors.LockNotAvailable:
        cur.execute("ROLLBACK TO SAVEPOINT fast_direct")  # which lets the lock request go
        return False
    if _rows_upto(cur, table, rows) > rows:  # rows added before the lock was granted
        cur.execute("ROLLBACK TO SAVEPOINT fast_direct")
        return False
    cur.execute("RELEASE SAVEPOINT fast_direct")
    return True


def _rows_upto(cur: Cursor, table: sql.Identifier, rows: int) -> int:
    """The table's row count, counted up to ``rows + 1`` at most."""
    cur.execute(
        sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) t").format(table), (rows + 1,)
    )
    return int(cur.fetchone()[0])  # type: ignore[index]


def _direct(
    cur: Cursor,
    direct: fastpath.DirectSql,
    path: Path,
    entry: bf.ManifestEntry,
) -> tuple[int | None, str]:
    """COPY into the locked target, check the new rows, rebuild the key: (rows or None, sha)."""
    table = sql.Identifier(direct.table)
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'p'",
        (table.as_string(None),),
    )
    name, definition = cur.fetchone()  # type: ignore[misc]
    had_rows = _rows_upto(cur, table, 0) > 0
    cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table, sql.Identifier(name)))
    scan = FieldStarts(len(direct.columns), direct.timestamps)
    sha = _copy(cur, direct.copy, path, scan)
    if cur.rowcount != entry.rows or sha != entry.sha256:
        return None, sha
    if joins := staging.join_plan(entry.rows):
        cur.execute(joins)
    # The table's own rows passed these checks when they loaded: only the file's are checked.
    where = "true"
    if had_rows:
        cur.execute("SELECT pg_current_xact_id()::xid::text")
        where = f"s.xmin = {sql.Literal(cur.fetchone()[0]).as_string(None)}::xid"  # type: ignore[index]
    cur.execute(direct.any_bad(where))
    if cur.fetchone()[0]:  # type: ignore[index]
        return None, sha
    # One sorted build of the key; a key twice, or one the table held, fails it (strict path).
    cur.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(table, sql.Identifier(name))
        + sql.SQL(definition)
    )
    return entry.rows, sha
