"""The dashboard's FastAPI application: HTML pages, the JSON API they fetch, /metrics.

Pages are static HTML (package data) that fetch ``/api/page/<name>`` and draw each chart with
Plotly.js, served from the installed ``plotly`` wheel: the dashboard works offline, no CDN.
Chart results are cached for a few seconds so many open browsers cost the database one query
per chart per refresh period, not one per viewer.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hospital import clock
from hospital.dashboard.db import DashboardDbError, ReadPool
from hospital.dashboard.queries import CHARTS, LATEST_METRICS_SQL, PAGES, Chart, ChartData
from hospital.settings import Settings


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the installed ``plotly`` package."""
    # find_spec locates the package without importing it (importing plotly is slow).
    spec = importlib.util.find_spec("plotly")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0] if folders else ".") / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise DashboardDbError(f"plotly.min.js not found at {path}: reinstall the plotly package")
    return path


def _asset(name: str) -> str:
    return resources.files("hospital.dashboard").joinpath("pages", name).read_text("utf-8")


class _ChartCache:
    """(chart, window) -> (expires_at, data); one fetch at a time per key."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[tuple[str, int | None], tuple[float, ChartData]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int | None]) -> ChartData | None:
        with self._lock:
            hit = self._data.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, key: tuple[str, int | None], data: ChartData, ttl: float = 0.0) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + max(self.ttl, ttl), data)


class _PipelineCollector(Collector):
    """The newest value of every (path, metric) in pipeline_metrics, as Prometheus gauges."""

    def __init__(self, pool: ReadPool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "hospital_pipeline_metric",
            "Newest value each pipeline worker reported (pipeline_metrics).",
            labels=["path", "metric"],
        )
        try:
            rows = self.pool.fetch(LATEST_METRICS_SQL) or []
        except DashboardDbError:
            rows = []
        for path, metric, value in rows:
            family.add_metric([str(path), str(metric)], float(value))
        yield family


def create_app(settings: Settings, pool: ReadPool | None = None) -> FastAPI:
    """The dashboard app reading through ``pool`` (default: the analyst pool of ``settings``)."""
    pool = pool or ReadPool.for_settings(settings)
    cache = _ChartCache(ttl=min(5.0, settings.dashboard_refresh_seconds / 2))
    registry = CollectorRegistry()
    requests = Counter(
        "hospital_dashboard_requests", "Dashboard HTTP requests.", ["endpoint"], registry=registry
    )
    chart_seconds = Histogram(
        "hospital_dashboard_chart_seconds",
        "Time to query one chart.",
        ["chart"],
        registry=registry,
    )
    chart_errors = Counter(
        "hospital_dashboard_chart_errors",
        "Chart queries that failed.",
        ["chart"],
        registry=registry,
    )
    registry.register(_PipelineCollector(pool))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.close()

    app = FastAPI(
        title="hospital dashboard", docs_url="/api/docs", redoc_url=None, lifespan=lifespan
    )
    app.state.pool = pool
    app.state.settings = settings

    @app.exception_handler(DashboardDbError)
    def _db_down(_request: Request, exc: DashboardDbError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503)

    def chart_data(chart: Chart, window: int | None) -> ChartData:
        key = (chart.id, window)
        cached = cache.get(key)
        if cached is not None:
            return cached
        start = time.perf_counter()
        try:
            data = chart.fetch(pool.fetch, window)
        except DashboardDbError:
            chart_errors.labels(chart.id).inc()
            raise
        chart_seconds.labels(chart.id).observe(time.perf_counter() - start)
        cache.put(key, data, chart.min_refresh_seconds)
        return data

    def page_html(name: str) -> HTMLResponse:
        title, charts = PAGES[name]
        config = {
            "page": name,
            "title": title,
            "api": f"/api/page/{name}",
            "refresh_seconds": settings.dashboard_refresh_seconds,
            "charts": [{"id": c.id, "title": c.title} for c in charts],
            "pages": [{"name": n, "title": t} for n, (t, _) in PAGES.items()],
        }
        html = (
            _asset("page.html")
            .replace("{{title}}", title)
            .replace("{{config}}", json.dumps(config).replace("</", "<\\/"))
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/pipeline")

    @app.get("/pipeline", response_class=HTMLResponse)
    def pipeline_page() -> HTMLResponse:
        requests.labels("page").inc()
        return page_html("pipeline")

    @app.get("/hospital", response_class=HTMLResponse)
    def hospital_page() -> HTMLResponse:
        requests.labels("page").inc()
        return page_html("hospital")

    @app.get("/api/pages")
    def api_pages() -> dict[str, Any]:
        return {
            "pages": [
                {"name": n, "title": t, "charts": [c.id for c in charts]}
                for n, (t, charts) in PAGES.items()
            ]
        }

    @app.get("/api/page/{name}")
    def api_page(name: str) -> dict[str, Any]:
        """Every chart of one page, as Plotly-ready traces."""
        requests.labels("api_page").inc()
        if name not in PAGES:
            raise HTTPException(404, f"no page {name!r}; pages: {', '.join(PAGES)}")
        title, charts = PAGES[name]
        return {
            "page": name,
            "title": title,
            "generated_at": clock.utcnow().isoformat(),
            "charts": [chart_data(c, None).as_dict() for c in charts],
        }

    @app.get("/api/chart/{chart_id}")
    def api_chart(
        chart_id: str,
        window: int | None = Query(None, ge=1, le=100_000, description="hours/days/months/N"),
    ) -> dict[str, Any]:
        """One chart; ``window`` overrides how far back it looks (unit depends on the chart)."""
        requests.labels("api_chart").inc()
        chart = CHARTS.get(chart_id)
        if chart is None:
            raise HTTPException(404, f"no chart {chart_id!r}; charts: {', '.join(CHARTS)}")
        return chart_data(chart, window).as_dict()

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            ok = pool.fetch("SELECT 1") == [(1,)]
        except DashboardDbError as exc:
            return JSONResponse({"status": "degraded", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok" if ok else "unexpected answer"})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_asset() -> FileResponse:
        return FileResponse(
            plotly_js(),
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/static/{name}", include_in_schema=False)
    def static_asset(name: str) -> Response:
        types = {"dashboard.js": "application/javascript", "dashboard.css": "text/css"}
        if name not in types:
            raise HTTPException(404, "not found")
        return Response(_asset(name), media_type=types[name])

    return app
