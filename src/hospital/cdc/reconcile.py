"""EHR vs mirror: row count and an order-independent content checksum per table.

The comparison is taken at a consistent point: first the EHR's current LSN is read, then we wait
until the connector's slot confirmed it (every change up to it is in Kafka), then until the
consumer (the applier's offsets in ``cdc_offsets``, or the JDBC sink's consumer group) reached the
topics' high watermarks read after that. Writers should be quiet meanwhile (the main job calls
this at the end of a run); with writers still going, rows newer than the point may differ.

Checksum: the sum over rows of the first 64 bits of md5(row text) over the columns both sides
share (sorted by name), each cast to the EHR column's type and printed with UTC/ISO settings,
so a mirror column of another type (the JDBC sink's) compares by value. On a difference, the
tables are split into 256 buckets by md5(key) and only differing buckets are listed by key.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from rich.table import Table

from hospital.cdc import connector
from hospital.cdc.catalog import JDBC_SCHEMA, primary_key, published_tables, table_columns
from hospital.cdc.envelope import HEARTBEAT_TABLE, LINEAGE
from hospital.settings import Settings

SESSION = "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1"
SAMPLE = 10


@dataclass
class TableCheck:
    table: str
    ehr_rows: int
    mirror_rows: int
    ehr_checksum: str
    mirror_checksum: str
    columns: int
    sample_keys: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.ehr_rows == self.mirror_rows and self.ehr_checksum == self.mirror_checksum


@dataclass
class CdcReconciliation:
    schema: str
    tables: list[TableCheck] = field(default_factory=list)
    caught_up: bool = True
    target_lsn: str = ""
    waited_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.caught_up and not self.problems and all(t.clean for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["clean"] = self.clean
        for t, check in zip(out["tables"], self.tables, strict=True):
            t["clean"] = check.clean
        return out

    def render(self) -> Table:
        verdict = "[green]clean[/]" if self.clean else "[red]DIFFERENT[/]"
        table = Table(title=f"CDC reconciliation: EHR vs hospital schema {self.schema} ({verdict})")
        for col in ("table", "EHR rows", "mirror rows", "checksum", "sample differing keys"):
            table.add_column(col)
        for t in self.tables:
            same = "[green]equal[/]" if t.clean else "[red]different[/]"
            table.add_row(
                t.table, f"{t.ehr_rows:,}", f"{t.mirror_rows:,}", same, ", ".join(t.sample_keys)
            )
        if self.problems:
            table.caption = "; ".join(self.problems)
        return table


def _lsn_int(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def wait_for_capture(settings: Settings, timeout: float) -> tuple[str, bool]:
    """(EHR LSN now, whether the slot confirmed it within ``timeout``)."""
    with psycopg.connect(settings.dsn("ehr", "hospital_app"), autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        target = str(row[0]) if row else "0/0"
        deadline = time.monotonic() + timeout
        while True:
            got = conn.execute(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                (settings.cdc_slot_name,),
            ).fetchone()
            if got and got[0] and _lsn_int(str(got[0])) >= _lsn_int(target):
                return target, True
            if time.monotonic() >= deadline:
                return target, False
            time.sleep(0.3)


def wait_for_consumer(settings: Settings, schema: str, timeout: float) -> bool:
    """Whether the consumer of ``schema`` reached the topics' current high watermarks."""
    # The heartbeat topic changes no mirror; every other table topic must be consumed.
    topics = {
        t: p
        for t, p in connector.cdc_topics(settings).items()
        if not t.endswith(f".{HEARTBEAT_TABLE}")
    }
    highs = connector.high_watermarks(settings, topics)
    deadline = time.monotonic() + timeout
    while True:
        if schema == JDBC_SCHEMA:
            done = connector.group_offsets(settings, connector.jdbc_group(settings))
        else:
            done = connector.applier_offsets(settings)
        if all(done.get(tp, 0) >= high for tp, high in highs.items() if high > 0):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def _checksum_sql(
    schema: str, table: str, columns: list[str], types: dict[str, str], key: list[str]
) -> tuple[sql.Composed, sql.Composed]:
    exprs = sql.SQL(", ").join(
        sql.SQL("({})::{}").format(sql.Identifier(c), sql.SQL(types[c])) for c in columns
    )
    keyexpr = sql.SQL(" || '|' || ").join(
        sql.SQL("{}::text").format(sql.Identifier(k)) for k in key
    )
    row_hash = sql.SQL("md5(ROW({})::text)").format(exprs)
    total = sql.SQL(
        "SELECT count(*), coalesce(sum(('x' || left({h}, 16))::bit(64)::bigint::numeric), 0)::text "
        "FROM {s}.{t}"
    ).format(h=row_hash, s=sql.Identifier(schema), t=sql.Identifier(table))
    by_key = sql.SQL("SELECT {k}, {h} FROM {s}.{t} WHERE left(md5({k}), 2) = ANY(%s)").format(
        k=keyexpr, h=row_hash, s=sql.Identifier(schema), t=sql.Identifier(table)
    )
    return total, by_key


