"""Ingest batch drops: COPY each new file into staging, validate in SQL, merge, record.

One file = one transaction: staging (a TEMP table dropped at commit), quarantine of bad rows,
merge of the good ones, bed events, the ledger row and the metrics commit together, so a crash
at any point leaves the file either wholly loaded and recorded or not touched at all; a re-run
picks it up again. The ledger (:mod:`hospital.batch.ledger`) makes a replay a no-op and refuses
a changed file. A file never seen first tries the fast paths (:mod:`hospital.batch.fast_load`),
which load a clean file of new records or leave no trace; this module's strict path does the
rest (text staging, quarantine of bad rows with their line numbers, ``ON CONFLICT`` merge).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from hospital.batch import files as bf
from hospital.batch import staging
from hospital.batch.fast_load import fast_load as _fast_load
from hospital.batch.inflight import COPY_CHUNK
from hospital.batch.ledger import (
    Conn,
    Cursor,
    FileResult,
    IngestReport,
    lock_file,
    record,
    reject,
    reject_once,
)
from hospital.batch.ledger import lookup as _ledger
from hospital.clock import day_start
from hospital.errors import IngestError
from hospital.settings import Settings

__all__ = ["FileResult", "IngestReport", "connect", "ingest_drop", "ingest_pending", "watch"]

SPOOL_BYTES = 256 << 20  # valid rows kept in memory between COPY out and COPY in


def connect(settings: Settings) -> Conn:
    conn = psycopg.connect(settings.dsn("hospital", "hospital_app"))
    # Staging lives in session-local buffers: give them room before the first TEMP table.
    conn.execute(f"SET temp_buffers = '{settings.batch_temp_buffers_mb}MB'")
    conn.execute("SET TimeZone = 'UTC'")
    # Room to sort a file by key in memory (the merge fills the primary key index in order),
    # and to build a key whole (the direct fast path rebuilds the primary key of its table).
    conn.execute(f"SET work_mem = '{settings.batch_work_mem_mb}MB'")
    conn.execute(f"SET maintenance_work_mem = '{settings.batch_work_mem_mb}MB'")
    conn.commit()
    return conn


def ingest_pending(
    settings: Settings, on_file: Callable[[FileResult], None] | None = None
) -> IngestReport:
    """Ingest every file of ``lake/batch`` not yet in the ledger (initial load first)."""
    report = IngestReport()
    with connect(settings) as conn:
        for drop in bf.list_drops(settings.lake_path):
            for result in ingest_drop(conn, drop):
                report.files.append(result)
                if on_file:
                    on_file(result)
    return report


def watch(
    settings: Settings,
    stop: threading.Event,
    on_file: Callable[[FileResult], None] | None = None,
) -> IngestReport:
    """Ingest new drops as they appear until ``stop`` is set."""
    total = IngestReport()
    told: set[tuple[str, str | None]] = set()

    def tell(result: FileResult) -> None:
        # A refused file stays refused: say so once, not on every poll.
        if result.status == "skipped" or (result.path, result.error) in told:
            return
        told.add((result.path, result.error))
        total.files.append(result)
        if on_file:
            on_file(result)

    while not stop.is_set():
        ingest_pending(settings, tell)
        stop.wait(settings.batch_watch_seconds)
    return total


def ingest_drop(conn: Conn, drop: Path) -> list[FileResult]:
    """Ingest one drop folder: each file on its own; a bad file never stops the others."""
    try:
        day = bf.drop_day(drop.name)
        manifest = bf.Manifest.read(drop)
    except IngestError as exc:
        target = drop / bf.MANIFEST
        return [reject_once(conn, f"{drop.name}/{bf.MANIFEST}", target, str(exc), None)]
    results = []
    expected = {s.name for s in bf.specs_for(drop.name)}
    for spec in bf.specs_for(drop.name):
        path = drop / spec.name
        entry = manifest.files.get(spec.name)
        rel = f"{drop.name}/{spec.name}"
        if entry is None:
            if path.exists():
                results.append(
                    reject_once(conn, rel, path, f"{path}: not listed in the manifest", day)
                )
            continue
        if not path.exists():
            msg = f"{path}: listed in the manifest but missing"
            results.append(reject_once(conn, rel, None, msg, day))
            continue
        results.append(ingest_file(conn, path, rel, spec, entry, day))
    for extra in sorted(drop.glob("*.csv")):
        if extra.name not in expected:
            msg = f"{extra}: not a batch file of this drop"
            results.append(reject_once(conn, f"{drop.name}/{extra.name}", extra, msg, day))
    return results


def ingest_file(
    conn: Conn,
    path: Path,
    rel: str,
    spec: bf.FileSpec,
    entry: bf.ManifestEntry,
    day: date | None,
) -> FileResult:
    """Load one file (or skip it when the ledger already has it)."""
    t0 = time.perf_counter()
    st = path.stat()
    known = _ledger(conn, rel)
    conn.commit()
    if known and known[3] == "loaded" and (known[1], known[2]) == (st.st_size, st.st_mtime_ns):
        return FileResult(rel, "skipped")  # unchanged since loaded: no need to hash it again
    if known is None:
        # A file never seen: try the fast path (hash while loading, checked before commit).
        done = _fast_load(conn, path, rel, spec, entry, day, st, t0)
        if done is not None:
            return done
    sha = bf.sha256_file(path)
    if known and known[0] == sha:
        return FileResult(rel, "skipped")
    if known and known[3] == "loaded":
        return FileResult(
            rel,
            "refused",
            error=f"{path}: changed after it was loaded (loaded sha256 {known[0]}, "
            f"now {sha}); not overwritten",
        )
    try:
        if entry.sha256 != sha:
            raise IngestError(
                f"{path}: manifest checksum mismatch (manifest sha256 {entry.sha256}, file {sha})"
            )
        bf.check_header(path, spec)
        loaded, rejected = _load(conn, path, rel, spec, entry, day, sha, st, t0)
    except IngestError as exc:
        conn.rollback()
        return reject(conn, rel, path, sha, str(exc), day)
    except psycopg.OperationalError as exc:
        raise IngestError(f"{path}: database unavailable ({exc})") from None
    except psycopg.Error as exc:
        # Unreadable CSV (bad encoding, quoting, column count) or a value the checks let
        # through but the table refuses: the whole file is rejected, nothing of it is kept.
        conn.rollback()
        return reject(conn, rel, path, sha, f"{path}: {_pg_message(exc)}", day)
    if loaded < 0:
        return FileResult(rel, "skipped")
    return FileResult(rel, "loaded", loaded, rejected, seconds=time.perf_counter() - t0)


def _pg_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    where = f" ({diag.context.strip()})" if diag.context else ""
    return f"rejected: {diag.message_primary or exc}{where}".replace("\n", " ")


def _load(
    conn: Conn,
    path: Path,
    rel: str,
    spec: bf.FileSpec,
    entry: bf.ManifestEntry,
    day: date | None,
    sha: str,
    st: Any,
    t0: float,
) -> tuple[int, int]:
    """Stage, validate, merge and record ``path`` in one transaction: (loaded, rejected)."""
    params: dict[str, object] = {"file": rel, "sha": sha}
    if day is not None:
        params["day_start"] = day_start(day)
    with conn.cursor() as cur:
        lock_file(cur, rel)
        # Another ingestor may have loaded it while this one waited for the lock.
        cur.execute("SELECT sha256 FROM batch_ledger WHERE path = %s AND status = 'loaded'", (rel,))
        if cur.fetchone():
            conn.rollback()
            return -1, 0
        cur.execute(staging.create_stage(spec))
        with cur.copy(staging.copy_stage(spec)) as copy, path.open("rb") as fh:
            while block := fh.read(COPY_CHUNK):
                copy.write(block)
        staged = cur.rowcount
        if staged != entry.rows:
            raise IngestError(
                f"{path}: {staged} rows but the manifest says {entry.rows} (truncated or padded)"
            )
        if plan := staging.join_plan(staged):
            cur.execute(plan)
        cur.execute("SELECT EXISTS (SELECT 1 FROM people)")
        people_known = bool(cur.fetchone()[0])  # type: ignore[index]
        cks = staging.checks(spec, people_known)
        loaded, fast, extra = _merge(cur, spec, cks, params)
        rejected = 0
        if loaded < staged:
            candidates = "true"
            if fast:
                # The strict checks are slow: run them only on the lines the fast form refused.
                cur.execute("SAVEPOINT bad")
                try:
                    cur.execute(staging.bad_lines(cks))
                    candidates = f"s.line IN (SELECT line FROM {staging.BAD})"
                except pg_errors.DataError:
                    cur.execute("ROLLBACK TO SAVEPOINT bad")
            cur.execute(staging.quarantine(cks, candidates), params)
            cur.execute(
                "SELECT count(DISTINCT line) FROM batch_quarantine WHERE file = %(file)s "
                "AND sha256 = %(sha)s AND line IS NOT NULL",
                params,
            )
            rejected = int(cur.fetchone()[0])  # type: ignore[index]
        events = staging.bed_events(spec, cks, extra, fast)
        if events:
            cur.execute(events, params)
        record(cur, rel, path, sha, st, "loaded", staged, loaded, rejected, None, t0, day)
    conn.commit()
    return loaded, rejected


def _merge(
    cur: Cursor,
    spec: bf.FileSpec,
    cks: list[staging.Check],
    params: dict[str, object],
) -> tuple[int, bool, str]:
    """Merge the valid rows: (rows merged, whether the fast form held, extra row filter).

    First the fast form (casts validate, big references as hash joins); a malformed value
    makes it raise, and the strict form (every check exception-free) runs instead. The same
    key twice in one file keeps its first line; the later ones are quarantined.
    """
    extra = "true"
    copied = _copy_merge(cur, spec, cks)
    if copied is not None:
        return copied, True, extra
    for fast in (True, False):
        cur.execute("SAVEPOINT merge")
        try:
            cur.execute(staging.merge(spec, cks, extra, fast), params)
        except pg_errors.DataError:
            cur.execute("ROLLBACK TO SAVEPOINT merge")
            continue
        except pg_errors.CardinalityViolation:
            cur.execute("ROLLBACK TO SAVEPOINT merge")
            cur.execute(staging.duplicates(spec, cks), params)
            extra = (
                "s.line NOT IN (SELECT line FROM batch_quarantine "
                "WHERE file = %(file)s AND sha256 = %(sha)s AND line IS NOT NULL)"
            )
            cur.execute(staging.merge(spec, cks, extra, False), params)
            return cur.rowcount, False, extra
        return cur.rowcount, fast, extra
    raise IngestError(f"{params['file']}: a value passed the checks but not the cast")


def _copy_merge(cur: Cursor, spec: bf.FileSpec, cks: list[staging.Check]) -> int | None:
    """Rows loaded by the COPY round trip, or None when it does not apply (see staging)."""
    statements = staging.copy_merge(spec, cks)
    if statements is None:
        return None
    out, into = statements
    cur.execute("SAVEPOINT copy_merge")
    try:
        # The valid rows leave the server once, spooled in memory up to a bound, then on disk.
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            with cur.copy(out) as copy:
                for block in copy:
                    spool.write(block)
            spool.seek(0)
            with cur.copy(into) as copy:
                while block := spool.read(COPY_CHUNK):
                    copy.write(block)
        return cur.rowcount
    except (pg_errors.DataError, pg_errors.IntegrityError):
        # A malformed value (the strict checks will name it) or a key already loaded
        # (merged with ON CONFLICT instead): nothing of this attempt stays.
        cur.execute("ROLLBACK TO SAVEPOINT copy_merge")
        return None
