"""`hospital cdc status`: connectors, slot, last event per table, lag, quarantine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from hospital.cdc.catalog import published_tables
from hospital.cdc.connector import (
    _client,
    applier_offsets,
    cdc_topics,
    group_offsets,
    high_watermarks,
    jdbc_group,
)
from hospital.errors import StackError
from hospital.settings import Settings


@dataclass
class CdcStatus:
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    slot: dict[str, Any] = field(default_factory=dict)
    last_event: dict[str, str | None] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)  # consumer group -> messages behind
    quarantined: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "connectors": self.connectors,
            "slot": self.slot,
            "last_event": self.last_event,
            "lag": self.lag,
            "quarantined": self.quarantined,
        }


def status(settings: Settings) -> CdcStatus:
    out = CdcStatus()
    client = _client(settings)
    for name in (settings.cdc_connector_name, settings.cdc_jdbc_connector_name):
        try:
            state = client.status(name)
        except StackError as exc:
            state = {"error": str(exc)}
        if state:
            out.connectors[name] = {
                "state": state.get("connector", {}).get("state"),
                "tasks": [t.get("state") for t in state.get("tasks", [])],
            }
    with psycopg.connect(settings.dsn("ehr", "hospital_app")) as conn:
        row = conn.execute(
            "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, "
            "confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (settings.cdc_slot_name,),
        ).fetchone()
    if row:
        out.slot = {
            "name": settings.cdc_slot_name,
            "active": bool(row[0]),
            "retained_wal_bytes": int(row[1] or 0),
            "confirmed_flush_lsn": row[2],
        }
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        for table in published_tables(settings):
            try:
                got = conn.execute(f'SELECT max(_cdc_committed_at)::text FROM public."{table}"')
                r = got.fetchone()
                out.last_event[table] = r[0] if r else None
            except psycopg.Error:
                conn.rollback()
                out.last_event[table] = None
        q = conn.execute("SELECT count(*) FROM cdc_quarantine").fetchone()
        out.quarantined = int(q[0]) if q else 0
    try:
        topics = cdc_topics(settings)
        highs = high_watermarks(settings, topics)
        for group, done in (
            (settings.cdc_group, applier_offsets(settings)),
            (jdbc_group(settings), group_offsets(settings, jdbc_group(settings))),
        ):
            if done:
                out.lag[group] = sum(max(h - done.get(tp, 0), 0) for tp, h in highs.items())
    except Exception:
        pass
    return out
