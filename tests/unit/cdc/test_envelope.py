"""Debezium envelopes -> mirror rows, without Kafka: encodings, ops, TOAST, poison, reduction."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import orjson
import pytest

from hospital.cdc.batch import reduce_changes
from hospital.cdc.envelope import (
    UNAVAILABLE,
    Change,
    Decoder,
    PoisonError,
    TableSpec,
    committed_at,
    split_message,
)

VISITS = TableSpec(
    "visits",
    ("visit_id", "patient_id", "triage_level", "started_at", "start_date", "note", "amount",
     "at_time", "local_ts", "is_open", "blob", "price"),
    ("visit_id",),
)  # fmt: skip
FIELDS = [
    {"type": "string", "optional": False, "name": "io.debezium.data.Uuid", "field": "visit_id"},
    {"type": "string", "optional": False, "name": "io.debezium.data.Uuid", "field": "patient_id"},
    {"type": "int16", "optional": True, "field": "triage_level"},
    {"type": "string", "optional": False, "name": "io.debezium.time.ZonedTimestamp",
     "field": "started_at"},
    {"type": "int32", "optional": True, "name": "io.debezium.time.Date", "field": "start_date"},
    {"type": "string", "optional": True, "field": "note"},
    {"type": "string", "optional": True, "field": "amount"},
    {"type": "int64", "optional": True, "name": "io.debezium.time.MicroTime", "field": "at_time"},
    {"type": "int64", "optional": True, "name": "io.debezium.time.MicroTimestamp",
     "field": "local_ts"},
    {"type": "boolean", "optional": True, "field": "is_open"},
    {"type": "bytes", "optional": True, "field": "blob"},
    {"type": "bytes", "optional": True, "name": "org.apache.kafka.connect.data.Decimal",
     "parameters": {"scale": "2"}, "field": "price"},
]  # fmt: skip
VID = "7b0d3c1e-2f43-4c55-9a7e-0e1f2a3b4c5d"
PID = "11111111-2222-4333-8444-555555555555"


def _schema(fields: list[dict[str, Any]]) -> dict[str, Any]:
    row = {"type": "struct", "fields": fields, "optional": True, "name": "ehr.public.visits.Value"}
    return {
        "type": "struct",
        "fields": [
            {**row, "field": "before"},
            {**row, "field": "after"},
            {"type": "struct", "fields": [], "optional": False, "field": "source"},
            {"type": "string", "optional": False, "field": "op"},
        ],
        "optional": False,
        "name": "ehr.public.visits.Envelope",
    }


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "visit_id": VID,
        "patient_id": PID,
        "triage_level": 3,
        "started_at": "2020-01-01T08:15:30.123456Z",
        "start_date": 18262,
        "note": "x" * 3000,
        "amount": "12345678901234567890.000001",
        "at_time": 3_723_000_004,
        "local_ts": 1_577_866_530_000_001,
        "is_open": True,
        "blob": base64.b64encode(b"\x00\xffdata").decode(),
        "price": base64.b64encode((-12345).to_bytes(2, "big", signed=True)).decode(),
    }
    row.update(overrides)
    return row


def _message(
    op: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    table: str = "visits",
    lsn: int = 1000,
    fields: list[dict[str, Any]] | None = None,
) -> bytes:
    source = {"table": table, "lsn": lsn, "ts_ms": 1_577_866_530_123}
    source["ts_us"] = 1_577_866_530_123_456
    payload = {"before": before, "after": after, "source": source, "op": op, "ts_ms": 0}
    return orjson.dumps({"schema": _schema(fields or FIELDS), "payload": payload})


@pytest.fixture
def decoder() -> Decoder:
    return Decoder({"visits": VISITS})


def test_insert_converts_every_encoding_exactly(decoder: Decoder) -> None:
    change = decoder.decode(_message("c", after=_row()))
    assert change.op == "c" and change.table == "visits" and change.lsn == 1000
    assert change.key == (VID,)
    v = change.values
    assert v["visit_id"] == VID and v["patient_id"] == PID
    assert v["triage_level"] == 3
    assert v["started_at"] == "2020-01-01T08:15:30.123456Z"  # ISO text, parsed by PostgreSQL
    assert v["start_date"] == "2020-01-01"  # epoch days
    assert v["amount"] == "12345678901234567890.000001"  # decimal.handling.mode=string, no float
    assert v["at_time"] == "01:02:03.000004"
    assert v["local_ts"] == "2020-01-01 08:15:30.000001"
    assert v["is_open"] is True
    assert v["blob"] == b"\x00\xffdata"
    assert Decimal(v["price"]) == Decimal("-123.45")
    assert change.committed_at == "2020-01-01T08:15:30.123456+00:00"
    assert change.unavailable == frozenset()


def test_nulls_stay_null(decoder: Decoder) -> None:
    change = decoder.decode(_message("r", after=_row(start_date=None, note=None, blob=None)))
    assert change.op == "r"
    assert change.values["start_date"] is None and change.values["note"] is None
    assert change.values["blob"] is None


def test_dates_before_the_epoch_and_midnight() -> None:
    d = Decoder({"visits": VISITS})
    change = d.decode(_message("c", after=_row(start_date=-1, at_time=0, local_ts=-1)))
    assert change.values["start_date"] == "1969-12-31"
    assert change.values["at_time"] == "00:00:00.000000"
    assert change.values["local_ts"] == "1969-12-31 23:59:59.999999"


def test_delete_keeps_only_the_key_from_the_before_image(decoder: Decoder) -> None:
    change = decoder.decode(_message("d", before=_row(), after=None, lsn=2000))
    assert change.op == "d" and change.lsn == 2000
    assert change.key == (VID,)
    assert change.values == {"visit_id": VID}


def test_toast_placeholder_is_never_written_and_is_filled_from_before(decoder: Decoder) -> None:
    # Without a usable before image the column is left out (the update must not touch it).
    change = decoder.decode(_message("u", before=None, after=_row(note=UNAVAILABLE)))
    assert "note" not in change.values and change.unavailable == {"note"}
    # With REPLICA IDENTITY FULL the unchanged value is in the before image.
    change = decoder.decode(
        _message("u", before=_row(note="kept"), after=_row(note=UNAVAILABLE, triage_level=1))
    )
    assert change.values["note"] == "kept" and change.unavailable == frozenset()
    assert change.values["triage_level"] == 1
    # Bytes columns carry the placeholder base64-encoded.
    b64 = base64.b64encode(UNAVAILABLE.encode()).decode()
    change = decoder.decode(_message("u", before=None, after=_row(blob=b64)))
    assert "blob" not in change.values and change.unavailable == {"blob"}


def test_the_last_snapshot_row_of_a_table_is_marked(decoder: Decoder) -> None:
    value = _message("r", after=_row())
    assert not decoder.decode(value).ends_snapshot
    marked = value.replace(b'"table":"visits"', b'"table":"visits","snapshot":"last"')
    assert decoder.decode(marked).ends_snapshot


def test_truncate_and_heartbeat(decoder: Decoder) -> None:
    assert decoder.decode(_message("t", table="visits", lsn=5)).op == "t"
    beat = decoder.decode(_message("c", after={"id": 1}, table="cdc_heartbeat", lsn=7))
    assert beat.op == "h" and beat.lsn == 7


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "undecodable JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps({"payload": {"op": "x", "source": {}}}), "not a Debezium change event"),
        (_message("c", after=_row(), table="invoices"), "has no mirror table"),
        (_message("c", after=None), "has no after image"),
        (_message("c", after=_row(visit_id=None)), "null key"),
    ],
)
def test_poison_messages_raise_with_a_reason(decoder: Decoder, value: bytes, reason: str) -> None:
    with pytest.raises(PoisonError, match=reason):
        decoder.decode(value)


def test_a_column_without_mirror_column_is_poison(decoder: Decoder) -> None:
    fields = [*FIELDS, {"type": "string", "optional": True, "field": "new_column"}]
    value = _message("c", after=_row(new_column="v"), fields=fields)
    with pytest.raises(PoisonError, match=r"new_column .*no mirror column"):
        decoder.decode(value)
    # Once the mirror has the column (a hospital migration), the same message maps.
    wider = TableSpec("visits", (*VISITS.columns, "new_column"), ("visit_id",))
    assert Decoder({"visits": wider}).decode(value).values["new_column"] == "v"


def test_a_mirror_column_the_event_lacks_is_left_alone(decoder: Decoder) -> None:
    fields = [f for f in FIELDS if f["field"] != "note"]
    row = _row()
    del row["note"]
    change = decoder.decode(_message("c", after=row, fields=fields))
    assert "note" not in change.values


def test_unsupported_type_is_poison(decoder: Decoder) -> None:
    fields = [*FIELDS[:-1], {"type": "struct", "name": "io.debezium.data.geometry.Point",
                             "optional": True, "field": "price"}]  # fmt: skip
    with pytest.raises(PoisonError, match="unsupported type"):
        decoder.decode(_message("c", after=_row(price=None), fields=fields))


def test_split_message_separates_schema_and_payload() -> None:
    value = _message("c", after=_row())
    schema, payload = split_message(value)
    assert schema is not None
    assert orjson.loads(schema)["name"] == "ehr.public.visits.Envelope"
    assert orjson.loads(payload)["op"] == "c"
    assert split_message(b'{"a": 1}') == (None, b'{"a": 1}')


def test_committed_at_falls_back_to_milliseconds() -> None:
    assert committed_at({"ts_ms": 1000}) == "1970-01-01T00:00:01+00:00"
    with pytest.raises(PoisonError):
        committed_at({})


def _c(op: str, key: str, lsn: int, **values: Any) -> Change:
    unavailable = frozenset(k for k, v in values.items() if v is UNAVAILABLE)
    vals = {"visit_id": key, **{k: v for k, v in values.items() if v is not UNAVAILABLE}}
    return Change("visits", op, lsn, "2020-01-01T00:00:00+00:00", (key,), vals, unavailable)


def test_reduce_keeps_the_newest_change_per_key() -> None:
    out = reduce_changes(
        [_c("c", "a", 1, note="1"), _c("u", "a", 3, note="3"), _c("u", "a", 2, note="2"),
         _c("c", "b", 1), _c("d", "b", 4)]
    )  # fmt: skip
    by_key = {c.key[0]: c for c in out}
    assert by_key["a"].lsn == 3 and by_key["a"].values["note"] == "3"
    assert by_key["b"].op == "d"


def test_reduce_fills_toasted_columns_from_an_older_upsert_in_the_batch() -> None:
    out = reduce_changes([_c("c", "a", 1, note="long"), _c("u", "a", 2, note=UNAVAILABLE)])
    assert out[0].values["note"] == "long" and out[0].unavailable == frozenset()
    assert out[0].lsn == 2
