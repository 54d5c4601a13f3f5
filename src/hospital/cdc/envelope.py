"""Debezium change events -> mirror rows. Pure functions: no Kafka, no database.

The source connector writes JSON with schemas enabled (``{"schema": ..., "payload": ...}``),
``time.precision.mode=adaptive_time_microseconds`` and ``decimal.handling.mode=string``. Each
field's semantic type (``io.debezium.time.Date`` ...) decides its conversion; the result is the
text PostgreSQL parses back to exactly the source value (COPY input), so nothing is rounded on
the way. The schema part of a message is the same for every event of a table version, so its
compiled converters are cached by its raw bytes and only the payload is parsed per message.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

UNAVAILABLE = "__debezium_unavailable_value"
UNAVAILABLE_B64 = base64.b64encode(UNAVAILABLE.encode()).decode()
HEARTBEAT_TABLE = "cdc_heartbeat"
LINEAGE = ("_cdc_lsn", "_cdc_committed_at")
EPOCH_DATE = date(1970, 1, 1)
EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - `timestamp` columns are zone-less
EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_PAYLOAD = b',"payload":'
SNAPSHOT_END = ("last_in_data_collection", "last")

Converter = Callable[[Any], Any]


class PoisonError(Exception):
    """A message the applier cannot map; ``str(exc)`` is the quarantine reason."""


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A mirror table as the hospital catalog describes it (data columns, no lineage)."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]


@dataclass(slots=True)
class Change:
    """One decoded event. ``op``: c/u/r upsert, d delete, t truncate, h heartbeat."""

    table: str
    op: str
    lsn: int
    committed_at: str
    key: tuple[Any, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)  # COPY-ready, only columns carried
    unavailable: frozenset[str] = frozenset()  # TOAST placeholders: never written
    # The last snapshot row of its table: every row older than this LSN was not in the snapshot
    # (deleted while no connector streamed, e.g. a re-snapshot after lost offsets).
    ends_snapshot: bool = False

    @property
    def is_upsert(self) -> bool:
        return self.op in ("c", "u", "r")


# --- conversions of Debezium's logical types -------------------------------------------------
def _date(days: int) -> str:
    return (EPOCH_DATE + timedelta(days=days)).isoformat()


def _time_of_day(micros: int) -> str:
    seconds, us = divmod(micros, 1_000_000)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{us:06d}"


def _timestamp(micros: int) -> str:
    return (EPOCH + timedelta(microseconds=micros)).isoformat(sep=" ")


def _unscaled(raw: str, scale: int) -> str:
    unscaled = int.from_bytes(base64.b64decode(raw), "big", signed=True)
    return str(Decimal(unscaled).scaleb(-scale))


def _variable_decimal(value: Mapping[str, Any]) -> str:
    return _unscaled(str(value["value"]), int(value["scale"]))


def _bytes(raw: str) -> bytes:
    return base64.b64decode(raw)


SEMANTIC: dict[str, Converter] = {
    "io.debezium.time.Date": _date,
    "io.debezium.time.MicroTime": _time_of_day,
    "io.debezium.time.Time": lambda ms: _time_of_day(ms * 1000),
    "io.debezium.time.NanoTime": lambda ns: _time_of_day(ns // 1000),
    "io.debezium.time.MicroTimestamp": _timestamp,
    "io.debezium.time.Timestamp": lambda ms: _timestamp(ms * 1000),
    "io.debezium.time.NanoTimestamp": lambda ns: _timestamp(ns // 1000),
    "io.debezium.time.MicroDuration": lambda us: f"{us} microseconds",
    "io.debezium.data.VariableScaleDecimal": _variable_decimal,
    "org.apache.kafka.connect.data.Date": _date,
    "org.apache.kafka.connect.data.Timestamp": lambda ms: _timestamp(ms * 1000),
}
# Already in PostgreSQL's input form (ISO-8601 with offset, canonical UUID, JSON text ...).
PASSTHROUGH = {
    "io.debezium.time.ZonedTimestamp",
    "io.debezium.time.ZonedTime",
    "io.debezium.data.Uuid",
    "io.debezium.data.Json",
    "io.debezium.data.Xml",
    "io.debezium.data.Enum",
    "io.debezium.data.EnumSet",
    "io.debezium.data.Ltree",
}
PLAIN = {"string", "boolean", "int8", "int16", "int32", "int64", "float32", "float64"}


def converter_for(schema: Mapping[str, Any]) -> Converter | None:
    """The conversion of one field (None: the JSON value is already right)."""
    name = schema.get("name")
    kind = schema.get("type")
    if name in PASSTHROUGH:
        return None
    if name == "org.apache.kafka.connect.data.Decimal":
        scale = int(schema.get("parameters", {}).get("scale", 0))
        return lambda raw: _unscaled(raw, scale)
    if name in SEMANTIC:
        return SEMANTIC[name]
    if name is not None and name.startswith(("io.debezium.data.geometry", "io.debezium.data.Bits")):
        raise PoisonError(f"field {schema.get('field')!r} has unsupported type {name}")
    if kind == "bytes":
        return _bytes
    if kind == "array":
        inner = converter_for(schema.get("items", {}))
        if inner is None:
            return None
        return lambda items: [None if v is None else inner(v) for v in items]
    if kind in PLAIN:
        return None
    raise PoisonError(f"field {schema.get('field')!r} has unsupported type {kind}/{name}")


@dataclass(frozen=True, slots=True)
class RowSchema:
    """Compiled converters of one table version's row struct."""

    fields: tuple[tuple[str, Converter | None, bool], ...]  # name, converter, may be TOASTed

    @classmethod
    def compile(cls, row_struct: Mapping[str, Any]) -> RowSchema:
        out = []
        for f in row_struct.get("fields", []):
            toastable = f.get("type") in ("string", "bytes")
            out.append((str(f["field"]), converter_for(f), toastable))
        return cls(tuple(out))


