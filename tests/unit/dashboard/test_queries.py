"""Chart shaping and loaders, with a fake fetch standing in for the read pool."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from typing import Any

from psycopg import sql

from hospital.dashboard import queries
from hospital.dashboard.queries import CHARTS, PAGES, Trace

UTC = dt.UTC


def test_long_to_traces_groups_by_series_in_order() -> None:
    rows = [
        (dt.date(2020, 1, 1), "MED", 3),
        (dt.date(2020, 1, 1), "ICU", 1),
        (dt.date(2020, 1, 2), "MED", decimal.Decimal("4")),
    ]
    traces = queries.long_to_traces(rows)
    assert [t.name for t in traces] == ["MED", "ICU"]
    assert traces[0].x == [dt.date(2020, 1, 1), dt.date(2020, 1, 2)]
    assert traces[0].y == [3.0, 4.0]
    assert traces[1].as_dict() == {"name": "ICU", "x": ["2020-01-01"], "y": [1.0]}


def test_wide_to_traces_one_trace_per_column() -> None:
    rows = [("2020-01-01", 10, 100), ("2020-01-02", 12, None)]
    occupied, capacity = queries.wide_to_traces(rows, ("occupied", "capacity"))
    assert occupied.y == [10.0, 12.0]
    assert capacity.y == [100.0, None]
    assert occupied.x == capacity.x == ["2020-01-01", "2020-01-02"]


def test_jsonable_dates_and_decimals() -> None:
    assert queries.jsonable(dt.datetime(2020, 5, 1, 12, tzinfo=UTC)) == "2020-05-01T12:00:00+00:00"
    assert queries.jsonable(dt.date(2020, 5, 1)) == "2020-05-01"
    assert queries.jsonable(decimal.Decimal("1.5")) == 1.5
    assert queries.jsonable("MED") == "MED"


def test_freshness_is_hours_behind_the_newest_table() -> None:
    newest = {
        "admissions": dt.datetime(2020, 3, 2, 12, tzinfo=UTC),
        "visits": dt.datetime(2020, 3, 2, 0, tzinfo=UTC),
        "bed_events": None,  # empty table: left out, not zero
    }
    [trace] = queries.freshness_traces(newest)
    assert dict(zip(trace.x, trace.y, strict=True)) == {"admissions": 0.0, "visits": 12.0}
    assert queries.freshness_traces({"visits": None}) == []


def test_quarantine_count_sql_quotes_identifiers() -> None:
    composed = queries.quarantine_count_sql(["stream_quarantine", 'odd"name'])
    assert isinstance(composed, sql.Composed)
    text = composed.as_string(None)
    assert '"stream_quarantine"' in text
    assert '"odd""name"' in text
    assert text.count("UNION ALL") == 1


class FakeDb:
    """Answers queries by a substring of the SQL; None means 'table does not exist'."""

    def __init__(self, answers: dict[str, list[tuple[Any, ...]] | None]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, Sequence[object]]] = []

    def __call__(self, query: str | sql.Composed, params: Sequence[object]) -> Any:
        text = query if isinstance(query, str) else query.as_string(None)
        self.calls.append((text, params))
        for key, rows in self.answers.items():
            if key in text:
                return rows
        return []


def test_missing_table_gives_an_empty_chart_with_a_note() -> None:
    fetch = FakeDb({"FROM admissions": None})
    data = CHARTS["admissions"].fetch(fetch)
    assert data.traces == []
    assert data.points == 0
    assert data.note is not None and "admissions" in data.note


def test_chart_window_reaches_the_query() -> None:
    fetch = FakeDb({"FROM admissions": [(dt.date(2020, 1, 1), "MED", 2)]})
    data = CHARTS["admissions"].fetch(fetch, window=30)
    assert fetch.calls[-1][1] == (30,)
    assert data.points == 1 and data.note is None
    CHARTS["admissions"].fetch(fetch)
    assert fetch.calls[-1][1] == (queries.HOSPITAL_DAYS,)


def test_quarantine_combines_tables_and_reported_counts() -> None:
    fetch = FakeDb(
        {
            "FROM pg_class": [("stream_quarantine",), ("fhir_quarantine",)],
            "'rows_quarantined'": [("batch", 7.0)],
            'FROM "stream_quarantine" UNION ALL': [
                ("stream_quarantine", 4),
                ("fhir_quarantine", 0),
            ],
        }
    )
    data = CHARTS["quarantine"].fetch(fetch)
    tables, reported = data.traces
    assert tables.x == ["stream_quarantine", "fhir_quarantine"] and tables.y == [4, 0]
    assert reported.x == ["batch (reported)"] and reported.y == [7.0]


def test_top_diagnoses_largest_last_for_horizontal_bars() -> None:
    fetch = FakeDb({"FROM diagnoses": [("J11.1 Influenza", 9), ("I10 Hypertension", 5)]})
    [trace] = CHARTS["top_diagnoses"].fetch(fetch).traces
    assert trace.x == ["I10 Hypertension", "J11.1 Influenza"]
    assert trace.y == [5, 9]


def test_every_page_chart_is_unique_and_serialisable() -> None:
    ids = [c.id for _, charts in PAGES.values() for c in charts]
    assert len(ids) == len(set(ids)) == len(CHARTS) == 12
    fetch = FakeDb({})
    for chart in CHARTS.values():
        data = chart.fetch(fetch).as_dict()
        assert data["id"] == chart.id and data["points"] == 0
        assert isinstance(data["traces"], list)


def test_trace_default_lists_are_not_shared() -> None:
    a, b = Trace("a"), Trace("b")
    a.x.append(1)
    assert b.x == []
