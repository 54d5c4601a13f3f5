"""The end-of-run reconciliation report: every path checked, printed, written as JSON and HTML.

Checks: the EHR holds every simulated day exactly once; the
CDC mirror equals the EHR per table (``hospital.cdc.reconcile.reconcile_cdc``); stream and batch
agree per day (``hospital.stream.reconcile.reconcile_paths``); every batch drop written by the run
is in the ingest ledger (rejected files are explained by the ledger's error and quarantine);
every FHIR file dropped into the inbox has been ingested (quarantined resources are explained).
A check that fails is an *unexplained difference*: the run exits non-zero.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from hospital.clock import utcnow
from hospital.settings import Settings


@dataclass
class Check:
    name: str
    clean: bool | None  # None: nothing to check (e.g. no day ran through both paths)
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)
    table: Any = None  # the stage's own rich rendering, when it has one

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "clean": self.clean, "summary": self.summary, **self.detail}


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1)]


def _scalar(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def check_ehr(settings: Settings, days: list[date]) -> Check:
    with psycopg.connect(settings.dsn("ehr", "hospital_app")) as conn:
        held = {
            r[0]
            for r in conn.execute(
                "SELECT sim_day FROM sim_days WHERE sim_day = ANY(%s)", (days,)
            ).fetchall()
        }
    missing = [d.isoformat() for d in days if d not in held]
    return Check(
        "ehr",
        not missing,
        f"{len(held)}/{len(days)} simulated day(s) in the EHR"
        + (f"; missing {', '.join(missing[:5])}" if missing else ""),
        {"days": len(days), "in_ehr": len(held), "missing": missing},
    )


def check_cdc(settings: Settings) -> Check:
    from hospital.cdc.reconcile import reconcile_cdc

    result = reconcile_cdc(settings)
    detail = result.as_dict()
    clean = bool(result.clean)
    return Check(
        "cdc",
        clean,
        "EHR and hospital mirror agree per table" if clean else "EHR and mirror differ",
        {"reconciliation": detail},
        result.render(),
    )


def check_paths(settings: Settings, days: list[date]) -> Check:
    from hospital.stream.reconcile import reconcile_paths

    if not days:
        return Check("stream_vs_batch", None, "no day ran through both stream and batch")
    result = reconcile_paths(settings, dates=days)
    clean = bool(result.clean)
    return Check(
        "stream_vs_batch",
        clean,
        f"stream and batch agree on {len(days)} day(s)" if clean else "stream and batch differ",
        {"days": [d.isoformat() for d in days], "reconciliation": result.as_dict()},
        result.render(),
    )


def check_batch(settings: Settings, days: list[date]) -> Check:
    if not days:
        return Check("batch", None, "no batch day in this run")
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        if not _scalar(conn, "SELECT to_regclass('batch_ledger')"):
            return Check("batch", None, "not available: no batch_ledger table")
        rows = conn.execute(
            "SELECT drop_name, status, count(*), coalesce(sum(rows_loaded), 0), "
            "coalesce(sum(rows_rejected), 0) FROM batch_ledger GROUP BY drop_name, status"
        ).fetchall()
        quarantined = int(_scalar(conn, "SELECT count(*) FROM batch_quarantine") or 0)
    by_drop: dict[str, dict[str, int]] = {}
    loaded = rejected = rows_loaded = rows_rejected = 0
    for drop, status, files, rl, rr in rows:
        by_drop.setdefault(str(drop), {})[str(status)] = int(files)
        if any(d.isoformat() in str(drop) for d in days):
            loaded += int(files) if status == "loaded" else 0
            rejected += int(files) if status == "rejected" else 0
            rows_loaded += int(rl)
            rows_rejected += int(rr)
    pending = [d.isoformat() for d in days if not any(d.isoformat() in k for k in by_drop)]
    return Check(
        "batch",
        not pending,
        f"{loaded} file(s) ingested, {rejected} rejected, {rows_loaded:,} rows loaded"
        + (f"; not ingested: {', '.join(pending[:5])}" if pending else ""),
        {
            "files_ingested": loaded,
            "files_rejected": rejected,
            "rows_loaded": rows_loaded,
            "rows_rejected": rows_rejected,
            "quarantined_rows": quarantined,
            "days_not_ingested": pending,
        },
    )


def check_fhir(settings: Settings, exported_files: int) -> Check:
    inbox = settings.lake_path / "fhir" / "inbox"
    waiting = (
        sorted(
            p.name for p in inbox.iterdir() if p.suffix == ".json" and not p.name.startswith(".")
        )
        if inbox.is_dir()
        else []
    )
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        resources = int(_scalar(conn, "SELECT count(*) FROM fhir.resource") or 0)
        quarantined = int(_scalar(conn, "SELECT count(*) FROM fhir.quarantine") or 0)
    return Check(
        "fhir",
        not waiting,
        f"{exported_files} bundle file(s) exported, {len(waiting)} waiting in the inbox, "
        f"{resources:,} resources loaded, {quarantined:,} quarantined",
        {
            "files_exported": exported_files,
            "files_waiting": len(waiting),
            "waiting": waiting[:20],
            "resources_loaded": resources,
            "quarantined": quarantined,
        },
    )


def job_days(settings: Settings, world: str, days: list[date]) -> dict[str, list[date]]:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        rows = conn.execute(
            "SELECT job, sim_day FROM scheduler_job_days WHERE world = %s AND sim_day = ANY(%s)",
            (world, days),
        ).fetchall()
    out: dict[str, list[date]] = {}
    for job, day in rows:
        out.setdefault(str(job), []).append(day)
    return out


def fhir_files(settings: Settings, world: str, days: list[date]) -> int:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        value = _scalar(
            conn,
            "SELECT coalesce(sum((detail->>'files')::int), 0) FROM scheduler_job_days "
            "WHERE world = %s AND job = 'fhir' AND sim_day = ANY(%s)",
            (world, days),
        )
    return int(value or 0)


def run_checks(
    settings: Settings, world: str, first: date, last: date, jobs: set[str], quick: bool = False
) -> list[Check]:
    """Every available check over the run's days ``[first, last]`` (the days actually run).

    ``quick`` (a run asked to stop) skips the two that may wait for the pipelines to catch up.
    """
    days = _days(first, last) if last >= first else []
    done = job_days(settings, world, days)
    checks = [check_ehr(settings, sorted(done.get("simulator", [])))]
    if quick:
        checks.append(Check("cdc", None, "skipped: the run was stopped"))
        checks.append(Check("stream_vs_batch", None, "skipped: the run was stopped"))
    else:
        checks.append(check_cdc(settings) if "cdc" in jobs else Check("cdc", None, "not running"))
        both = sorted(set(done.get("stream", [])) & set(done.get("batch", [])))
        checks.append(check_paths(settings, both))
    if "batch" in done:
        checks.append(check_batch(settings, sorted(done["batch"])))
    if "fhir" in done:
        checks.append(check_fhir(settings, fhir_files(settings, world, days)))
    return checks


@dataclass
class RunReport:
    plan: dict[str, Any]
    engine: dict[str, Any]
    workers: list[dict[str, object]]
    checks: list[Check]
    unavailable: dict[str, str]
    totals: dict[str, int]
    started_at: datetime
    finished_at: datetime
    wall_seconds: float
    error: str | None = None

    @property
    def clean(self) -> bool:
        return self.error is None and all(c.clean is not False for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": "clean" if self.clean else "differences",
            "clean": self.clean,
            "error": self.error,
            "plan": self.plan,
            "engine": self.engine,
            "checks": [c.as_dict() for c in self.checks],
            "workers": self.workers,
            "not_available": self.unavailable,
            "totals": self.totals,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "wall_seconds": round(self.wall_seconds, 2),
        }


def render(data: dict[str, Any], tables: list[Any] | None = None) -> Group:
    """The report (from its JSON form) as rich tables; ``tables`` adds the stages' own views."""
    clean = bool(data.get("clean"))
    verdict = Text(
        "RECONCILED: no unexplained difference" if clean else "UNEXPLAINED DIFFERENCES",
        style="bold green" if clean else "bold red",
    )
    plan = data.get("plan", {})
    engine = data.get("engine", {})
    head = Text(
        f"profile {plan.get('profile')}: {engine.get('first_day')} .. "
        f"{engine.get('last_completed_day')} ({engine.get('days_completed')} day(s)), "
        f"speed {plan.get('speed')}, {plan.get('num_people', 0):,} people, "
        f"wall {data.get('wall_seconds')} s"
    )
    checks = Table(title="reconciliation")
    for col in ("check", "verdict", "summary"):
        checks.add_column(col)
    for c in data.get("checks", []):
        v = {True: "[green]clean[/]", False: "[red]DIFFERS[/]", None: "[dim]n/a[/]"}[c.get("clean")]
        checks.add_row(str(c.get("name")), v, str(c.get("summary")))
    for name, reason in data.get("not_available", {}).items():
        checks.add_row(name, "[dim]n/a[/]", reason)
    totals = Table(title="totals")
    totals.add_column("path")
    totals.add_column("rows pushed", justify="right")
    for path, n in data.get("totals", {}).items():
        totals.add_row(path, f"{n:,}")
    workers = Table(title="workers")
    for col in ("worker", "restarts", "last exit", "log"):
        workers.add_column(col)
    for w in data.get("workers", []):
        workers.add_row(str(w["name"]), str(w["restarts"]), str(w["last_exit"]), str(w["log"]))
    parts: list[Any] = [head, checks, totals, workers, *(tables or [])]
    if data.get("error"):
        parts.append(Text(f"error: {data['error']}", style="red"))
    parts.append(verdict)
    return Group(*parts)


def reports_dir(settings: Settings) -> Path:
    return settings.lake_path / "reports"


def write(settings: Settings, report: RunReport, tables: list[Any] | None = None) -> list[Path]:
    """``lake/reports/run-<utc>.json`` and ``.html``, plus ``latest.json`` / ``latest.html``."""
    folder = reports_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = report.finished_at.strftime("%Y%m%dT%H%M%SZ")
    data = report.as_dict()
    text = json.dumps(data, indent=2, default=str) + "\n"
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(render(data, tables))
    html = console.export_html(inline_styles=True)
    written = []
    for name, content in (
        (f"run-{stamp}.json", text),
        (f"run-{stamp}.html", html),
        ("latest.json", text),
        ("latest.html", html),
    ):
        path = folder / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


def latest(settings: Settings) -> dict[str, Any] | None:
    path = reports_dir(settings) / "latest.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def now() -> datetime:
    return utcnow()
