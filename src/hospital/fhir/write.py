"""Write resources and their flattened rows, one bad resource at a time.

:class:`Writer` copies a list of resources (raw JSONB + flattened rows) inside a savepoint. On
the normal path that is one attempt for the whole batch. When it fails it narrows the failure
down to the resources at fault rather than losing the batch:

- a resource whose flattening raises is quarantined (stage ``flatten``) and the attempt is
  repeated without it (rows already computed are reused);
- when PostgreSQL refuses a value (``invalid input syntax for type date``, numbers out of
  range, ...), the list is split in halves and each half retried, down to the single
  resource, which is quarantined (stage ``load``) with the table, column and value PostgreSQL
  named. k bad resources among n cost about k·log2(n) extra small attempts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import psycopg
from psycopg import errors, sql

from hospital.fhir.bundles import ParsedResource, Quarantined, clean_text
from hospital.fhir.flatten import ViewTable, views_by_type

Key = tuple[str, str]
Rows = dict[str, list[tuple[Any, ...]]]

RAW_COLUMNS: Final = (
    "resource_type",
    "id",
    "version_id",
    "content_hash",
    "view_hash",
    "full_url",
    "resource",
    "source_file",
    "entry_index",
    "first_seen_at",
)
# Resources per step when flattening overlaps the raw COPY (~150 kB of JSON, which the
# socket buffers hold while the server works on it).
_INTERLEAVE_CHUNK: Final = 64
# Longer fullUrls are not stored (they could not be indexed; no real reference is that long).
_MAX_FULL_URL: Final = 1024
# What PostgreSQL raises for a value that does not fit (class 22, 23) or can't be stored
# (54000: e.g. an index row too large): the resource's fault, not the batch's.
_VALUE_ERRORS: Final = (errors.DataError, errors.IntegrityError, errors.ProgramLimitExceeded)
_COPY_CONTEXT_RE: Final = re.compile(r'COPY (\w+), line \d+, column (\w+): "(.*)"', re.S)

_DELETE_RAW = """
DELETE FROM fhir.resource r
USING unnest(%s::text[], %s::text[]) AS k(resource_type, id)
WHERE r.resource_type = k.resource_type AND r.id = k.id
RETURNING r.resource_type, r.id, r.first_seen_at
"""

_QUARANTINE = """
INSERT INTO fhir.quarantine
    (source_file, entry_index, resource_type, resource_id, reason, payload, stage)
