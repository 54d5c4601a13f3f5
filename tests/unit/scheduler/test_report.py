"""The report: verdict, JSON + HTML files, `hospital report` exit codes, the live view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from hospital.clock import utcnow
from hospital.scheduler import cli, report
from hospital.scheduler.jobs import Counters
from hospital.scheduler.progress import Progress
from hospital.settings import get_settings, load_settings


def make(checks: list[report.Check], error: str | None = None) -> report.RunReport:
    now = utcnow()
    return report.RunReport(
        plan={"profile": "demo", "speed": "max", "num_people": 20_000},
        engine={"first_day": "2020-01-01", "last_completed_day": "2020-01-03", "days_completed": 3},
        workers=[{"name": "cdc", "restarts": 1, "last_exit": 0, "log": "x.log"}],
        checks=checks,
        unavailable={"worker batch": "not built"},
        totals={"ehr": 100},
        started_at=now,
        finished_at=now,
        wall_seconds=1.5,
        error=error,
    )


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HOSPITAL_LAKE_DIR", str(tmp_path / "lake"))
    get_settings.cache_clear()
    yield tmp_path / "lake"
    get_settings.cache_clear()


def test_verdict() -> None:
    assert make([report.Check("ehr", True, "ok"), report.Check("cdc", None, "n/a")]).clean
    assert not make(
        [report.Check("ehr", True, "ok"), report.Check("fhir", False, "1 waiting")]
    ).clean
    assert not make([report.Check("ehr", True, "ok")], error="job batch failed").clean


def test_files_and_report_command(lake: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli.app, ["report"]).exit_code == 2  # no run yet
    settings = load_settings(hospital_lake_dir=str(lake))
    written = report.write(settings, make([report.Check("fhir", False, "3 waiting")]))
    assert {p.name for p in written} >= {"latest.json", "latest.html"}
    data = json.loads((lake / "reports" / "latest.json").read_text())
    assert data["verdict"] == "differences" and data["checks"][0]["summary"] == "3 waiting"
    assert "3 waiting" in (lake / "reports" / "latest.html").read_text()
    result = runner.invoke(cli.app, ["report"])
    assert result.exit_code == 1 and "UNEXPLAINED DIFFERENCES" in result.output
    report.write(settings, make([report.Check("fhir", True, "0 waiting")]))
    result = runner.invoke(cli.app, ["report", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["clean"] is True


def test_live_view_renders_paths_workers_and_events() -> None:
    counters = Counters()
    counters.add("stream", 1234)
    workers = [{"name": "stream", "pid": 42, "running": True, "restarts": 2, "log": "w.log"}]
    progress = Progress(
        load_settings(), counters, lambda: workers, {"speed": "max"}, utcnow(), plain=True
    )
    progress.event("stream exited with -9 after 3.0s; restart in 1s")
    console = Console(record=True, width=160)
    console.print(progress.render())
    text = console.export_text()
    assert "1,234" in text and "exited with -9" in text and "42" in text
    assert "stream 1,234" in progress.line() and "worker restarts 2" in progress.line()
