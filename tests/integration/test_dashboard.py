"""The dashboard against the real hospital database: a known data set in, exact figures out.

The dashboard runs detached through the library API (``start_background``), exactly as
``hospital run`` starts it, reads as the ``analyst`` role, and is stopped at the end.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import psycopg
import pytest

from hospital.dashboard import server
from hospital.settings import Settings
from hospital.stack import background

pytestmark = pytest.mark.integration

DAY0 = date(2020, 6, 1)
DAYS = 10
DEPARTMENTS = (("MED", "General Medicine", "medical", 10), ("ICU", "ICU", "critical_care", 4))
# (icd10, description, how many, week offset from DAY0)
DIAGNOSES = (
    ("J11.1", "Influenza with other respiratory manifestations", 5, 0),
    ("J11.1", "Influenza with other respiratory manifestations", 8, 1),
    ("J18.9", "Pneumonia, unspecified organism", 2, 1),
    ("J45.9", "Asthma, unspecified", 3, 0),
    ("I10", "Essential (primary) hypertension", 4, 0),
    # Diagnosed before the world's first day (the census's earlier visits): not in the flu curve.
    ("J10.1", "Influenza with other respiratory manifestations, virus identified", 4, -3),
)
SEEDED_TABLES = (
    "departments",
    "staff",
    "staff_assignments",
    "admissions",
    "diagnoses",
    "transfers",
    "pipeline_metrics",
)


def _ts(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _uid(*parts: object) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, "dashboard-test/" + "/".join(map(str, parts)))


def expected_occupancy(day: date) -> int:
    """Each day: 2 MED admissions staying 3 nights, 1 ICU admission staying 1 night."""
    occupied = 0
    for d in range(DAYS):
        admitted = DAY0 + timedelta(days=d)
        for los, count in ((3, 2), (1, 1)):
            if admitted <= day < admitted + timedelta(days=los):
                occupied += count
    return occupied


def seed_hospital(settings: Settings) -> None:
    """A small known hospital, written as hospital_app (the writer role), after a truncate."""
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        cur = conn.cursor()
        cur.execute(f"TRUNCATE {', '.join(SEEDED_TABLES)} CASCADE")
        cur.executemany(
            "INSERT INTO departments (department_code, name, kind, bed_capacity)"
            " VALUES (%s, %s, %s, %s)",
            DEPARTMENTS,
        )
        admissions = []
        for d in range(DAYS):
            day = DAY0 + timedelta(days=d)
            for n, (dept, los) in enumerate((("MED", 3), ("MED", 3), ("ICU", 1))):
                admitted = _ts(day, 9 + n)
                admissions.append(
                    (
                        _uid("adm", d, n),
                        _uid("pat", d, n),
                        dept,
                        admitted,
                        admitted + timedelta(days=los),
                        "discharged",
                        admitted,
                    )
                )
        cur.executemany(
            "INSERT INTO admissions (admission_id, patient_id, department_code, admitted_at,"
            " discharged_at, status, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            admissions,
        )
        rows = []
        for i, (code, text, count, week) in enumerate(DIAGNOSES):
            for k in range(count):
                at = _ts(DAY0 + timedelta(days=7 * week + k % 5))
                rows.append(
                    (_uid("dx", i, k), _uid("visit", i, k), _uid("p", i, k), code, text, at)
                )
        cur.executemany(
            "INSERT INTO diagnoses (diagnosis_id, visit_id, patient_id, icd10_code, description,"
            " is_primary, diagnosed_at, status, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, true, %s, 'final', %s, %s)",
            [(*r, r[5], r[5]) for r in rows],
        )
        # Two diversions on day 2, one on day 5; a ward movement that is not a diversion.
        transfers = [
            (_uid("tr", 0), "inter_facility", DAY0 + timedelta(days=2)),
            (_uid("tr", 1), "inter_facility", DAY0 + timedelta(days=2)),
            (_uid("tr", 2), "inter_facility", DAY0 + timedelta(days=5)),
            (_uid("tr", 3), "ward_movement", DAY0 + timedelta(days=5)),
        ]
        cur.executemany(
            "INSERT INTO transfers (transfer_id, patient_id, transfer_type, from_department,"
            " transferred_at, updated_at) VALUES (%s, %s, %s, 'MED', %s, %s)",
            [(t, _uid("tp", t), kind, _ts(d), _ts(d)) for t, kind, d in transfers],
        )
        # Six staff hired in 2015; one retires on 2020-05-15 and is replaced the same day.
        staff = []
        for i in range(6):
            staff.append((_uid("st", i), date(2015, 1, 1), None, "active", None))
        staff.append((_uid("st", 6), date(2020, 5, 15), None, "active", None))
        staff.append((_uid("st", 7), date(2015, 1, 1), date(2020, 5, 15), "retired", _uid("st", 6)))
        cur.executemany(
            "INSERT INTO staff (staff_id, national_id, first_name, last_name, sex, birth_date,"
            " role, department_code, hire_date, retire_date, status, replaced_by)"
            " VALUES (%s, '8001015009087', 'Thandi', 'Nkosi', 'F', '1960-05-15', 'nurse', 'MED',"
            " %s, %s, %s, %s)",
            staff,
        )
        # The rosters start on the world's first day; the hospital charts start there too.
        cur.execute(
            "INSERT INTO staff_assignments (work_date, staff_id, shift, department_code)"
            " VALUES (%s, %s, 'day', 'MED')",
            (DAY0, _uid("st", 0)),
        )
        # Pipeline figures as the workers name them: ten one-minute reports, ending a minute ago.
        metrics = []
        for minute in range(10):
            ago = f"{10 - minute} minutes"
            for path, metric, per_minute in (
                ("cdc", "rows_applied", 600.0),
                ("stream", "events_applied", 1200.0),
                ("batch", "rows_loaded", 60.0),
            ):
                metrics.append((ago, path, metric, per_minute))
            metrics.append((ago, "cdc", "lag", float(minute * 3)))
            metrics.append((ago, "stream", "lag", 1.0))
            metrics.append((ago, "cdc", "lag_seconds", 0.25 + minute / 1000))
            metrics.append((ago, "stream", "latency_ms_p99", 40.0))
            metrics.append((ago, "scheduler", "worker_restarts", float(minute // 5)))
        metrics.append(("1 minute", "stream", "quarantined", 3.0))
        metrics.append(("1 minute", "batch", "rows_quarantined", 2.0))
        metrics.append(("2 minutes", "batch", "rows_quarantined", 5.0))
        cur.executemany(
            "INSERT INTO pipeline_metrics (ts, path, metric, value)"
            " VALUES (now() - %s::interval, %s, %s, %s)",
            metrics,
        )


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dashboard(stack: Settings) -> Iterator[tuple[Settings, str]]:
    """A seeded hospital and a dashboard on a free port, stopped afterwards."""
    settings = stack.model_copy(update={"dashboard_port": free_port(stack.host)})
    server.stop(settings)  # a dashboard left over from an interrupted run
    seed_hospital(settings)
    address = server.start_background(settings)
    try:
        yield settings, address
    finally:
        server.stop(settings)


def test_api_serves_exact_figures_of_the_seeded_hospital(
    dashboard: tuple[Settings, str],
) -> None:
    _settings, address = dashboard
    body = httpx.get(f"{address}/api/page/hospital", timeout=30).json()
    charts = {c["id"]: c for c in body["charts"]}

    admissions = {t["name"]: t for t in charts["admissions"]["traces"]}
    assert set(admissions) == {"ICU", "MED"}
    assert admissions["MED"]["y"] == [2.0] * DAYS and admissions["ICU"]["y"] == [1.0] * DAYS
    assert admissions["MED"]["x"][0] == DAY0.isoformat()

    occupied, capacity = charts["occupancy"]["traces"]
    days = [DAY0 + timedelta(days=d) for d in range(DAYS)]
    assert occupied["x"] == [d.isoformat() for d in days]
    assert occupied["y"] == [float(expected_occupancy(d)) for d in days]
    assert set(capacity["y"]) == {14.0}

    [diversions] = charts["diversions"]["traces"]
    assert diversions["x"] == [
        (DAY0 + timedelta(days=2)).isoformat(),
        (DAY0 + timedelta(5)).isoformat(),
    ]
    assert diversions["y"] == [2.0, 1.0]

    flu, respiratory = charts["flu"]["traces"]
    assert sum(flu["y"]) == 5 + 8 + 2  # J11.1 and J18.9; asthma (J45) is not flu
    assert sum(respiratory["y"]) == 5 + 8 + 2 + 3

    headcount, retirements, replacements = charts["staff"]["traces"]
    by_month = dict(zip(headcount["x"], headcount["y"], strict=True))
    assert by_month["2020-04-01"] == 7 and by_month["2020-05-01"] == 7
    assert dict(zip(retirements["x"], retirements["y"], strict=True))["2020-05-01"] == 1
    assert dict(zip(replacements["x"], replacements["y"], strict=True))["2020-05-01"] == 1
    assert sum(retirements["y"]) == 1 and sum(replacements["y"]) == 1

    [top] = charts["top_diagnoses"]["traces"]
    assert top["x"][-1].startswith("J11.1") and top["y"][-1] == 13
    assert top["y"] == sorted(top["y"])

    pipeline = httpx.get(f"{address}/api/page/pipeline", timeout=30).json()
    p = {c["id"]: c for c in pipeline["charts"]}
    throughput = {t["name"]: t for t in p["throughput"]["traces"]}
    assert set(throughput) == {"batch", "cdc", "stream"}
    assert set(throughput["stream"]["y"]) == {20.0}  # 1,200 rows a minute
    assert len(throughput["cdc"]["x"]) == 9  # the first report only marks the start
    assert max({t["name"]: t for t in p["lag"]["traces"]}["cdc"]["y"]) == 27.0
    latency = {t["name"]: t for t in p["latency"]["traces"]}
    assert set(latency) == {"cdc commit to apply", "stream latency_ms_p99"}
    assert max(latency["cdc commit to apply"]["y"]) == pytest.approx(259.0)
    fresh = dict(
        zip(p["freshness"]["traces"][0]["x"], p["freshness"]["traces"][0]["y"], strict=True)
    )
    # Newest diagnosis 2020-06-12 10:00, newest admission 2020-06-10 11:00 (other stages' rows
    # in unseeded tables may be newer still: compare the two seeded ones).
    assert fresh["admissions"] - fresh["diagnoses"] == 47.0
    [reported] = [t for t in p["quarantine"]["traces"] if t["name"] == "reported by workers"]
    assert dict(zip(reported["x"], reported["y"], strict=True)) == {
        "batch (reported)": 7.0,
        "stream (reported)": 3.0,
    }
    [restarts] = p["restarts"]["traces"]
    assert restarts["name"] == "scheduler" and max(restarts["y"]) == 1.0

    metrics = httpx.get(f"{address}/metrics", timeout=30).text
    assert 'hospital_pipeline_metric{metric="latency_ms_p99",path="stream"} 40.0' in metrics


def test_background_dashboard_is_registered_reads_as_analyst_and_stops(
    dashboard: tuple[Settings, str],
) -> None:
    settings, address = dashboard
    [record] = [r for r in background.running(settings) if r.name == "dashboard"]
    assert record.port == settings.dashboard_port and record.url == address
    # A second start is a no-op returning the same URL, not a second server.
    assert server.start_background(settings) == address
    assert [r.pid for r in background.running(settings) if r.name == "dashboard"] == [record.pid]
    assert (settings.stack_path / "logs" / "dashboard.log").exists()

    # Its database sessions are the analyst's, read-only.
    httpx.get(f"{address}/api/page/hospital", timeout=30)
    with psycopg.connect(settings.dsn("hospital", "superuser")) as conn:
        users = {
            r[0]
            for r in conn.execute(
                "SELECT usename FROM pg_stat_activity WHERE datname = 'hospital'"
                " AND backend_type = 'client backend'"
            )
        }
    assert "analyst" in users
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        psycopg.connect(settings.dsn("hospital", "analyst")) as conn,
    ):
        conn.execute("DELETE FROM pipeline_metrics")

    assert server.stop(settings) is True
    assert not record.alive()
    assert all(r.name != "dashboard" for r in background.running(settings))
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{address}/healthz", timeout=2)
    assert server.stop(settings) is False
