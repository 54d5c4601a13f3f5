"""Ingest batch drops: COPY each new file into staging, validate in SQL, merge, record.

One file = one transaction: staging (a TEMP table dropped at commit), quarantine of bad rows,
merge of the good ones, bed events, the ledger row and the metrics commit together, so a crash
at any point leaves the file either wholly loaded and recorded or not touched at all; a re-run
picks it up again. The ledger makes a replay a no-op and refuses a changed file.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from hospital.batch import fast as fastpath
from hospital.batch import files as bf
from hospital.batch import staging
from hospital.clock import day_start
from hospital.errors import IngestError
from hospital.settings import Settings

COPY_CHUNK = 1 << 20
SPOOL_BYTES = 256 << 20  # valid rows kept in memory between COPY out and COPY in
LOCK_NAMESPACE = 0x0BA7C4  # advisory lock class of batch files (first key)


@dataclass
class FileResult:
    path: str
    status: str  # loaded | skipped | rejected | refused
    rows_loaded: int = 0
    rows_rejected: int = 0
    error: str | None = None
    seconds: float = 0.0


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)

    def _count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def loaded(self) -> int:
        return self._count("loaded")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def rejected(self) -> int:
        return self._count("rejected") + self._count("refused")

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def errors(self) -> list[str]:
        return [f.error for f in self.files if f.error]

    def as_dict(self) -> dict[str, Any]:
        return {
            "files_loaded": self.loaded,
            "files_skipped": self.skipped,
            "files_rejected": self.rejected,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_rejected,
            "errors": self.errors,
        }


Conn = psycopg.Connection[tuple[Any, ...]]


def connect(settings: Settings) -> Conn:
    conn = psycopg.connect(settings.dsn("hospital", "hospital_app"))
    # Staging lives in session-local buffers: give them room before the first TEMP table.
    conn.execute(f"SET temp_buffers = '{settings.batch_temp_buffers_mb}MB'")
    conn.execute("SET TimeZone = 'UTC'")
    # Room to sort a file by key in memory (the merge fills the primary key index in order).
    conn.execute(f"SET work_mem = '{settings.batch_work_mem_mb}MB'")
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
        return [_reject_once(conn, f"{drop.name}/{bf.MANIFEST}", target, str(exc), None)]
    results = []
    expected = {s.name for s in bf.specs_for(drop.name)}
    for spec in bf.specs_for(drop.name):
        path = drop / spec.name
        entry = manifest.files.get(spec.name)
        rel = f"{drop.name}/{spec.name}"
        if entry is None:
            if path.exists():
                results.append(
                    _reject_once(conn, rel, path, f"{path}: not listed in the manifest", day)
                )
            continue
        if not path.exists():
            msg = f"{path}: listed in the manifest but missing"
            results.append(_reject_once(conn, rel, None, msg, day))
            continue
        results.append(ingest_file(conn, path, rel, spec, entry, day))
    for extra in sorted(drop.glob("*.csv")):
        if extra.name not in expected:
            msg = f"{extra}: not a batch file of this drop"
            results.append(_reject_once(conn, f"{drop.name}/{extra.name}", extra, msg, day))
    return results


def _ledger(conn: Conn, rel: str) -> tuple[str, int, int, str] | None:
    row = conn.execute(
        "SELECT sha256, size_bytes, mtime_ns, status FROM batch_ledger WHERE path = %s", (rel,)
    ).fetchone()
    return (row[0], row[1], row[2], row[3]) if row else None


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
        return _reject(conn, rel, path, sha, str(exc), day)
    except psycopg.OperationalError as exc:
        raise IngestError(f"{path}: database unavailable ({exc})") from None
    except psycopg.Error as exc:
        # Unreadable CSV (bad encoding, quoting, column count) or a value the checks let
        # through but the table refuses: the whole file is rejected, nothing of it is kept.
        conn.rollback()
        return _reject(conn, rel, path, sha, f"{path}: {_pg_message(exc)}", day)
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
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, rel))
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
        # A fresh temp table has no statistics: the planner would guess a few rows and probe
        # big reference tables row by row; hash joins are right for any file size here.
        cur.execute("SET LOCAL enable_nestloop = off")
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
        _record(cur, rel, path, sha, st, "loaded", staged, loaded, rejected, None, t0, day)
    conn.commit()
    return loaded, rejected


def _fast_load(
    conn: Conn,
    path: Path,
    rel: str,
    spec: bf.FileSpec,
    entry: bf.ManifestEntry,
    day: date | None,
    st: Any,
    t0: float,
) -> FileResult | None:
    """Load a clean file of new records in one pass (see :mod:`hospital.batch.fast`).

    None when the fast path does not apply or gave up: its transaction is rolled back whole
    and the strict path runs from scratch, so every refusal keeps its usual message.
    """
    try:
        bf.check_header(path, spec)
    except IngestError:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM people)")
            statements = fastpath.build(spec, bool(cur.fetchone()[0]))  # type: ignore[index]
            if statements is None:
                conn.rollback()
                return None
            cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, rel))
            cur.execute("SELECT 1 FROM batch_ledger WHERE path = %s", (rel,))
            if cur.fetchone():  # another ingestor got there first: let the usual path decide
                conn.rollback()
                return None
            cur.execute(statements.create)
            digest = hashlib.sha256()
            with cur.copy(statements.copy) as copy:
                for block in fastpath.hashed_blocks(path, digest, COPY_CHUNK):
                    copy.write(block)
            staged = cur.rowcount
            sha = digest.hexdigest()
            if staged != entry.rows or sha != entry.sha256:
                conn.rollback()
                return None
            # A fresh temp table has no statistics; hash joins suit any file size here.
            cur.execute("SET LOCAL enable_nestloop = off")
            cur.execute(statements.any_bad)
            if cur.fetchone()[0]:  # type: ignore[index]
                conn.rollback()
                return None
            cur.execute(statements.insert)
            loaded = cur.rowcount
            _record(cur, rel, path, sha, st, "loaded", staged, loaded, 0, None, t0, day)
        conn.commit()
    except psycopg.OperationalError as exc:
        raise IngestError(f"{path}: database unavailable ({exc})") from None
    except psycopg.Error:
        # A value the typed COPY refused, a key already loaded or repeated: strict path.
        conn.rollback()
        return None
    return FileResult(rel, "loaded", loaded, 0, seconds=time.perf_counter() - t0)


def _merge(
    cur: psycopg.Cursor[tuple[Any, ...]],
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


def _copy_merge(
    cur: psycopg.Cursor[tuple[Any, ...]], spec: bf.FileSpec, cks: list[staging.Check]
) -> int | None:
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


def _record(
    cur: psycopg.Cursor[tuple[Any, ...]],
    rel: str,
    path: Path | None,
    sha: str,
    st: Any,
    status: str,
    staged: int,
    loaded: int,
    rejected: int,
    error: str | None,
    t0: float,
    day: date | None,
) -> None:
    cur.execute(
        "INSERT INTO batch_ledger (path, drop_name, sha256, size_bytes, mtime_ns, status, "
        "rows_staged, rows_loaded, rows_rejected, error, seconds) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (path) DO UPDATE SET sha256 = EXCLUDED.sha256, "
        "size_bytes = EXCLUDED.size_bytes, mtime_ns = EXCLUDED.mtime_ns, "
        "status = EXCLUDED.status, rows_staged = EXCLUDED.rows_staged, "
        "rows_loaded = EXCLUDED.rows_loaded, rows_rejected = EXCLUDED.rows_rejected, "
        "error = EXCLUDED.error, seconds = EXCLUDED.seconds, ingested_at = now()",
        (
            rel,
            rel.split("/", 1)[0],
            sha,
            st.st_size if st else 0,
            st.st_mtime_ns if st else 0,
            status,
            staged,
            loaded,
            rejected,
            error,
            time.perf_counter() - t0,
        ),
    )
    cur.execute(
        "INSERT INTO pipeline_metrics (path, metric, value, sim_day) VALUES "
        "('batch', 'rows_loaded', %(l)s, %(d)s), ('batch', 'rows_quarantined', %(r)s, %(d)s), "
        "('batch', 'files', 1, %(d)s), ('batch', 'files_rejected', %(x)s, %(d)s)",
        {"l": loaded, "r": rejected, "d": day, "x": 1 if status == "rejected" else 0},
    )


def _reject(
    conn: Conn, rel: str, path: Path | None, sha: str, reason: str, day: date | None
) -> FileResult:
    """Record a whole file as rejected: ledger row (status rejected) and one quarantine row."""
    t0 = time.perf_counter()
    st = path.stat() if path is not None and path.exists() else None
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, rel))
        cur.execute("SELECT status FROM batch_ledger WHERE path = %s", (rel,))
        row = cur.fetchone()
        if row and row[0] == "loaded":
            conn.rollback()
            return FileResult(rel, "refused", error=reason)
        cur.execute(
            "INSERT INTO batch_quarantine (file, sha256, reason) VALUES (%s, %s, %s)",
            (rel, sha, reason),
        )
        _record(cur, rel, path, sha, st, "rejected", 0, 0, 0, reason, t0, day)
    conn.commit()
    return FileResult(rel, "rejected", error=reason)


def _reject_once(
    conn: Conn, rel: str, path: Path | None, reason: str, day: date | None
) -> FileResult:
    """Reject ``rel`` unless the ledger already holds this very rejection."""
    sha = bf.sha256_file(path) if path is not None and path.exists() else "missing"
    known = _ledger(conn, rel)
    conn.commit()
    if known and known[0] == sha and known[3] == "rejected":
        return FileResult(rel, "skipped")
    if known and known[3] == "loaded":
        return FileResult(rel, "refused", error=reason)
    return _reject(conn, rel, path, sha, reason, day)
