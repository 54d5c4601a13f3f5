"""Load parsed FHIR input into the ``fhir`` schema of the hospital database.

One transaction per batch of files: a resource whose content hash is unchanged is skipped
entirely, neither flattened nor written (re-ingesting identical input writes nothing); changed
raw resources are deleted and re-copied (one COPY for the batch, flattening interleaved with
it so that the server's JSONB work overlaps ours), and flattened rows are replaced per
resource key (DELETE + one COPY per table) so a changed resource never leaves orphaned child
rows. Ingests are serialised with an advisory lock so two loaders can't interleave the
delete/insert of the same resource.
"""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from hospital.errors import FhirError, IngestError
from hospital.fhir.bundles import ParsedResource, ParseResult, Quarantined, parse_text
from hospital.fhir.flatten import ViewTable, flatten, shipped_views
from hospital.settings import Settings

SUFFIXES: Final = (".json", ".ndjson", ".jsonl")
_LOCK_KEY: Final = 0x0F41_2004  # pg_advisory_xact_lock key of the FHIR loader
BATCH_FILES: Final = 64
# Resources per step when flattening overlaps the raw COPY (~150 kB of JSON, which the
# socket buffers hold while the server works on it).
_INTERLEAVE_CHUNK: Final = 64


@dataclass
class IngestReport:
    """What an ingest did. ``unchanged`` resources had the same content hash as stored."""

    files: int = 0
    resources: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def resources_per_s(self) -> float:
        return self.resources / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: IngestReport) -> None:
        self.files += other.files
        self.resources += other.resources
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.quarantined += other.quarantined
        for table, n in other.rows.items():
            self.rows[table] = self.rows.get(table, 0) + n
        self.seconds += other.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "resources": self.resources,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "quarantined": self.quarantined,
            "rows": dict(sorted(self.rows.items())),
            "seconds": round(self.seconds, 3),
        }


