"""The ingestion ledger: what happened to each file (results, ledger rows, metrics, rejections).

``batch_ledger`` holds one row per file path under ``lake/batch`` (sha256, size, mtime, status,
row counts); ``pipeline_metrics`` gets the figures of every file in the same transaction as its
load, and a rejected file gets one ``batch_quarantine`` row naming the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from hospital.batch import files as bf

LOCK_NAMESPACE = 0x0BA7C4  # advisory lock class of batch files (first key)

Conn = psycopg.Connection[tuple[Any, ...]]
Cursor = psycopg.Cursor[tuple[Any, ...]]


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


def lookup(conn: Conn, rel: str) -> tuple[str, int, int, str] | None:
    """(sha256, size, mtime_ns, status) the ledger holds for ``rel``, if any."""
    row = conn.execute(
        "SELECT sha256, size_bytes, mtime_ns, status FROM batch_ledger WHERE path = %s", (rel,)
    ).fetchone()
    return (row[0], row[1], row[2], row[3]) if row else None


def lock_file(cur: Cursor, rel: str) -> None:
    """Hold the file's advisory lock until the transaction ends (one ingestor per file)."""
    cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, rel))


def record(
    cur: Cursor,
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
    """The file's ledger row and metrics, in the caller's transaction."""
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


def reject(
    conn: Conn, rel: str, path: Path | None, sha: str, reason: str, day: date | None
) -> FileResult:
    """Record a whole file as rejected: ledger row (status rejected) and one quarantine row."""
    t0 = time.perf_counter()
    st = path.stat() if path is not None and path.exists() else None
    with conn.cursor() as cur:
        lock_file(cur, rel)
        cur.execute("SELECT status FROM batch_ledger WHERE path = %s", (rel,))
        row = cur.fetchone()
        if row and row[0] == "loaded":
            conn.rollback()
            return FileResult(rel, "refused", error=reason)
        cur.execute(
            "INSERT INTO batch_quarantine (file, sha256, reason) VALUES (%s, %s, %s)",
            (rel, sha, reason),
        )
        record(cur, rel, path, sha, st, "rejected", 0, 0, 0, reason, t0, day)
    conn.commit()
    return FileResult(rel, "rejected", error=reason)


def reject_once(
    conn: Conn, rel: str, path: Path | None, reason: str, day: date | None
) -> FileResult:
    """Reject ``rel`` unless the ledger already holds this very rejection."""
    sha = bf.sha256_file(path) if path is not None and path.exists() else "missing"
    known = lookup(conn, rel)
    conn.commit()
    if known and known[0] == sha and known[3] == "rejected":
        return FileResult(rel, "skipped")
    if known and known[3] == "loaded":
        return FileResult(rel, "refused", error=reason)
    return reject(conn, rel, path, sha, reason, day)
