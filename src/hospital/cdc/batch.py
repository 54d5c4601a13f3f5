"""One batch of changes into the mirrors: COPY into staging, one upsert and one delete per table.

Everything here runs inside the caller's transaction, together with the offsets, so a batch is
applied entirely or not at all. The guards make replays harmless:

- a row is only overwritten by an event with a newer LSN (``_cdc_lsn``);
- a delete leaves ``(table, key, lsn)`` in ``cdc_deleted_keys``; an insert/update with an LSN not
  newer than that is dropped, so a late or replayed insert never resurrects the row;
- a truncate leaves its LSN in ``cdc_truncations``; older upserts are dropped likewise. The end
  of a table's snapshot acts the same way (rows older than the snapshot were not in it: deleted
  while no connector streamed), which also repairs a re-snapshot after lost connector offsets.

For one key, PostgreSQL's row locks order the changes, so their LSNs grow in commit order; the
LSN is therefore a sound version number per row whatever order Kafka delivers partitions in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from hospital.cdc.envelope import LINEAGE, Change, TableSpec

Cursor = psycopg.Cursor[tuple[Any, ...]]


@dataclass
class Counts:
    upserted: int = 0  # rows inserted or updated
    stale: int = 0  # upserts dropped by a guard (older than the row, a delete or a truncate)
    deleted: int = 0
    truncated: int = 0
    changes: int = 0  # data changes in the batch (not heartbeats), set by the applier

    def add(self, other: Counts) -> None:
        self.upserted += other.upserted
        self.stale += other.stale
        self.deleted += other.deleted
        self.truncated += other.truncated


@dataclass
class Quarantined:
    topic: str
    partition: int
    offset: int
    key: str | None
    reason: str
    value: str | None = None


def _stg(table: str) -> sql.Identifier:
    return sql.Identifier(f"cdc_stg_{table}")


def _del(table: str) -> sql.Identifier:
    return sql.Identifier(f"cdc_del_{table}")


def _ids(names: Iterable[str], prefix: str | None = None) -> sql.Composed:
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(prefix, n) for n in names)


def _key_text(spec: TableSpec, alias: str) -> sql.Composable:
    parts = [sql.SQL("{}::text").format(sql.Identifier(alias, k)) for k in spec.key]
    if len(parts) == 1:
        return parts[0]
    return sql.SQL("concat_ws(chr(31), {})").format(sql.SQL(", ").join(parts))


@dataclass
class Stager:
    """Session-lifetime staging tables (created outside batch transactions, so a rollback keeps
    them) and the statements that move staged rows into the mirrors."""

    conn: psycopg.Connection[tuple[Any, ...]]
    specs: dict[str, TableSpec] = field(default_factory=dict)

    def prepare(self, specs: dict[str, TableSpec]) -> None:
        """(Re)create staging tables for ``specs``; called at start and after a catalog change."""
        with self.conn.transaction():
            for table, spec in specs.items():
                if self.specs.get(table) == spec:
                    continue
                cols = (*spec.columns, *LINEAGE)
                self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_stg(table)))
                self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_del(table)))
                self.conn.execute(
                    sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM public.{} WITH NO DATA").format(
                        _stg(table), _ids(cols), sql.Identifier(table)
                    )
                )
                self.conn.execute(
                    sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM public.{} WITH NO DATA").format(
                        _del(table), _ids((*spec.key, "_cdc_lsn")), sql.Identifier(table)
                    )
                )
        self.specs = dict(specs)

    # --- the statements ------------------------------------------------------------------------
    def _copy(
        self, cur: Cursor, target: sql.Identifier, cols: Sequence[str], rows: list[Any]
    ) -> None:
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(target, _ids(cols))
        with cur.copy(stmt) as copy:
            for row in rows:
                copy.write_row(row)

    def upsert(self, cur: Cursor, spec: TableSpec, cols: tuple[str, ...], rows: list[Any]) -> int:
        """Stage ``rows`` (values of ``cols`` + lineage) and upsert them; returns rows written."""
        table = spec.name
        all_cols = (*cols, *LINEAGE)
        self._copy(cur, _stg(table), all_cols, rows)
        updates = [c for c in all_cols if c not in spec.key]
        stmt = sql.SQL(
            "INSERT INTO public.{t} AS m ({cols}) SELECT {scols} FROM {stg} s "
            "WHERE s._cdc_lsn > "
            "coalesce((SELECT lsn FROM cdc_truncations WHERE table_name = {name}), -1) "
            "AND NOT EXISTS (SELECT 1 FROM cdc_deleted_keys d WHERE d.table_name = {name} "
            "AND d.key = {skey} AND d.lsn >= s._cdc_lsn) "
            "ON CONFLICT ({key}) DO UPDATE SET {sets} "
            "WHERE m._cdc_lsn IS NULL OR m._cdc_lsn < EXCLUDED._cdc_lsn"
        ).format(
            t=sql.Identifier(table),
            cols=_ids(all_cols),
            scols=_ids(all_cols, "s"),
            stg=_stg(table),
            name=sql.Literal(table),
            skey=_key_text(spec, "s"),
            key=_ids(spec.key),
            sets=sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
                for c in updates
            ),
        )
        cur.execute(stmt)
        written = max(cur.rowcount, 0)
        cur.execute(sql.SQL("TRUNCATE {}").format(_stg(table)))
        return written

    def delete(self, cur: Cursor, spec: TableSpec, rows: list[Any]) -> int:
        """Stage (key..., lsn) rows, delete older mirror rows, and record the tombstones."""
        table = spec.name
        self._copy(cur, _del(table), (*spec.key, "_cdc_lsn"), rows)
        match = sql.SQL(" AND ").join(
            sql.SQL("m.{k} = s.{k}").format(k=sql.Identifier(k)) for k in spec.key
        )
        cur.execute(
            sql.SQL(
                "DELETE FROM public.{t} m USING {d} s WHERE {match} "
                "AND (m._cdc_lsn IS NULL OR m._cdc_lsn <= s._cdc_lsn)"
            ).format(t=sql.Identifier(table), d=_del(table), match=match)
        )
        deleted = max(cur.rowcount, 0)
        cur.execute(
            sql.SQL(
                "INSERT INTO cdc_deleted_keys (table_name, key, lsn) "
                "SELECT {name}, {skey}, s._cdc_lsn FROM {d} s "
                "ON CONFLICT (table_name, key) DO UPDATE "
                "SET lsn = greatest(cdc_deleted_keys.lsn, EXCLUDED.lsn), deleted_at = now()"
            ).format(name=sql.Literal(table), skey=_key_text(spec, "s"), d=_del(table))
        )
        cur.execute(sql.SQL("TRUNCATE {}").format(_del(table)))
        return deleted

    def truncate(self, cur: Cursor, spec: TableSpec, lsn: int) -> int:
        """Remove every row older than the truncate; a replayed truncate changes nothing."""
        cur.execute("SELECT lsn FROM cdc_truncations WHERE table_name = %s", (spec.name,))
        row = cur.fetchone()
        if row is not None and int(row[0]) >= lsn:
            return 0
        cur.execute(
            sql.SQL("DELETE FROM public.{} WHERE _cdc_lsn IS NULL OR _cdc_lsn < %s").format(
                sql.Identifier(spec.name)
            ),
            (lsn,),
        )
        removed = max(cur.rowcount, 0)
        cur.execute(
            "DELETE FROM cdc_deleted_keys WHERE table_name = %s AND lsn < %s", (spec.name, lsn)
        )
        cur.execute(
            "INSERT INTO cdc_truncations (table_name, lsn) VALUES (%s, %s) "
            "ON CONFLICT (table_name) DO UPDATE SET lsn = greatest(cdc_truncations.lsn, "
            "EXCLUDED.lsn), truncated_at = now()",
            (spec.name, lsn),
        )
        return removed

    # --- a whole batch -------------------------------------------------------------------------
    def apply(self, cur: Cursor, changes: Sequence[Change]) -> Counts:
        """Apply changes in order: segments between truncates are reduced and applied at once."""
        counts = Counts()
        segment: list[Change] = []
        for change in changes:
            if change.op == "t":
                counts.add(self._apply_segment(cur, segment))
                segment = []
                counts.truncated += self.truncate(cur, self.specs[change.table], change.lsn)
            elif change.op != "h":
                segment.append(change)
                if change.ends_snapshot:
                    # Sweep: rows older than the snapshot were deleted while nobody streamed.
                    counts.add(self._apply_segment(cur, segment))
                    segment = []
                    counts.deleted += self.truncate(cur, self.specs[change.table], change.lsn)
        counts.add(self._apply_segment(cur, segment))
        return counts

    def _apply_segment(self, cur: Cursor, changes: Sequence[Change]) -> Counts:
        counts = Counts()
        if not changes:
            return counts
        latest = reduce_changes(changes)
        upserts: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        deletes: dict[str, list[Any]] = {}
        for change in latest:
            if change.op == "d":
                deletes.setdefault(change.table, []).append((*change.key, change.lsn))
            else:
                cols = tuple(change.values)
                row = (*change.values.values(), change.lsn, change.committed_at)
                upserts.setdefault((change.table, cols), []).append(row)
        for (table, cols), rows in upserts.items():
            written = self.upsert(cur, self.specs[table], cols, rows)
            counts.upserted += written
            counts.stale += len(rows) - written
        for table, rows in deletes.items():
            counts.deleted += self.delete(cur, self.specs[table], rows)
        return counts


def reduce_changes(changes: Sequence[Change]) -> list[Change]:
    """The newest change per (table, key); a newer update missing TOASTed columns takes them
    from an older upsert of the same batch. Pure; order of first appearance is kept."""
    latest: dict[tuple[str, tuple[Any, ...]], Change] = {}
    for change in changes:
        ident = (change.table, change.key)
        old = latest.get(ident)
        if old is not None and old.lsn > change.lsn:
            continue
        if old is not None and change.unavailable and old.is_upsert:
            filled = {n: old.values[n] for n in change.unavailable if n in old.values}
            if filled:
                values = dict(change.values)
                values.update(filled)
                change = Change(
                    change.table,
                    change.op,
                    change.lsn,
                    change.committed_at,
                    change.key,
                    values,
                    change.unavailable - filled.keys(),
                    change.ends_snapshot,
                )
        latest[ident] = change
    return list(latest.values())


def write_offsets(cur: Cursor, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Next offset per partition, in the batch's transaction."""
    if not offsets:
        return
    cur.executemany(
        "INSERT INTO cdc_offsets (consumer_group, topic, partition, next_offset) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (consumer_group, topic, partition) "
        "DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
        [(group, t, p, o) for (t, p), o in offsets.items()],
    )


def write_quarantine(cur: Cursor, items: Sequence[Quarantined]) -> None:
    if not items:
        return
    cur.executemany(
        'INSERT INTO cdc_quarantine (topic, partition, "offset", key, reason, value) '
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [(q.topic, q.partition, q.offset, q.key, q.reason, q.value) for q in items],
    )
