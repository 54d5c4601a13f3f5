"""Live progress of a run: a ``rich`` Live table on a terminal, plain log lines otherwise.

Shows the simulated date and speed, what the scheduler pushed into each path and at which rate,
what the sinks report in ``pipeline_metrics`` since the run began (rows applied, lag ...), the
quarantine counts of every path, and each worker's pid and restarts. A monitor thread polls the
hospital database every couple of seconds; rendering never blocks the day loop.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hospital.scheduler.jobs import Counters
from hospital.settings import Settings

QUARANTINE_TABLES = {
    "cdc": "cdc_quarantine",
    "stream": "stream_quarantine",
    "batch": "batch_quarantine",
    "fhir": "fhir.quarantine",
}
PATHS = ("ehr", "cdc", "stream", "batch", "fhir")


@dataclass
class SinkFigures:
    """What the hospital database says (sums since the run began, latest lag, quarantines)."""

    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    lag: dict[str, float] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def read_sinks(settings: Settings, since: datetime) -> SinkFigures:
    out = SinkFigures()
    try:
        with psycopg.connect(settings.dsn("hospital", "hospital_app"), connect_timeout=5) as conn:
            conn.execute("SET statement_timeout = 5000")
            for path, metric, total, latest in conn.execute(
                "SELECT path, metric, sum(value), "
                "(array_agg(value ORDER BY ts DESC))[1] FROM pipeline_metrics "
                "WHERE ts >= %s AND path <> 'scheduler' GROUP BY path, metric",
                (since,),
            ).fetchall():
                if "lag" in metric:
                    out.lag[path] = float(latest)
                else:
                    out.metrics.setdefault(path, {})[metric] = float(total)
            for path, table in QUARANTINE_TABLES.items():
                row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
                if row and row[0]:
                    n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                    out.quarantined[path] = int(n[0]) if n else 0
    except psycopg.Error as exc:
        out.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return out


def plain_output() -> bool:
    """No live display when output is not a terminal, or under CI."""
    return bool(os.environ.get("CI")) or not Console().is_terminal


class Progress:
    """The run's display; :meth:`day_done` and :meth:`event` are called by the run."""

    def __init__(
        self,
        settings: Settings,
        counters: Counters,
        workers: Callable[[], list[dict[str, object]]],
        plan: dict[str, Any],
        since: datetime,
        console: Console | None = None,
        plain: bool | None = None,
        poll_seconds: float = 2.0,
    ) -> None:
        self.settings = settings
        self.counters = counters
        self.workers = workers
        self.plan = plan
        self.since = since
        self.console = console or Console()
        self.plain = plain_output() if plain is None else plain
        self.poll_seconds = poll_seconds
        self.sim_day: date | None = None
        self.days_done = 0
        self.t0 = time.perf_counter()
        self.sinks = SinkFigures()
        self.events: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None
        self._last_plain = 0.0
        self._q0: dict[str, int] | None = None

    # --- feed ----------------------------------------------------------------------------------
    def day_done(self, day: date) -> None:
        self.sim_day = day
        self.days_done += 1
        if self.plain:
            self.console.print(self.line(), highlight=False)

    def event(self, message: str) -> None:
        self.events = [*self.events[-4:], message]
        if self.plain or self._live is None:
            self.console.print(f"[yellow]{message}[/]", highlight=False)

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if not self.plain:
            self._live = Live(self.render(), console=self.console, refresh_per_second=2)
            self._live.start()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._live is not None:
            with contextlib.suppress(Exception):
                self._live.update(self.render())
            self._live.stop()
            self._live = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            sinks = read_sinks(self.settings, self.since)
            # Quarantine tables keep history: show what this run added.
            if self._q0 is None and sinks.error is None:
                self._q0 = dict(sinks.quarantined)
            base = self._q0 or {}
            sinks.quarantined = {k: v - base.get(k, 0) for k, v in sinks.quarantined.items()}
            self.sinks = sinks
            if self._live is not None:
                self._live.update(self.render())
            elif time.perf_counter() - self._last_plain >= 15:
                self._last_plain = time.perf_counter()
                self.console.print(self.line(), highlight=False)
            self._stop.wait(self.poll_seconds)

    # --- views ---------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return max(time.perf_counter() - self.t0, 1e-9)

    def days_per_minute(self) -> float:
        return self.days_done / self.elapsed * 60

    def line(self) -> str:
        parts = [
            f"sim {self.sim_day or '-'}",
            f"{self.days_done} day(s)",
            f"{self.days_per_minute():.1f} days/min",
        ]
        for path in PATHS:
            n = self.counters.rows.get(path)
            if n:
                parts.append(f"{path} {n:,} ({n / self.elapsed:,.0f}/s)")
        q = sum(self.sinks.quarantined.values())
        parts.append(f"quarantined {q:,}")
        restarts = sum(int(str(w.get("restarts", 0))) for w in self.workers())
        parts.append(f"worker restarts {restarts}")
        return " | ".join(parts)

    def render(self) -> Group:
        head = Text.assemble(
            ("simulated day ", "bold"),
            (str(self.sim_day or "-"), "bold cyan"),
            f"   {self.days_done} day(s) done, {self.days_per_minute():.1f} simulated days/min, "
            f"speed {self.plan.get('speed')}, wall {self.elapsed:,.0f} s",
        )
        paths = Table(title="paths", expand=False)
        for col in ("path", "pushed", "per s", "sink figures (this run)", "lag", "quarantined+"):
            paths.add_column(
                col, justify="left" if col in ("path", "sink figures (this run)") else "right"
            )
        for path in PATHS:
            n = self.counters.rows.get(path, 0)
            figures = ", ".join(
                f"{k} {v:,.0f}" for k, v in sorted(self.sinks.metrics.get(path, {}).items())[:4]
            )
            lag = self.sinks.lag.get(path)
            paths.add_row(
                path,
                f"{n:,}",
                f"{n / self.elapsed:,.0f}",
                figures or "-",
                "-" if lag is None else f"{lag:,.0f}",
                str(self.sinks.quarantined.get(path, "-")),
            )
        workers = Table(title="workers")
        for col in ("worker", "pid", "state", "restarts", "log"):
            workers.add_column(col)
        for w in self.workers():
            state = "[green]running[/]" if w.get("running") else "[red]down[/]"
            workers.add_row(str(w["name"]), str(w["pid"]), state, str(w["restarts"]), str(w["log"]))
        parts: list[Any] = [head, paths, workers]
        if self.sinks.error:
            parts.append(Text(f"database: {self.sinks.error}", style="red"))
        parts.extend(Text(e, style="yellow") for e in self.events)
        return Group(*parts)