def _buckets_sql(
    schema: str, table: str, columns: list[str], types: dict[str, str], key: list[str]
) -> sql.Composed:
    exprs = sql.SQL(", ").join(
        sql.SQL("({})::{}").format(sql.Identifier(c), sql.SQL(types[c])) for c in columns
    )
    keyexpr = sql.SQL(" || '|' || ").join(
        sql.SQL("{}::text").format(sql.Identifier(k)) for k in key
    )
    return sql.SQL(
        "SELECT left(md5({k}), 2) AS b, count(*), "
        "sum(('x' || left(md5(ROW({e})::text), 16))::bit(64)::bigint::numeric)::text "
        "FROM {s}.{t} GROUP BY 1"
    ).format(k=keyexpr, e=exprs, s=sql.Identifier(schema), t=sql.Identifier(table))


def _sample(
    ehr: psycopg.Connection[Any],
    hosp: psycopg.Connection[Any],
    schema: str,
    table: str,
    columns: list[str],
    types: dict[str, str],
    key: list[str],
) -> list[str]:
    left = {
        r[0]: (r[1], r[2]) for r in ehr.execute(_buckets_sql("public", table, columns, types, key))
    }
    right = {
        r[0]: (r[1], r[2]) for r in hosp.execute(_buckets_sql(schema, table, columns, types, key))
    }
    buckets = sorted(b for b in set(left) | set(right) if left.get(b) != right.get(b))[:8]
    if not buckets:
        return []
    _, by_key_e = _checksum_sql("public", table, columns, types, key)
    _, by_key_h = _checksum_sql(schema, table, columns, types, key)
    a = dict(ehr.execute(by_key_e, (buckets,)).fetchall())
    b = dict(hosp.execute(by_key_h, (buckets,)).fetchall())
    differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return [str(k) for k in differing[:SAMPLE]]


def compare(settings: Settings, schema: str = "public") -> list[TableCheck]:
    """Count + checksum per mirrored table, now (no waiting)."""
    checks: list[TableCheck] = []
    with (
        psycopg.connect(settings.dsn("ehr", "hospital_app"), autocommit=True) as ehr,
        psycopg.connect(settings.dsn("hospital", "hospital_app"), autocommit=True) as hosp,
    ):
        ehr.execute(SESSION)
        hosp.execute(SESSION)
        for table in published_tables(settings):
            types = table_columns(ehr, "public", table)
            mirror = table_columns(hosp, schema, table)
            if not mirror:
                continue
            columns = sorted(set(types) & set(mirror) - set(LINEAGE))
            key = primary_key(ehr, "public", table)
            total_e, _ = _checksum_sql("public", table, columns, types, key)
            total_h, _ = _checksum_sql(schema, table, columns, types, key)
            e = ehr.execute(total_e).fetchone()
            h = hosp.execute(total_h).fetchone()
            assert e is not None and h is not None
            check = TableCheck(table, int(e[0]), int(h[0]), str(e[1]), str(h[1]), len(columns))
            if not check.clean:
                check.sample_keys = _sample(ehr, hosp, schema, table, columns, types, key)
            checks.append(check)
    return checks


def reconcile_cdc(
    settings: Settings, schema: str = "public", wait: bool = True
) -> CdcReconciliation:
    """Compare every mirrored EHR table with ``schema`` (``public`` or ``cdc_jdbc``)."""
    result = CdcReconciliation(schema)
    started = time.monotonic()
    if wait:
        budget = settings.cdc_reconcile_wait_seconds
        target, captured = wait_for_capture(settings, budget)
        result.target_lsn = target
        if not captured:
            result.caught_up = False
            result.problems.append(f"the connector did not confirm EHR LSN {target} in time")
        else:
            remaining = max(budget - (time.monotonic() - started), 1.0)
            if not wait_for_consumer(settings, schema, remaining):
                result.caught_up = False
                result.problems.append(f"the consumer of schema {schema} did not catch up in time")
    result.waited_seconds = round(time.monotonic() - started, 2)
    result.tables = compare(settings, schema)
    if not result.tables:
        result.problems.append(f"no mirrored tables found in schema {schema}")
    return result
