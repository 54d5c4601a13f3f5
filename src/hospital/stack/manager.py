"""Bring the whole stack up, down, and report on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hospital.errors import StackError
from hospital.settings import Settings
from hospital.stack import jvm
from hospital.stack.connect import Connect
from hospital.stack.kafka import Kafka
from hospital.stack.postgres import Postgres
from hospital.stack.process import alive, tail
from hospital.stack.service import Service, ServiceStatus

Action = Literal["started", "restarted", "already running", "external", "stopped", "not running"]
Reporter = Callable[[str, str], None]


def _silent(service: str, message: str) -> None:
    return None


@dataclass(frozen=True)
class StepResult:
    service: str
    action: Action
    seconds: float


class Stack:
    """The project's services in start order: PostgreSQL, Kafka, Kafka Connect."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.postgres = Postgres(settings)
        self.kafka = Kafka(settings)
        self.connect = Connect(settings)
        self.services: tuple[Service, ...] = (self.postgres, self.kafka, self.connect)

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        names = ", ".join(s.name for s in self.services)
        raise StackError(f"unknown service {name!r} (known: {names})")

    def up(self, report: Reporter = _silent, migrate: bool = True) -> list[StepResult]:
        """Start what is not healthy; leave healthy services alone. Idempotent."""
        self.settings.stack_path.mkdir(parents=True, exist_ok=True)
        self.settings.stack_path.chmod(0o755)
        if any(not s.external for s in (self.kafka, self.connect)) and not jvm.is_resolved(
            self.settings
        ):
            report("jvm", "fetching Kafka and Debezium jars with Maven")
            jvm.ensure_resolved(self.settings)
        results: list[StepResult] = []
        for svc in self.services:
            started = time.perf_counter()
            action: Action
            if svc.external:
                report(svc.name, f"checking external {svc.address}")
                svc.start()
                action = "external"
            elif svc.healthy():
                action = "already running"
            else:
                restarted = svc.running()
                if restarted:
                    report(svc.name, "running but unhealthy: restarting")
                    svc.stop()
                report(svc.name, "starting")
                svc.start()
                action = "restarted" if restarted else "started"
            if (
                svc is self.postgres
                and migrate
                and (action != "already running" or not self.schema_current())
            ):
                report("postgres", "roles, databases and migrations")
                self.migrate()
            results.append(StepResult(svc.name, action, time.perf_counter() - started))
            report(svc.name, action)
        return results

    def migrate(self) -> None:
        from hospital.warehouse import migrate, roles

        if self.settings.local_postgres:
            roles.bootstrap(self.settings)
        migrate.upgrade(self.settings)

    def schema_current(self) -> bool:
        """True when both databases are at the newest migration the code knows."""
        from sqlalchemy.exc import SQLAlchemyError

        from hospital.warehouse import migrate

        try:
            return all(migrate.current(self.settings, t) == migrate.heads(t) for t in migrate.TREES)
        except SQLAlchemyError:
            return False

    def down(self, report: Reporter = _silent) -> list[StepResult]:
        """Stop exactly the processes this stack started, in reverse order."""
        results: list[StepResult] = []
        for svc in reversed(self.services):
            started = time.perf_counter()
            if svc.external or not svc.running():
                action: Action = "not running"
            else:
                report(svc.name, "stopping")
                svc.stop()
                action = "stopped"
            results.append(StepResult(svc.name, action, time.perf_counter() - started))
        return results

    def status(self) -> list[ServiceStatus]:
        return [svc.status() for svc in self.services]

    def logs(self, name: str, lines: int = 80) -> str:
        svc = self.service(name)
        return tail(svc.log_path, lines)

    def leftover_processes(self) -> list[int]:
        """Pids of any process whose command line names this stack's directories."""
        markers = (str(self.settings.stack_path), str(self.postgres.data))
        pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
        return [pid for pid in pids if any(alive(pid, marker) for marker in markers)]