def split_message(value: bytes) -> tuple[bytes | None, bytes]:
    """(schema bytes, payload bytes) of a JsonConverter message with schemas enabled.

    The converter writes ``schema`` first; a message without it is parsed whole.
    """
    if value.startswith(b'{"schema":'):
        idx = value.find(_PAYLOAD)
        if idx > 0 and value.endswith(b"}"):
            return value[10:idx], value[idx + len(_PAYLOAD) : -1]
    return None, value


def _row_struct(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    for f in schema.get("fields", []):
        if f.get("field") in ("after", "before") and f.get("type") == "struct":
            return f  # type: ignore[no-any-return]
    raise PoisonError("the envelope schema has no before/after struct")


def committed_at(source: Mapping[str, Any]) -> str:
    """The EHR commit time (``source.ts_us``, else ``ts_ms``) as ISO-8601 UTC."""
    us = source.get("ts_us")
    if us is None:
        ms = source.get("ts_ms")
        if ms is None:
            raise PoisonError("the event's source has no ts_ms")
        us = int(ms) * 1000
    return (EPOCH_UTC + timedelta(microseconds=int(us))).isoformat()


class Decoder:
    """Maps messages of the CDC topics to :class:`Change` s against the mirrors' catalog."""

    def __init__(self, specs: Mapping[str, TableSpec]) -> None:
        self.specs = dict(specs)
        self._schemas: dict[bytes, RowSchema] = {}

    def _row_schema(self, schema_bytes: bytes | None, payload: Mapping[str, Any]) -> RowSchema:
        if schema_bytes is None:
            raise PoisonError("the message carries no schema (JSON converter schemas disabled?)")
        cached = self._schemas.get(schema_bytes)
        if cached is None:
            try:
                schema = orjson.loads(schema_bytes)
            except orjson.JSONDecodeError as exc:
                raise PoisonError(f"undecodable schema: {exc}") from None
            cached = RowSchema.compile(_row_struct(schema))
            self._schemas[schema_bytes] = cached
        return cached

    def decode(self, value: bytes) -> Change:
        """One non-null message value -> a change; raises :class:`PoisonError`."""
        schema_bytes, payload_bytes = split_message(value)
        try:
            payload = orjson.loads(payload_bytes)
        except orjson.JSONDecodeError as exc:
            raise PoisonError(f"undecodable JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise PoisonError("the message is not a JSON object")
        if schema_bytes is None and "payload" in payload:
            schema_part, payload = payload.get("schema"), payload["payload"]
            schema_bytes = orjson.dumps(schema_part) if schema_part else None
            if not isinstance(payload, dict):
                raise PoisonError("the payload is not a JSON object")
        return self.decode_payload(schema_bytes, payload)

    def decode_payload(self, schema_bytes: bytes | None, payload: Mapping[str, Any]) -> Change:
        op = payload.get("op")
        source = payload.get("source")
        if not isinstance(source, dict) or op not in ("c", "u", "d", "r", "t"):
            raise PoisonError(f"not a Debezium change event (op={op!r})")
        table = str(source.get("table"))
        lsn = source.get("lsn")
        if not isinstance(lsn, int):
            raise PoisonError(f"event of {table} has no LSN")
        when = committed_at(source)
        if table == HEARTBEAT_TABLE:
            return Change(table, "h", lsn, when)
        spec = self.specs.get(table)
        if spec is None:
            raise PoisonError(f"EHR table {table!r} has no mirror table in the hospital database")
        if op == "t":
            return Change(table, "t", lsn, when)
        image = payload.get("before") if op == "d" else payload.get("after")
        if not isinstance(image, dict):
            side = "before" if op == "d" else "after"
            raise PoisonError(f"{op!r} event of {table} has no {side} image")
        row_schema = self._row_schema(schema_bytes, payload)
        values, unavailable = map_row(row_schema, image, spec)
        before = payload.get("before")
        if unavailable and isinstance(before, dict):
            # An unchanged TOASTed value: REPLICA IDENTITY FULL puts it in the before image.
            for name in list(unavailable):
                old = before.get(name)
                if old is not None and old not in (UNAVAILABLE, UNAVAILABLE_B64):
                    conv = next(c for n, c, _ in row_schema.fields if n == name)
                    values[name] = old if conv is None else conv(old)
                    unavailable = unavailable - {name}
        try:
            key = tuple(values[k] for k in spec.key)
        except KeyError as exc:
            raise PoisonError(f"event of {table} lacks key column {exc.args[0]}") from None
        if any(k is None for k in key):
            raise PoisonError(f"event of {table} has a null key")
        if op == "d":
            values = {k: values[k] for k in spec.key}
        ends = op == "r" and source.get("snapshot") in SNAPSHOT_END
        return Change(table, str(op), lsn, when, key, values, unavailable, ends)


def map_row(
    row_schema: RowSchema, image: Mapping[str, Any], spec: TableSpec
) -> tuple[dict[str, Any], frozenset[str]]:
    """Convert one row image to mirror values; TOAST placeholders are left out and reported."""
    columns = spec.columns
    values: dict[str, Any] = {}
    unavailable: list[str] = []
    missing: list[str] = []
    for name, conv, toastable in row_schema.fields:
        if name not in columns:
            missing.append(name)
            continue
        raw = image.get(name)
        if raw is None:
            values[name] = None
        elif toastable and (raw in (UNAVAILABLE, UNAVAILABLE_B64)):
            unavailable.append(name)
        else:
            try:
                values[name] = raw if conv is None else conv(raw)
            except (ValueError, TypeError, KeyError, OverflowError) as exc:
                raise PoisonError(f"{spec.name}.{name}: cannot convert {raw!r}: {exc}") from None
    if missing:
        raise PoisonError(
            f"column(s) {', '.join(missing)} of EHR table {spec.name} have no mirror column "
            "(add them with a hospital migration)"
        )
    return values, frozenset(unavailable)
