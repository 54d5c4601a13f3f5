"""What each chart shows: one SQL query per chart and a pure function shaping its rows.

Nothing here opens a connection. A chart is fetched through a ``Fetch`` callable (the read pool's
``fetch``), which returns ``None`` when a table the query needs does not exist yet: the chart is
then empty, with a note saying why. Windows are anchored at the newest data, not at the wall
clock, so a finished run still shows its charts the next day.

``pipeline_metrics`` conventions the charts rely on (every worker reports this way):
``rows_applied`` and ``quarantined`` are increments per report (summed per minute); ``lag``,
``latency_ms_*`` and ``restarts`` (cumulative per worker) are gauges (last/max value per minute).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg import sql

Row = tuple[Any, ...]
Fetch = Callable[[str | sql.Composed, Sequence[object]], list[Row] | None]
Kind = Literal["line", "bar", "stacked", "hbar"]

# How far back the charts look, from the newest row (overridable per request).
PIPELINE_HOURS = 6
HOSPITAL_DAYS = 365
STAFF_MONTHS = 36
TOP_DIAGNOSES = 15

# Influenza and pneumonia: ICD-10 J09-J18 (the flu-season curve), compared on the 3-character
# category (a plain string range: far cheaper than a regex over millions of diagnoses).
FLU_FROM, FLU_TO = "J09", "J18"

# Tables whose newest row tells how fresh each path's output is, with their time column.
FRESHNESS_TABLES: tuple[tuple[str, str], ...] = (
    ("patients", "updated_at"),
    ("visits", "updated_at"),
    ("diagnoses", "updated_at"),
    ("doctor_notes", "updated_at"),
    ("medications", "updated_at"),
    ("allergies", "updated_at"),
    ("admissions", "updated_at"),
    ("transfers", "updated_at"),
    ("pharmacy_orders", "updated_at"),
    ("bed_events", "occurred_at"),
)

# Quarantine / dead-letter tables are found by name, whichever stage created them.
QUARANTINE_TABLES_SQL = """
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  AND (c.relname LIKE '%%quarantine%%' OR c.relname LIKE '%%dead_letter%%'
       OR c.relname LIKE '%%rejected%%')
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY c.relname
"""


@dataclass
class Trace:
    name: str
    x: list[Any] = field(default_factory=list)
    y: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "x": [jsonable(v) for v in self.x], "y": self.y}


@dataclass
class ChartData:
    id: str
    title: str
    kind: Kind
    x_title: str
    y_title: str
    traces: list[Trace]
    note: str | None = None

    @property
    def points(self) -> int:
        return sum(len(t.y) for t in self.traces)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "x_title": self.x_title,
            "y_title": self.y_title,
            "traces": [t.as_dict() for t in self.traces],
            "points": self.points,
            "note": self.note,
        }


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    kind: Kind
    x_title: str
    y_title: str
    load: Callable[[Fetch, int], tuple[list[Trace], str | None]]
    # The window unit for this chart's ``window`` argument (hours, days, months or top-N).
    default_window: int
    # Minimum seconds between two queries of this chart (scans of big tables refresh slower).
    min_refresh_seconds: float = 0.0

    def fetch(self, fetch: Fetch, window: int | None = None) -> ChartData:
        traces, note = self.load(fetch, window or self.default_window)
        return ChartData(self.id, self.title, self.kind, self.x_title, self.y_title, traces, note)


# --- pure shaping -------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Dates as ISO strings, decimals as floats: what JSON and Plotly understand."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def number(value: Any) -> float | None:
    return None if value is None else float(value)


def long_to_traces(rows: Sequence[Row]) -> list[Trace]:
    """Rows of (x, series, y) -> one trace per series, in order of first appearance."""
    traces: dict[str, Trace] = {}
    for x, series, y in rows:
        trace = traces.setdefault(str(series), Trace(str(series)))
        trace.x.append(x)
        trace.y.append(number(y))
    return list(traces.values())


def wide_to_traces(rows: Sequence[Row], names: Sequence[str]) -> list[Trace]:
    """Rows of (x, y1, y2, ...) -> one trace per named column."""
    traces = [Trace(name) for name in names]
    for row in rows:
        for trace, y in zip(traces, row[1:], strict=True):
            trace.x.append(row[0])
            trace.y.append(number(y))
    return traces


def _missing(what: str) -> str:
    return f"no data yet: {what} does not exist or is not readable"


# --- pipeline health ----------------------------------------------------------------------------

# Bucket width adapts to the span of the data: about 120 points per series, in round seconds,
# so a 30-second backfill and a 9-day walkthrough both draw a curve. ``{agg}`` may use
# ``b.seconds`` (e.g. rows per bucket / b.seconds = rows per second).
# The (path, metric) series present, found by walking the (path, metric, ts) index one key at a
# time (a "loose index scan"): with millions of reports, every step below is an index probe per
# series instead of a scan of the whole table.
SERIES_KEYS = """
WITH RECURSIVE keys AS (
    (SELECT path, metric FROM pipeline_metrics ORDER BY path, metric LIMIT 1)
    UNION ALL
    SELECT n.path, n.metric
    FROM keys k, LATERAL (
        SELECT p.path, p.metric FROM pipeline_metrics p
        WHERE (p.path, p.metric) > (k.path, k.metric)
        ORDER BY p.path, p.metric
        LIMIT 1
    ) n
)"""

_BUCKETS = (
    SERIES_KEYS
    + """,