def discover(paths: Iterable[Path]) -> list[Path]:
    """Input files: the given files, and every .json/.ndjson file under given folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith(".")
            )
        elif path.is_file():
            found.append(path)
        else:
            raise IngestError(f"{path}: no such file or folder")
    return found


def read_files(files: Sequence[Path]) -> ParseResult:
    """Parse files; an unreadable file becomes a quarantine entry, not an error."""
    result = ParseResult()
    for path in files:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.quarantined.append(Quarantined(source, None, f"unreadable file: {exc}"))
            continue
        result.extend(parse_text(text, source))
    return result


def latest_only(resources: Iterable[ParsedResource]) -> list[ParsedResource]:
    """One resource per (type, id): the last one read wins, as a later message would."""
    latest: dict[tuple[str, str], ParsedResource] = {}
    for r in resources:
        latest.pop((r.resource_type, r.id), None)
        latest[(r.resource_type, r.id)] = r
    return list(latest.values())


# --- database ---------------------------------------------------------------------------------

_RAW_COLUMNS: Final = (
    "resource_type",
    "id",
    "version_id",
    "content_hash",
    "resource",
    "source_file",
    "entry_index",
    "first_seen_at",
)

# Changed resources are deleted and re-copied rather than upserted: COPY straight into the
# table is the fastest path, and first_seen_at is carried over from the deleted row.
_DELETE_RAW = """
DELETE FROM fhir.resource r
USING unnest(%s::text[], %s::text[]) AS k(resource_type, id)
WHERE r.resource_type = k.resource_type AND r.id = k.id
RETURNING r.resource_type, r.id, r.first_seen_at
"""

# Raw resources are mostly a few kB, so PostgreSQL compresses them into TOAST: with lz4 (where
# the server has it) instead of the default pglz, the COPY costs the server ~25% less CPU. Only
# the storage format of new values changes (reads are transparent); no row changes.
_LZ4_TOAST = """
SELECT set_config('default_toast_compression', 'lz4', true)
FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)
"""

_QUARANTINE = """
INSERT INTO fhir.quarantine (source_file, entry_index, resource_type, resource_id, reason, payload)
SELECT %s, %s, %s, %s, %s, %s
WHERE NOT EXISTS (
    SELECT 1 FROM fhir.quarantine
    WHERE source_file = %s AND entry_index IS NOT DISTINCT FROM %s AND reason = %s
)
"""


def _stored_hashes(
    cur: psycopg.Cursor[Any], resources: Sequence[ParsedResource]
) -> dict[tuple[str, str], str]:
    if not resources:
        return {}
    cur.execute(
        "SELECT r.resource_type, r.id, r.content_hash FROM fhir.resource r "
        "JOIN unnest(%s::text[], %s::text[]) AS k(resource_type, id) "
        "USING (resource_type, id)",
        ([r.resource_type for r in resources], [r.id for r in resources]),
    )
    return {(t, i): h for t, i, h in cur.fetchall()}


def _copy_rows(
    cur: psycopg.Cursor[Any], table: sql.Composable, columns: Sequence[str], rows: Iterable[Any]
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        table, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _copy_raw_and_flatten(
    cur: psycopg.Cursor[Any],
    changed: Sequence[ParsedResource],
    first_seen: Mapping[tuple[str, str], Any],
    now: Any,
    views: Sequence[ViewTable],
) -> dict[str, list[tuple[Any, ...]]]:
    """COPY ``changed`` into ``fhir.resource`` and return their flattened rows.

    Flattening is interleaved with the COPY, chunk by chunk: while the server parses the JSONB
    of the chunk just sent (its own process, the other core), this one flattens the chunk. The
    rows are the same as ``flatten(changed, views)`` in one go.
    """
    rows: dict[str, list[tuple[Any, ...]]] = {}
    statement = sql.SQL("COPY fhir.resource ({}) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in _RAW_COLUMNS)
    )
    with cur.copy(statement) as copy:
        for start in range(0, len(changed), _INTERLEAVE_CHUNK):
            chunk = changed[start : start + _INTERLEAVE_CHUNK]
            for r in chunk:
                copy.write_row(
                    (
                        r.resource_type,
                        r.id,
                        r.version_id,
                        r.content_hash,
                        r.canonical_json,
                        r.source,
                        r.entry_index,
                        first_seen.get((r.resource_type, r.id), now),
                    )
                )
            for table, table_rows in flatten((r.resource for r in chunk), views).items():
                rows.setdefault(table, []).extend(table_rows)
    return rows


def _replace_rows(
    cur: psycopg.Cursor[Any],
    tables: Sequence[ViewTable],
    keys_by_type: dict[str, list[str]],
    rows: dict[str, list[tuple[Any, ...]]],
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in tables:
        keys = keys_by_type.get(t.resource_type)
        if not keys:
            continue
        target = sql.Identifier("fhir", t.table)
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                target, sql.Identifier(t.key_column)
            ),
            (keys,),
        )
        table_rows = rows.get(t.table, [])
        if table_rows:
            _copy_rows(cur, target, t.columns, table_rows)
        counts[t.table] = len(table_rows)
    return counts


def load(
    conn: psycopg.Connection[Any],
    parsed: ParseResult,
    tables: Sequence[ViewTable] | None = None,
) -> IngestReport:
    """Write one parse result in one transaction (committed on success)."""
    started = time.perf_counter()
    views = tuple(tables) if tables is not None else shipped_views()
    resources = latest_only(parsed.resources)
    report = IngestReport(resources=len(resources), quarantined=len(parsed.quarantined))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute("SET LOCAL TIME ZONE 'UTC'")  # FHIR times without offset are taken as UTC
        cur.execute(_LZ4_TOAST)
        stored = _stored_hashes(cur, resources)
        changed = [r for r in resources if stored.get((r.resource_type, r.id)) != r.content_hash]
        report.updated = sum(1 for r in changed if (r.resource_type, r.id) in stored)
        report.inserted = len(changed) - report.updated
        report.unchanged = len(resources) - len(changed)

        if changed:
            first_seen: dict[tuple[str, str], Any] = {}
            updated = [r for r in changed if (r.resource_type, r.id) in stored]
            if updated:
                cur.execute(
                    _DELETE_RAW,
                    ([r.resource_type for r in updated], [r.id for r in updated]),
                )
                first_seen = {(t, i): seen for t, i, seen in cur.fetchall()}
            cur.execute("SELECT now()")
            now = cur.fetchone()[0]  # type: ignore[index]
            rows = _copy_raw_and_flatten(cur, changed, first_seen, now, views)
            keys_by_type: dict[str, list[str]] = {}
            for r in changed:
                keys_by_type.setdefault(r.resource_type, []).append(r.id)
            report.rows = _replace_rows(cur, views, keys_by_type, rows)

        if parsed.deleted:
            deleted_by_type: dict[str, list[str]] = {}
            for rtype, rid in parsed.deleted:
                deleted_by_type.setdefault(rtype, []).append(rid)
            for rtype, ids in deleted_by_type.items():
                cur.execute(
                    "DELETE FROM fhir.resource WHERE resource_type = %s AND id = ANY(%s)",
                    (rtype, ids),
                )
                report.deleted += cur.rowcount
            _replace_rows(cur, views, deleted_by_type, {})

        if parsed.quarantined:
            cur.executemany(
                _QUARANTINE,
                [
                    (
                        q.source,
                        q.entry_index,
                        q.resource_type,
                        q.resource_id,
                        q.reason,
                        q.payload,
                        q.source,
                        q.entry_index,
                        q.reason,
                    )
                    for q in parsed.quarantined
                ],
            )
    report.seconds = time.perf_counter() - started
    return report


def connect(settings: Settings) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(settings.dsn("hospital", "hospital_app"))
    except psycopg.Error as exc:
        raise IngestError(f"cannot connect to the hospital database: {exc}") from exc


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: parsing builds millions of small acyclic dicts, and the collector
    would rescan them again and again (a third of parse time); refcounting still frees them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def ingest_files(
    conn: psycopg.Connection[Any], files: Sequence[Path], batch_files: int = BATCH_FILES
) -> IngestReport:
    """Parse and load ``files`` in batches of ``batch_files`` (one transaction each)."""
    total = IngestReport()
    for start in range(0, len(files), max(1, batch_files)):
        began = time.perf_counter()
        batch = files[start : start + batch_files]
        try:
            with _gc_paused():
                parsed = read_files(batch)
                report = load(conn, parsed)
        except psycopg.Error as exc:
            raise IngestError(
                f"loading {len(batch)} file(s) from {batch[0]} failed: {exc}"
            ) from exc
        report.files = len(batch)
        report.seconds = time.perf_counter() - began  # parse time counts too
        total.add(report)
    return total


def ingest_paths(settings: Settings, paths: Sequence[Path]) -> IngestReport:
    """``hospital fhir ingest``: files or folders into the ``fhir`` schema."""
    files = discover(paths)
    if not files:
        raise IngestError("no .json/.ndjson files found in " + ", ".join(map(str, paths)))
    with connect(settings) as conn:
        return ingest_files(conn, files)


# --- drop-folder watch ------------------------------------------------------------------------


def inbox_path(settings: Settings) -> Path:
    return settings.lake_path / "fhir" / "inbox"


def _ready_files(inbox: Path) -> list[Path]:
    # Writers should write elsewhere (or to a dot-file) and rename into the inbox; dot-files
    # and other suffixes are ignored so a half-written file is never read.
    return [
        p
        for p in sorted(inbox.iterdir())
        if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith(".")
    ]


def watch(
    settings: Settings,
    inbox: Path | None = None,
    poll_seconds: float = 2.0,
    max_polls: int | None = None,
    on_report: Callable[[list[Path], IngestReport], None] | None = None,
) -> IngestReport:
    """Ingest files dropped into ``inbox`` (default ``lake/fhir/inbox``) until interrupted.

    Each ingested file moves to ``processed/`` next to the inbox (quarantined entries are in
    ``fhir.quarantine``). ``max_polls`` bounds the loop (tests, cron-style runs).
    """
    folder = inbox or inbox_path(settings)
    folder.mkdir(parents=True, exist_ok=True)
    done = folder.parent / "processed"
    done.mkdir(parents=True, exist_ok=True)
    total = IngestReport()
    polls = 0
    with connect(settings) as conn:
        while max_polls is None or polls < max_polls:
            polls += 1
            files = _ready_files(folder)
            if files:
                report = ingest_files(conn, files)
                for path in files:
                    shutil.move(str(path), str(done / path.name))
                total.add(report)
                if on_report is not None:
                    on_report(files, report)
            elif max_polls is None or polls < max_polls:
                time.sleep(poll_seconds)
    return total


def check_views() -> None:
    """Compile the shipped views (raises FhirError on a broken package)."""
    if not shipped_views():
        raise FhirError("no shipped views")