SELECT %s, %s, %s, %s, %s, %s, %s
WHERE NOT EXISTS (
    SELECT 1 FROM fhir.quarantine
    WHERE source_file = %s AND entry_index IS NOT DISTINCT FROM %s AND reason = %s
)
"""


def view_hashes(views: Iterable[ViewTable]) -> dict[str, str]:
    """Per resource type, a fingerprint of the ViewDefinitions that flatten it: part of the
    skip key, so that changing a view re-flattens the resources it covers."""
    texts: dict[str, list[str]] = {}
    for t in sorted(views, key=lambda v: v.table):
        texts.setdefault(t.resource_type, []).append(
            t.table + json.dumps(t.view.definition, sort_keys=True)
        )
    return {
        rtype: hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]
        for rtype, parts in texts.items()
    }


def stored_state(cur: psycopg.Cursor[Any], resources: Sequence[ParsedResource]) -> dict[Key, Key]:
    """(type, id) -> (content hash, view hash) of the stored copies of ``resources``."""
    if not resources:
        return {}
    cur.execute(
        "SELECT r.resource_type, r.id, r.content_hash, coalesce(r.view_hash, '') "
        "FROM fhir.resource r "
        "JOIN unnest(%s::text[], %s::text[]) AS k(resource_type, id) "
        "USING (resource_type, id)",
        ([r.resource_type for r in resources], [r.id for r in resources]),
    )
    return {(t, i): (h, v) for t, i, h, v in cur.fetchall()}


def value_error_reason(exc: psycopg.Error) -> str:
    """One sentence naming the table, column and value PostgreSQL refused."""
    primary = exc.diag.message_primary or str(exc).splitlines()[0]
    match = _COPY_CONTEXT_RE.search(exc.diag.context or "")
    if match is None:
        return f"refused by the database: {primary}"
    table, column, value = match.groups()
    if len(value) > 120:
        value = value[:117] + "..."
    return f"value {value!r} does not fit column fhir.{table}.{column}: {primary}"


class _FlattenFailed(Exception):
    pass


class Writer:
    """Writes resources into ``fhir.resource`` and the view tables of one transaction."""

    def __init__(
        self,
        cur: psycopg.Cursor[Any],
        views: Sequence[ViewTable],
        fingerprints: Mapping[str, str],
        stored: Mapping[Key, str],
    ) -> None:
        self.cur = cur
        self.views = tuple(views)
        self.by_type = views_by_type(views)
        self.fingerprints = fingerprints
        self.stored = set(stored)  # keys with a stored copy (to delete before the COPY)
        self.quarantined: list[Quarantined] = []
        self.rows: dict[str, int] = {}
        self._flat: dict[Key, Rows] = {}
        self._bad: dict[Key, str] = {}  # resources whose flattening failed -> why
        self._now: Any = None

    def write(self, items: Sequence[ParsedResource]) -> list[ParsedResource]:
        """Write ``items``; returns those written (the others are in :attr:`quarantined`)."""
        if self._now is None:
            self.cur.execute("SELECT now()")
            self._now = self.cur.fetchone()[0]  # type: ignore[index]
        written = self._attempt(list(items))
        for r in written:
            self.stored.add((r.resource_type, r.id))
        return written

    def _attempt(self, items: list[ParsedResource]) -> list[ParsedResource]:
        if not items:
            return []
        try:
            with self.cur.connection.transaction():  # a savepoint: a failure costs only this
                counts = self._write_once(items)
        except _FlattenFailed:
            good = []
            for r in items:
                reason = self._bad.get((r.resource_type, r.id))
                if reason is None:
                    good.append(r)
                else:
                    self._quarantine(r, reason, "flatten")
            return self._attempt(good)
        except _VALUE_ERRORS as exc:
            if len(items) == 1:
                self._quarantine(items[0], value_error_reason(exc), "load")
                return []
            half = len(items) // 2
            return self._attempt(items[:half]) + self._attempt(items[half:])
        for table, n in counts.items():
            self.rows[table] = self.rows.get(table, 0) + n
        return items

    def _quarantine(self, r: ParsedResource, reason: str, stage: str) -> None:
        self.quarantined.append(
            Quarantined(
                r.source,
                r.entry_index,
                f"{r.resource_type}/{r.id}: {reason}",
                r.resource_type,
                r.id,
                r.canonical_json,
                stage,
            )
        )

    def _flatten(self, r: ParsedResource) -> Rows | None:
        key = (r.resource_type, r.id)
        rows = self._flat.get(key)
        if rows is None:
            if key in self._bad:
                return None
            rows = {}
            name = ""
            try:
                for table in self.by_type.get(r.resource_type, ()):
                    name = table.table
                    rows[name] = table.row_tuples(r.resource)
            except RecursionError:
                self._bad[key] = f"flattening into fhir.{name} failed: nesting too deep"
                return None
            except Exception as exc:  # an error in one resource's view stays there
                self._bad[key] = f"flattening into fhir.{name} failed: {type(exc).__name__}: {exc}"
                return None
            self._flat[key] = rows
        return rows

    def _write_once(self, items: Sequence[ParsedResource]) -> dict[str, int]:
        cur = self.cur
        first_seen: dict[Key, Any] = {}
        updated = [r for r in items if (r.resource_type, r.id) in self.stored]
        if updated:
            cur.execute(_DELETE_RAW, ([r.resource_type for r in updated], [r.id for r in updated]))
            first_seen = {(t, i): seen for t, i, seen in cur.fetchall()}
        statement = sql.SQL("COPY fhir.resource ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in RAW_COLUMNS)
        )
        rows: Rows = {}
        # Flattening is interleaved with the COPY, chunk by chunk: while the server parses the
        # JSONB of the chunk just sent (its own process, the other core), this one flattens the
        # next chunk.
        with cur.copy(statement) as copy:
            for start in range(0, len(items), _INTERLEAVE_CHUNK):
                for r in items[start : start + _INTERLEAVE_CHUNK]:
                    flat = self._flatten(r)
                    if flat is None:
                        continue
                    for table, table_rows in flat.items():
                        rows.setdefault(table, []).extend(table_rows)
                    url = r.full_url
                    full_url = url if url and len(url) <= _MAX_FULL_URL else None
                    copy.write_row(
                        (
                            r.resource_type,
                            r.id,
                            r.version_id,
                            r.content_hash,
                            self.fingerprints.get(r.resource_type, ""),
                            full_url,
                            r.canonical_json,
                            r.source,
                            r.entry_index,
                            first_seen.get((r.resource_type, r.id), self._now),
                        )
                    )
        if any((r.resource_type, r.id) in self._bad for r in items):
            raise _FlattenFailed
        keys: dict[str, list[str]] = {}
        for r in items:
            keys.setdefault(r.resource_type, []).append(r.id)
        return replace_rows(cur, self.views, keys, rows)


def _copy_rows(
    cur: psycopg.Cursor[Any], table: sql.Composable, columns: Sequence[str], rows: Iterable[Any]
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        table, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def replace_rows(
    cur: psycopg.Cursor[Any],
    tables: Sequence[ViewTable],
    keys_by_type: Mapping[str, list[str]],
    rows: Rows,
) -> dict[str, int]:
    """Delete the view rows of the given resource keys and COPY ``rows`` in their place."""
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


def delete_resources(
    cur: psycopg.Cursor[Any], views: Sequence[ViewTable], keys: Iterable[Key]
) -> int:
    """Remove resources (raw, view rows, unresolved references); returns raw rows removed."""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, []).append(rid)
    removed = 0
    for rtype, ids in by_type.items():
        cur.execute(
            "DELETE FROM fhir.resource WHERE resource_type = %s AND id = ANY(%s)", (rtype, ids)
        )
        removed += cur.rowcount
        cur.execute(
            "DELETE FROM fhir.unresolved_reference "
            "WHERE resource_type = %s AND resource_id = ANY(%s)",
            (rtype, ids),
        )
    replace_rows(cur, views, by_type, {})
    return removed


def _text(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def insert_quarantine(cur: psycopg.Cursor[Any], quarantined: Sequence[Quarantined]) -> None:
    """Record quarantined entries (idempotent: the same file, entry and reason only once).

    Whatever bad input put into the text (NUL, lone surrogates) is escaped first: recording
    why an entry is bad must never fail because of that entry."""
    rows = []
    for q in quarantined:
        source, reason = clean_text(q.source), clean_text(q.reason)
        rows.append(
            (
                source,
                q.entry_index,
                _text(q.resource_type),
                _text(q.resource_id),
                reason,
                _text(q.payload),
                q.stage,
                source,
                q.entry_index,
                reason,
            )
        )
    cur.executemany(_QUARANTINE, rows)