latest AS MATERIALIZED (
    SELECT (SELECT max(p.ts) FROM pipeline_metrics p
            WHERE p.path = k.path AND p.metric = k.metric) AS ts
    FROM keys k
),
lo AS MATERIALIZED (
    SELECT max(ts) - make_interval(hours => %s::int) AS since, max(ts) AS top FROM latest
),
first AS MATERIALIZED (
    SELECT min((SELECT min(p.ts) FROM pipeline_metrics p
                WHERE p.path = k.path AND p.metric = k.metric AND p.ts >= lo.since)) AS ts
    FROM keys k, lo
),
b AS MATERIALIZED (
    SELECT coalesce(
               (SELECT min(x) FROM unnest(ARRAY[1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900,
                                                1800, 3600]) AS x
                WHERE x >= extract(epoch FROM lo.top - first.ts) / 120),
               3600
           )::double precision AS seconds
    FROM lo, first
)"""
)
_BUCKET = "to_timestamp(floor(extract(epoch FROM m.ts) / b.seconds) * b.seconds)"
# One series' reports inside the window: an index range scan per (path, metric).
_IN_WINDOW = (
    "SELECT p.ts, p.path, p.metric, p.value FROM pipeline_metrics p"
    " WHERE p.path = k.path AND p.metric = k.metric AND p.ts >= lo.since"
    " OFFSET 0"  # a fence: keeps the planner from flattening it into one scan of the table
)

_METRIC_SERIES = (
    _BUCKETS
    + f"""
SELECT {_BUCKET} AS t, {{series}} AS series, {{agg}} AS value
FROM keys k, lo, b, LATERAL ({_IN_WINDOW}) m
WHERE {{where}}
GROUP BY 1, 2, b.seconds
ORDER BY 1, 2
"""
)

# Rows per second: each report holds the rows since the previous report of the same series, so
# a bucket's rate is its rows over the time its reports cover (a series' first report, with no
# predecessor, only marks the start).
_RATE_SERIES = (
    _BUCKETS
    + f""",
reports AS (
    SELECT m.ts, m.path, m.value,
           extract(epoch FROM m.ts - lag(m.ts) OVER (PARTITION BY m.path, m.metric ORDER BY m.ts))
               AS covered
    FROM keys k, lo, LATERAL ({_IN_WINDOW}) m
    WHERE {{where}}
)
SELECT {_BUCKET} AS t, m.path AS series, sum(m.value) / sum(m.covered) AS value
FROM reports m, b
WHERE m.covered > 0
GROUP BY 1, 2, b.seconds
ORDER BY 1, 2
"""
)


def metric_series_sql(series: str, agg: str, where: str) -> str:
    return _METRIC_SERIES.format(series=series, agg=agg, where=where)


# What each path calls its figures (increments per report unless noted):
# cdc rows_applied, lag, lag_seconds (commit-to-apply), quarantined; stream events_applied, lag,
# latency_ms_p99, quarantined; batch rows_loaded, rows_quarantined; fhir rows_applied,
# quarantined; scheduler worker_restarts (cumulative) and days_per_minute.
THROUGHPUT_METRICS = ("rows_applied", "events_applied", "rows_loaded")
QUARANTINE_METRICS = ("quarantined", "rows_quarantined")
RESTART_METRICS = ("restarts", "worker_restarts")


def _in(names: tuple[str, ...]) -> str:
    return "m.metric IN (" + ", ".join(f"'{n}'" for n in names) + ")"


THROUGHPUT_SQL = _RATE_SERIES.format(where=_in(THROUGHPUT_METRICS))
LAG_SQL = metric_series_sql("m.path", "max(m.value)", "m.metric = 'lag'")
# End-to-end latency in ms: latency_ms_* gauges, and the CDC applier's seconds behind the
# source commit (lag_seconds).
LATENCY_SQL = metric_series_sql(
    "m.path || ' ' || CASE WHEN m.metric = 'lag_seconds' THEN 'commit to apply' ELSE m.metric END",
    "max(CASE WHEN m.metric = 'lag_seconds' THEN m.value * 1000.0 ELSE m.value END)",
    "(m.metric LIKE 'latency%%' OR m.metric = 'lag_seconds')",
)
RESTARTS_SQL = metric_series_sql("m.path", "max(m.value)", _in(RESTART_METRICS))
QUARANTINED_METRIC_SQL = (
    SERIES_KEYS
    + f"""
