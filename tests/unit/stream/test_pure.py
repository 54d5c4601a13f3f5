"""Pure parts of the stream path: COPY text encoding, fast event ids, reconciliation rules."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from hospital.simulator.events import Event, event_id
from hospital.stream.lake import Landed
from hospital.stream.reconcile import KindDay, PathsReconciliation
from hospital.stream.schema import decode, encode, fast_event_id
from hospital.stream.sinkdb import copy_text

_UNESCAPE = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def _copy_fields(line: str) -> list[str | None]:
    """Read one COPY text line back the way PostgreSQL does."""
    return [
        None if f == "\\N" else re.sub(r"\\[\\tnr]", lambda m: _UNESCAPE[m.group()], f)
        for f in line.split("\t")
    ]


@given(
    text=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=30,
    ),
    dept=st.one_of(st.none(), st.text(alphabet="AB\t\\\n", min_size=1, max_size=8)),
)
def test_copy_text_survives_any_detail_text(text: str, dept: str | None) -> None:
    source = "00000000-0000-4000-8000-000000000001"
    e = Event(
        kind="transfer",
        event_id=event_id("transfer", source),
        source_id=source,
        occurred_at=datetime(2020, 1, 1, 12, tzinfo=UTC),
        patient_id="00000000-0000-4000-8000-000000000002",
        department_code=dept,
        detail={"reason": text, "tab\t": "x\\y"},
    )
    landed = Landed(decode(encode(e)), "topic\tname", 2, 7, 0)
    (line,) = copy_text([landed]).decode().split("\n")[:-1]  # PostgreSQL ends rows at \n only
    fields = _copy_fields(line)
    assert fields[0] == e.event_id and fields[4] == dept
    assert orjson.loads(fields[7] or "") == e.detail
    assert fields[8:] == ["topic\tname", "2", "7"]


@given(kind=st.sampled_from(["admission", "discharge", "transfer", "transport"]), u=st.uuids())
def test_fast_event_id_is_the_simulator_event_id(kind: str, u: uuid.UUID) -> None:
    assert fast_event_id(kind, str(u)) == event_id(kind, str(u))


def test_reconciliation_rules() -> None:
    day = date(2020, 1, 2)
    ok = KindDay(day, "transfer", lake_rows=2, lake={"a", "b"}, stream_db={"a", "b"})
    ok.batch = {"a", "b", "c"}
    ok.filled_in = {"c"}
    assert ok.clean and ok.batch_only == ["c"] and ok.stream_only == []
    stream_only = KindDay(day, "admission", lake_rows=1, lake={"x"}, stream_db={"x"})
    assert not stream_only.clean and stream_only.stream_only == ["x"]
    lake_ahead = KindDay(day, "discharge", lake_rows=1, lake={"y"}, batch={"y"})
    assert not lake_ahead.clean and lake_ahead.lake_vs_db == ["y"]
    dup = KindDay(day, "transport", lake_rows=3, lake={"z", "w"}, stream_db={"z", "w"})
    dup.batch = {"z", "w"}
    assert not dup.clean and dup.lake_duplicates == 1
    pending = KindDay(day, "transfer", batch_file={"q"})
    assert pending.clean and pending.file_not_loaded == ["q"]
    report = PathsReconciliation([ok, stream_only])
    assert not report.clean and report.filled_in_by_batch == 1
    assert report.as_dict()["rows"][1]["stream_only"] == ["x"]
    assert PathsReconciliation([ok, pending]).clean
