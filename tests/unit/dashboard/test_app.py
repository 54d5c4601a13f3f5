"""The FastAPI app over a fake pool: pages, JSON API, static Plotly, /metrics, errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from hospital.dashboard.app import create_app, plotly_js
from hospital.dashboard.db import DashboardDbError
from hospital.settings import Settings, load_settings


class FakePool:
    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.queries = 0

    def fetch(self, query: str | sql.Composed, params: Sequence[object] = ()) -> Any:
        if self.down:
            raise DashboardDbError("cannot connect to the hospital database: refused")
        self.queries += 1
        text = query if isinstance(query, str) else query.as_string(None)
        if "SELECT k.path, k.metric, l.value" in text:
            return [("cdc", "lag", 12.0), ("stream", "rows_applied", 500.0)]
        if "FROM admissions a, hi" in text:
            return [(dt.date(2020, 1, 1), "MED", 3), (dt.date(2020, 1, 1), "ICU", 1)]
        if text == "SELECT 1":
            return [(1,)]
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(stack_dir=tmp_path / "stack", dashboard_refresh_seconds=7)


def test_pages_api_and_static(settings: Settings) -> None:
    pool = FakePool()
    client = TestClient(create_app(settings, pool))  # type: ignore[arg-type]
    page = client.get("/hospital")
    assert page.status_code == 200
    assert '"/api/page/hospital"' in page.text and "/static/plotly.min.js" in page.text
    assert '"refresh_seconds": 7' in page.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/pipeline"

    body = client.get("/api/page/hospital").json()
    charts = {c["id"]: c for c in body["charts"]}
    assert set(charts) == {"admissions", "occupancy", "diversions", "flu", "staff", "top_diagnoses"}
    assert charts["admissions"]["points"] == 2
    assert charts["admissions"]["traces"][0] == {"name": "MED", "x": ["2020-01-01"], "y": [3.0]}
    assert charts["flu"]["points"] == 0 and charts["flu"]["note"]

    # Cached: a second request within the TTL does not query again.
    before = pool.queries
    client.get("/api/page/hospital")
    assert pool.queries == before

    assert client.get("/api/chart/admissions?window=30").json()["id"] == "admissions"
    assert client.get("/api/chart/nope").status_code == 404
    assert client.get("/api/page/nope").status_code == 404

    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) == plotly_js().stat().st_size
    assert "Plotly.react" in client.get("/static/dashboard.js").text
    assert client.get("/static/../settings.py").status_code == 404


def test_metrics_exposes_pipeline_gauges(settings: Settings) -> None:
    client = TestClient(create_app(settings, FakePool()))  # type: ignore[arg-type]
    client.get("/api/page/pipeline")
    text = client.get("/metrics").text
    assert 'hospital_pipeline_metric{metric="lag",path="cdc"} 12.0' in text
    assert 'hospital_dashboard_requests_total{endpoint="api_page"} 1.0' in text
    assert "hospital_dashboard_chart_seconds_count" in text


def test_database_down_is_a_503_with_one_sentence(settings: Settings) -> None:
    client = TestClient(create_app(settings, FakePool(down=True)))  # type: ignore[arg-type]
    response = client.get("/api/page/hospital")
    assert response.status_code == 503
    assert response.json()["error"].startswith("cannot connect")
    assert client.get("/healthz").status_code == 503
    assert client.get("/hospital").status_code == 200  # the page itself still loads
    assert "hospital_pipeline_metric" in client.get("/metrics").text