SELECT k.path, sum(t.total)
FROM keys k, LATERAL (
    SELECT sum(p.value) AS total FROM pipeline_metrics p
    WHERE p.path = k.path AND p.metric = k.metric
    OFFSET 0
) t
WHERE {_in(QUARANTINE_METRICS).replace("m.metric", "k.metric")}
GROUP BY k.path
ORDER BY k.path
"""
)
# The newest value of every series (Prometheus gauges).
LATEST_METRICS_SQL = (
    SERIES_KEYS
    + """
SELECT k.path, k.metric, l.value
FROM keys k, LATERAL (
    SELECT p.value FROM pipeline_metrics p
    WHERE p.path = k.path AND p.metric = k.metric
    ORDER BY p.ts DESC
    LIMIT 1
) l
ORDER BY k.path, k.metric
"""
)


def _metric_loader(query: str) -> Callable[[Fetch, int], tuple[list[Trace], str | None]]:
    def load(fetch: Fetch, hours: int) -> tuple[list[Trace], str | None]:
        rows = fetch(query, (hours,))
        if rows is None:
            return [], _missing("pipeline_metrics")
        return long_to_traces(rows), None if rows else "no figures reported yet"

    return load


def freshness_sql(table: str, column: str) -> sql.Composed:
    return sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(table))


def freshness_traces(newest: dict[str, dt.datetime | None]) -> list[Trace]:
    """Hours each table is behind the newest simulated time seen in any of them."""
    known = {t: v for t, v in newest.items() if v is not None}
    if not known:
        return []
    top = max(known.values())
    trace = Trace("hours behind the newest table")
    for table, value in known.items():
        trace.x.append(table)
        trace.y.append(round((top - value).total_seconds() / 3600.0, 2))
    return [trace]


def _load_freshness(fetch: Fetch, _window: int) -> tuple[list[Trace], str | None]:
    newest: dict[str, dt.datetime | None] = {}
    for table, column in FRESHNESS_TABLES:
        rows = fetch(freshness_sql(table, column), ())
        value = rows[0][0] if rows else None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        newest[table] = value
    traces = freshness_traces(newest)
    return traces, None if traces else "no rows in any mirrored table yet"


def quarantine_count_sql(tables: Sequence[str]) -> sql.Composed:
    parts = [
        sql.SQL("SELECT {}::text, count(*) FROM {}").format(sql.Literal(name), sql.Identifier(name))
        for name in tables
    ]
    return sql.SQL(" UNION ALL ").join(parts)


def _load_quarantine(fetch: Fetch, _window: int) -> tuple[list[Trace], str | None]:
    traces: list[Trace] = []
    tables = [str(r[0]) for r in fetch(QUARANTINE_TABLES_SQL, ()) or []]
    if tables:
        rows = fetch(quarantine_count_sql(tables), ()) or []
        traces.append(
            Trace("rows in quarantine tables", [r[0] for r in rows], [r[1] for r in rows])
        )
    reported = fetch(QUARANTINED_METRIC_SQL, ()) or []
    if reported:
        traces.append(
            Trace(
                "reported by workers",
                [f"{r[0]} (reported)" for r in reported],
                [number(r[1]) for r in reported],
            )
        )
    return traces, None if traces else "nothing quarantined"


# --- the hospital -------------------------------------------------------------------------------

# The world's first day: rosters start on it. Patients already in a bed then (the initial
# census) were admitted earlier, but the hospital's history starts there.
WORLD_START = "(SELECT coalesce(min(work_date), '-infinity'::date) FROM staff_assignments)"

ADMISSIONS_SQL = f"""
WITH hi AS (SELECT max(admitted_at) AS top FROM admissions)
SELECT a.admitted_at::date AS day, a.department_code, count(*)
FROM admissions a, hi
WHERE a.admitted_at > hi.top - make_interval(days => %s::int)
  AND a.admitted_at >= {WORLD_START}
