"""Load parsed FHIR input into the ``fhir`` schema of the hospital database.

One transaction per batch of files: a resource whose content hash *and* view fingerprint are
unchanged is skipped entirely, neither flattened nor written (re-ingesting identical input
writes nothing; a changed ViewDefinition re-flattens what it covers); changed raw resources are
deleted and re-copied (one COPY for the batch, flattening interleaved with it so that the
server's JSONB work overlaps ours), and flattened rows are replaced per resource key (DELETE +
one COPY per table) so a changed resource never leaves orphaned child rows. Ingests are
serialised with an advisory lock so two loaders can't interleave the delete/insert of the same
resource.

Bad input never costs more than the resource that holds it (see :mod:`hospital.fhir.write`):
a resource whose flattening fails, or with a value that doesn't fit its column's type, is
quarantined with the column and the value in the reason, and the rest of the batch loads.
A file that can't be read (too large, not UTF-8, not JSON, nested too deep) is quarantined as
a whole (entry index NULL).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg

from hospital.errors import FhirError, IngestError
from hospital.fhir.bundles import (
    ParsedResource,
    ParseResult,
    Quarantined,
    clean_text,
    parse_text,
)
from hospital.fhir.flatten import ViewTable, shipped_views
from hospital.fhir.links import record_and_resolve, retire_missing
from hospital.fhir.write import (
    Writer,
    delete_resources,
    insert_quarantine,
    stored_state,
    view_hashes,
)
from hospital.settings import Settings

SUFFIXES: Final = (".json", ".ndjson", ".jsonl")
_LOCK_KEY: Final = 0x0F41_2004  # pg_advisory_xact_lock key of the FHIR loader
BATCH_FILES: Final = 64
# Larger files are quarantined unread: a whole file is parsed in memory.
MAX_FILE_BYTES: Final = 512 * 1024 * 1024
_EXAMPLES: Final = 3


@dataclass
class IngestReport:
    """What an ingest did.

    Every input entry is accounted for once: ``entries == resources + quarantined +
    delete_requests + superseded`` (``resources`` = inserted + updated + reflattened +
    unchanged; ``superseded``: an earlier copy of a resource in the same batch).
    ``unchanged`` resources had the same content hash and view fingerprint as stored;
    ``reflattened`` ones only a new view fingerprint. ``resolved``: stored resources whose
    unresolved references were rewritten because their target arrived; ``retired``: stored
    resources a complete export no longer holds.
    """

    files: int = 0
    entries: int = 0
    resources: int = 0
    inserted: int = 0
    updated: int = 0
    reflattened: int = 0
    unchanged: int = 0
    superseded: int = 0
    delete_requests: int = 0
    deleted: int = 0
    retired: int = 0
    resolved: int = 0
    unresolved: int = 0
    quarantined: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # The first few quarantine reasons ("file entry N: reason"), for the CLI to show.
    examples: list[str] = field(default_factory=list)

    @property
    def resources_per_s(self) -> float:
        return self.resources / self.seconds if self.seconds > 0 else 0.0

    @property
    def accounted(self) -> int:
        return self.resources + self.quarantined + self.delete_requests + self.superseded

    def add(self, other: IngestReport) -> None:
        for name in (
            "files",
            "entries",
            "resources",
            "inserted",
            "updated",
            "reflattened",
            "unchanged",
            "superseded",
            "delete_requests",
            "deleted",
            "retired",
            "resolved",
            "unresolved",
            "quarantined",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for table, n in other.rows.items():
            self.rows[table] = self.rows.get(table, 0) + n
        self.seconds += other.seconds
        self.examples.extend(other.examples[: max(0, _EXAMPLES - len(self.examples))])

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "entries": self.entries,
            "resources": self.resources,
            "inserted": self.inserted,
            "updated": self.updated,
            "reflattened": self.reflattened,
            "unchanged": self.unchanged,
            "superseded": self.superseded,
            "delete_requests": self.delete_requests,
            "deleted": self.deleted,
            "retired": self.retired,
            "resolved": self.resolved,
            "unresolved": self.unresolved,
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


def read_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> ParseResult:
    """Parse one file. Never raises: whatever makes the file unusable (too large, not UTF-8,
    not JSON, nested too deep, or anything unforeseen) becomes one quarantine record naming
    the file, so the other files of the batch still load."""
    source = clean_text(str(path))  # an undecodable file name must not break the COPY
    result = ParseResult()

    def reject(reason: str) -> ParseResult:
        result.quarantined.append(Quarantined(source, None, reason))
        return result

    try:
        size = path.stat().st_size
        if size > max_bytes:
            return reject(f"file too large: {size:,} bytes (limit {max_bytes:,})")
        data = path.read_bytes()
    except OSError as exc:
        return reject(f"unreadable file: {exc.strerror or exc}")
    try:
        # FHIR JSON is UTF-8; a byte-order mark is tolerated, anything else is refused.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return reject(f"wrong encoding: not UTF-8 ({exc.reason} at byte {exc.start})")
    try:
        return parse_text(text, source)
    except RecursionError:
        return reject("nesting too deep")
    except MemoryError:
        return reject("file too large to parse in memory")
    except Exception as exc:  # last resort: one bad file must not stop the batch
        return reject(f"unparseable file: {type(exc).__name__}: {exc}")


def read_files(files: Sequence[Path], max_bytes: int = MAX_FILE_BYTES) -> ParseResult:
    """Parse files; an unreadable file becomes a quarantine entry, not an error."""
    result = ParseResult()
    for path in files:
        result.extend(read_file(path, max_bytes))
    return result


def latest_only(resources: Iterable[ParsedResource]) -> list[ParsedResource]:
    """One resource per (type, id): the last one read wins, as a later message would."""
    latest: dict[tuple[str, str], ParsedResource] = {}
    for r in resources:
        latest.pop((r.resource_type, r.id), None)
        latest[(r.resource_type, r.id)] = r
    return list(latest.values())


# --- database ---------------------------------------------------------------------------------

# Raw resources are mostly a few kB, so PostgreSQL compresses them into TOAST: with lz4 (where
# the server has it) instead of the default pglz, the COPY costs the server ~25% less CPU. Only
# the storage format of new values changes (reads are transparent); no row changes.
_LZ4_TOAST = """
SELECT set_config('default_toast_compression', 'lz4', true)
FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)
"""


def load(
    conn: psycopg.Connection[Any],
    parsed: ParseResult,
    tables: Sequence[ViewTable] | None = None,
) -> IngestReport:
    """Write one parse result in one transaction (committed on success)."""
    started = time.perf_counter()
    views = tuple(tables) if tables is not None else shipped_views()
    fingerprints = view_hashes(views)
    resources = latest_only(parsed.resources)
    report = IngestReport(
        entries=parsed.entries,
        superseded=len(parsed.resources) - len(resources),
        delete_requests=len(parsed.deleted),
    )
    quarantined: list[Quarantined] = list(parsed.quarantined)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute("SET LOCAL TIME ZONE 'UTC'")  # FHIR times without offset are taken as UTC
        cur.execute(_LZ4_TOAST)
        stored = stored_state(cur, resources)
        changed = [
            r
            for r in resources
            if stored.get((r.resource_type, r.id))
            != (r.content_hash, fingerprints.get(r.resource_type, ""))
        ]
        report.unchanged = len(resources) - len(changed)
        writer = Writer(cur, views, fingerprints, {k: v[0] for k, v in stored.items()})
        written = writer.write(changed) if changed else []
        for r in written:
            before = stored.get((r.resource_type, r.id))
            if before is None:
                report.inserted += 1
            elif before[0] == r.content_hash:
                report.reflattened += 1
            else:
                report.updated += 1
        # Entries of this input stopped at the write (a later failure to rewrite an already
        # stored dependent is recorded too, but is not an entry of this input).
        quarantined.extend(writer.quarantined)
        report.quarantined = len(quarantined)
        report.resolved, report.unresolved = record_and_resolve(cur, writer, written)
        quarantined.extend(writer.quarantined[report.quarantined - len(parsed.quarantined) :])

        if parsed.deleted:
            report.deleted += delete_resources(cur, views, parsed.deleted)
        if parsed.complete_patients:
            report.retired = retire_missing(cur, views, parsed.complete_patients)

        report.rows = writer.rows
        report.resources = report.unchanged + len(written)
        report.examples = [
            f"{q.source}{'' if q.entry_index is None else f' entry {q.entry_index}'}: {q.reason}"
            for q in quarantined[:_EXAMPLES]
        ]
        if quarantined:
            insert_quarantine(cur, quarantined)
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
    conn: psycopg.Connection[Any],
    files: Sequence[Path],
    batch_files: int = BATCH_FILES,
    max_bytes: int = MAX_FILE_BYTES,
) -> IngestReport:
    """Parse and load ``files`` in batches of ``batch_files`` (one transaction each)."""
    total = IngestReport()
    for start in range(0, len(files), max(1, batch_files)):
        began = time.perf_counter()
        batch = files[start : start + batch_files]
        try:
            with _gc_paused():
                parsed = read_files(batch, max_bytes)
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


def check_views() -> None:
    """Compile the shipped views (raises FhirError on a broken package)."""
    if not shipped_views():
        raise FhirError("no shipped views")
