"""The event wire format: round trip, and every kind of invalid message is refused with a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hospital.simulator.events import Event, event_id
from hospital.stream.schema import SCHEMA_VERSION, InvalidEvent, decode, encode

SOURCE = "55393135-a21d-4134-8f37-609ebcaca3f7"
PATIENT = "fd99909e-59a9-49c6-ae17-836badb2979c"


def _event(kind: str = "transfer", source: str = SOURCE) -> Event:
    return Event(
        kind=kind,
        event_id=event_id(kind, source),
        source_id=source,
        occurred_at=datetime(2020, 1, 1, 23, 59, 59, tzinfo=UTC),
        patient_id=PATIENT,
        department_code="ICU",
        detail={"from_department": "EMERG", "n": 3, "none": None},
    )


def test_round_trip_keeps_every_field() -> None:
    e = _event()
    got = decode(encode(e))
    assert orjson.loads(encode(e))["schema_version"] == SCHEMA_VERSION
    assert (got.event_id, got.kind, got.source_id, got.patient_id) == (
        e.event_id,
        e.kind,
        e.source_id,
        e.patient_id,
    )
    assert got.occurred_at == e.occurred_at
    assert got.event_date.isoformat() == "2020-01-01"
    assert got.department_code == "ICU"
    assert orjson.loads(got.detail_json) == e.detail


@given(
    kind=st.sampled_from(["admission", "discharge", "transfer", "transport"]),
    source=st.uuids().map(str),
    seconds=st.integers(min_value=0, max_value=10 * 365 * 86400),
)
def test_any_simulated_event_round_trips(kind: str, source: str, seconds: int) -> None:
    e = Event(
        kind=kind,
        event_id=event_id(kind, source),
        source_id=source,
        occurred_at=datetime.fromtimestamp(1_577_836_800 + seconds, tz=UTC),
        patient_id=PATIENT,
        department_code=None,
        detail={},
    )
    got = decode(encode(e))
    assert (got.event_id, got.occurred_at, got.department_code) == (e.event_id, e.occurred_at, None)


def _with(**changes: object) -> bytes:
    record = orjson.loads(encode(_event()))
    for key, value in changes.items():
        if value is ...:
            del record[key]
        else:
            record[key] = value
    return orjson.dumps(record)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty message"),
        (b"not json {", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_with(schema_version=...), "missing field schema_version"),
        (_with(schema_version=99), "unknown schema_version 99"),
        (_with(schema_version=True), "unknown schema_version"),
        (_with(patient_id=...), "missing field(s) patient_id"),
        (_with(occurred_at=None), "missing field(s) occurred_at"),
        (_with(kind="teleport"), "unknown kind"),
        (_with(source_id="nope"), "source_id 'nope' is not a uuid"),
        (_with(event_id=event_id("transfer", PATIENT)), "event_id does not match"),
        (_with(occurred_at="1800-01-01T00:00:00+00:00"), "is impossible"),
        (_with(occurred_at="2020-01-01T00:00:00"), "no time zone"),
        (_with(occurred_at="yesterday"), "not an ISO timestamp"),
        (_with(department_code=""), "department_code"),
        (_with(detail=[1]), "detail is not a JSON object"),
        (_with(detail={"x": "a\u0000b"}), "NUL"),
    ],
)
def test_invalid_messages_name_the_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=None) as info:
        decode(value)
    assert reason in str(info.value)