GROUP BY 1, 2
ORDER BY 1, 2
"""

# Beds in use at the end of each day: +1 on the admission date, -1 on the discharge date,
# summed up (one pass over admissions, not one per day).
OCCUPANCY_SQL = f"""
WITH hi AS (
    SELECT greatest(min(admitted_at)::date, {WORLD_START}) AS first, max(admitted_at)::date AS top
    FROM admissions
),
win AS (SELECT greatest(hi.first, hi.top - (%s::int - 1)) AS lo, hi.top FROM hi),
changes AS (
    SELECT admitted_at::date AS day, count(*) AS delta FROM admissions GROUP BY 1
    UNION ALL
    SELECT discharged_at::date, -count(*) FROM admissions WHERE discharged_at IS NOT NULL GROUP BY 1
),
per_day AS (SELECT day, sum(delta) AS delta FROM changes GROUP BY day),
before AS (
    SELECT coalesce(sum(p.delta), 0) AS n FROM per_day p, win WHERE p.day < win.lo
),
days AS (
    SELECT generate_series(win.lo, win.top, interval '1 day')::date AS day FROM win
),
cap AS (SELECT coalesce(sum(bed_capacity), 0) AS beds FROM departments)
SELECT d.day,
       before.n + sum(coalesce(p.delta, 0)) OVER (ORDER BY d.day) AS occupied,
       cap.beds
FROM days d LEFT JOIN per_day p ON p.day = d.day, before, cap
ORDER BY d.day
"""

DIVERSIONS_SQL = """
WITH hi AS (SELECT max(transferred_at) AS top FROM transfers)
SELECT t.transferred_at::date AS day, count(*)
FROM transfers t, hi
WHERE t.transfer_type = 'inter_facility'
  AND t.transferred_at > hi.top - make_interval(days => %s::int)
GROUP BY 1
ORDER BY 1
"""

FLU_SQL = f"""
WITH hi AS (SELECT max(diagnosed_at) AS top FROM diagnoses)
SELECT date_trunc('week', d.diagnosed_at)::date AS week,
       count(*) FILTER (WHERE left(d.icd10_code, 3) BETWEEN '{FLU_FROM}' AND '{FLU_TO}')
           AS influenza_pneumonia,
       count(*) AS all_respiratory
FROM diagnoses d, hi
WHERE d.diagnosed_at > hi.top - make_interval(days => %s::int) AND d.icd10_code LIKE 'J%%'
  AND d.diagnosed_at >= {WORLD_START}
GROUP BY 1
ORDER BY 1
"""

STAFF_SQL = """
WITH hi AS (
    SELECT date_trunc('month', max(greatest(hire_date, coalesce(retire_date, hire_date))))::date
           AS top
    FROM staff
),
months AS (
    SELECT generate_series(hi.top - make_interval(months => %s::int - 1), hi.top,
                           interval '1 month')::date AS m
    FROM hi
),
replacements AS (SELECT DISTINCT replaced_by AS staff_id FROM staff WHERE replaced_by IS NOT NULL)
SELECT m.m,
       (SELECT count(*) FROM staff s
        WHERE s.hire_date < m.m + interval '1 month'
          AND (s.retire_date IS NULL OR s.retire_date >= m.m + interval '1 month')) AS headcount,
       (SELECT count(*) FROM staff s
        WHERE s.retire_date >= m.m AND s.retire_date < m.m + interval '1 month') AS retirements,
       (SELECT count(*) FROM staff s JOIN replacements r USING (staff_id)
        WHERE s.hire_date >= m.m AND s.hire_date < m.m + interval '1 month') AS replacements
