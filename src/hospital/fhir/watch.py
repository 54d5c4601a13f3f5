"""``hospital fhir watch``: ingest every bundle / NDJSON file dropped into the inbox.

Layout under ``lake/fhir/`` (or beside a given ``--inbox``)::

    inbox/      writers rename finished files in here (dot-files are ignored: half-written)
    processed/  files whose entries were all loaded or quarantined per entry
    rejected/   files that could not be read at all (too large, not UTF-8, not JSON, ...),
                each with ``<name>.reason.txt``; the reason is in ``fhir.quarantine`` too

Idempotent across restarts: a file is moved only after its batch committed, and loading is
idempotent (content hashes), so a file ingested but not yet moved when the worker was killed
is simply loaded again (nothing changes) and moved. SIGTERM / SIGINT (via ``stop``) end the
loop after the batch in hand: the worker exits cleanly, never half-way through a batch.
Each batch appends ``files``, ``rows_applied``, ``quarantined`` and ``rejected`` to
``pipeline_metrics`` (path ``fhir``).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from hospital.errors import IngestError
from hospital.fhir.bundles import ParseResult
from hospital.fhir.load import (
    BATCH_FILES,
    MAX_FILE_BYTES,
    SUFFIXES,
    IngestReport,
    connect,
    load,
    read_file,
)
from hospital.settings import Settings


def inbox_path(settings: Settings) -> Path:
    return settings.lake_path / "fhir" / "inbox"


@dataclass
class WatchReport:
    """What a watch run did: files moved to processed/ and rejected/, and the ingest totals."""

    processed: list[Path] = field(default_factory=list)
    rejected: list[Path] = field(default_factory=list)
    ingest: IngestReport = field(default_factory=IngestReport)


def ready_files(inbox: Path) -> list[Path]:
    """Files to ingest, oldest name first. Writers write elsewhere (or to a dot-file) and
    rename into the inbox; dot-files and other suffixes are ignored so a half-written file is
    never read."""
    return [
        p
        for p in sorted(inbox.iterdir())
        if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith(".")
    ]


def _unreadable(parsed: ParseResult) -> str | None:
    """The reason when the whole file could not be read (one file-level quarantine record)."""
    if parsed.resources or parsed.deleted or len(parsed.quarantined) != 1:
        return None
    only = parsed.quarantined[0]
    return only.reason if only.entry_index is None else None


def _move(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder``; a name already there (yesterday's export) gets a suffix."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.stem}.{n}{path.suffix}"
        n += 1
    shutil.move(str(path), str(target))
    return target


def _record_metrics(conn: psycopg.Connection[Any], report: IngestReport, rejected: int) -> None:
    rows = [
        ("files", float(report.files)),
        ("rows_applied", float(report.inserted + report.updated + report.reflattened)),
        ("quarantined", float(report.quarantined)),
        ("rejected", float(rejected)),
    ]
    with conn.transaction():
        conn.cursor().executemany(
            "INSERT INTO pipeline_metrics (path, metric, value) VALUES ('fhir', %s, %s)", rows
        )


def process_batch(
    conn: psycopg.Connection[Any],
    files: Sequence[Path],
    processed_dir: Path,
    rejected_dir: Path,
    max_bytes: int = MAX_FILE_BYTES,
) -> WatchReport:
    """Ingest ``files`` in one transaction, then move each to processed/ or rejected/."""
    out = WatchReport()
    parsed = ParseResult()
    reasons: dict[Path, str] = {}
    for path in files:
        one = read_file(path, max_bytes)
        reason = _unreadable(one)
        if reason is not None:
            reasons[path] = reason
        parsed.extend(one)
    try:
        report = load(conn, parsed)
    except psycopg.Error as exc:
        raise IngestError(f"loading {len(files)} file(s) from {files[0]} failed: {exc}") from exc
    report.files = len(files)
    # Only now (committed) are the files moved: a crash before this line re-ingests them.
    for path in files:
        if not path.exists():
            continue  # taken by another watcher of the same inbox: loading was idempotent
        if path in reasons:
            target = _move(path, rejected_dir)
            target.with_name(target.name + ".reason.txt").write_text(
                reasons[path] + "\n", encoding="utf-8"
            )
            out.rejected.append(target)
        else:
            out.processed.append(_move(path, processed_dir))
    out.ingest = report
    # Figures for the dashboard only: never a reason to stop ingesting.
    with contextlib.suppress(psycopg.Error):
        _record_metrics(conn, report, len(reasons))
    return out


def watch(
    settings: Settings,
    inbox: Path | None = None,
    poll_seconds: float = 2.0,
    once: bool = False,
    stop: threading.Event | None = None,
    max_polls: int | None = None,
    on_batch: Callable[[WatchReport], None] | None = None,
    batch_files: int = BATCH_FILES,
) -> WatchReport:
    """Ingest files dropped into ``inbox`` (default ``lake/fhir/inbox``) until ``stop`` is set.

    ``once``: process what is there now and return. ``max_polls`` bounds the loop (tests).
    """
    folder = inbox or inbox_path(settings)
    folder.mkdir(parents=True, exist_ok=True)
    processed_dir, rejected_dir = folder.parent / "processed", folder.parent / "rejected"
    halt = stop or threading.Event()
    total = WatchReport()
    polls = 0
    with connect(settings) as conn:
        while not halt.is_set():
            polls += 1
            files = ready_files(folder)
            for start in range(0, len(files), max(1, batch_files)):
                if halt.is_set():
                    break
                batch = process_batch(
                    conn, files[start : start + batch_files], processed_dir, rejected_dir
                )
                total.processed.extend(batch.processed)
                total.rejected.extend(batch.rejected)
                total.ingest.add(batch.ingest)
                if on_batch is not None:
                    on_batch(batch)
            if once or (max_polls is not None and polls >= max_polls):
                break
            if not files:
                halt.wait(poll_seconds)
    return total