FROM months m
ORDER BY m.m
"""

TOP_DIAGNOSES_SQL = """
SELECT icd10_code || ' ' || min(description) AS diagnosis, count(*) AS n
FROM diagnoses
GROUP BY icd10_code
ORDER BY n DESC, icd10_code
LIMIT %s::int
"""


def _long_loader(query: str, what: str) -> Callable[[Fetch, int], tuple[list[Trace], str | None]]:
    def load(fetch: Fetch, window: int) -> tuple[list[Trace], str | None]:
        rows = fetch(query, (window,))
        if rows is None:
            return [], _missing(what)
        return long_to_traces(rows), None if rows else f"no rows in {what} yet"

    return load


def _wide_loader(
    query: str, what: str, names: Sequence[str], empty: str | None = None
) -> Callable[[Fetch, int], tuple[list[Trace], str | None]]:
    def load(fetch: Fetch, window: int) -> tuple[list[Trace], str | None]:
        rows = fetch(query, (window,))
        if rows is None:
            return [], _missing(what)
        return wide_to_traces(rows, names), None if rows else (empty or f"no rows in {what} yet")

    return load


def _load_top_diagnoses(fetch: Fetch, top: int) -> tuple[list[Trace], str | None]:
    rows = fetch(TOP_DIAGNOSES_SQL, (top,))
    if rows is None:
        return [], _missing("diagnoses")
    # Horizontal bars read top-down: largest first means plotting it last.
    rows = list(reversed(rows))
    return [Trace("diagnoses", [r[0] for r in rows], [r[1] for r in rows])], (
        None if rows else "no rows in diagnoses yet"
    )


PIPELINE_CHARTS: tuple[Chart, ...] = (
    Chart(
        "throughput",
        "Throughput per path (rows/s)",
        "line",
        "time",
        "rows per second",
        _metric_loader(THROUGHPUT_SQL),
        PIPELINE_HOURS,
    ),
    Chart(
        "lag",
        "Consumer lag",
        "line",
        "time",
        "messages behind",
        _metric_loader(LAG_SQL),
        PIPELINE_HOURS,
    ),
    Chart(
        "latency",
        "End-to-end latency (CDC and others)",
        "line",
        "time",
        "milliseconds",
        _metric_loader(LATENCY_SQL),
        PIPELINE_HOURS,
    ),
    Chart(
        "freshness",
        "Freshness per table (simulated hours behind the newest)",
        "bar",
        "table",
        "hours",
        _load_freshness,
        1,
        # max() over every mirrored table scans millions of patients: once a minute is enough.
        min_refresh_seconds=60.0,
    ),
    Chart(
        "quarantine",
        "Quarantined records",
        "bar",
        "table or path",
        "records",
        _load_quarantine,
        1,
        min_refresh_seconds=15.0,
    ),
    Chart(
        "restarts",
        "Worker restarts (cumulative)",
        "line",
        "time",
        "restarts",
        _metric_loader(RESTARTS_SQL),
        PIPELINE_HOURS,
    ),
)

HOSPITAL_CHARTS: tuple[Chart, ...] = (
    Chart(
        "admissions",
        "Daily admissions by department",
        "stacked",
        "day",
        "admissions",
        _long_loader(ADMISSIONS_SQL, "admissions"),
        HOSPITAL_DAYS,
    ),
    Chart(
        "occupancy",
        "Bed occupancy against capacity",
        "line",
        "day",
        "beds",
        _wide_loader(OCCUPANCY_SQL, "admissions", ("occupied beds", "bed capacity")),
        90,
    ),
    Chart(
        "diversions",
        "Diversions to other facilities (no bed available)",
        "bar",
        "day",
        "patients diverted",
        _wide_loader(
            DIVERSIONS_SQL, "transfers", ("diversions",), "no diversions: every patient got a bed"
        ),
        HOSPITAL_DAYS,
    ),
    Chart(
        "flu",
        "Flu season: influenza and pneumonia (J09-J18) per week",
        "line",
        "week",
        "diagnoses",
        _wide_loader(FLU_SQL, "diagnoses", ("influenza and pneumonia", "all respiratory (J)")),
        HOSPITAL_DAYS,
        min_refresh_seconds=20.0,
    ),
    Chart(
        "staff",
        "Staff headcount, retirements and replacements per month",
        "line",
        "month",
        "staff",
        _wide_loader(STAFF_SQL, "staff", ("headcount", "retirements", "replacements")),
        STAFF_MONTHS,
    ),
    Chart(
        "top_diagnoses",
        "Top diagnoses",
        "hbar",
        "diagnoses",
        "",
        _load_top_diagnoses,
        TOP_DIAGNOSES,
        min_refresh_seconds=30.0,
    ),
)

PAGES: dict[str, tuple[str, tuple[Chart, ...]]] = {
    "pipeline": ("Pipeline health", PIPELINE_CHARTS),
    "hospital": ("The hospital", HOSPITAL_CHARTS),
}
CHARTS: dict[str, Chart] = {c.id: c for _, charts in PAGES.values() for c in charts}
