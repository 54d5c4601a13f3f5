"""Bring the whole stack up, down, and report on it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from hospital.errors import StackError
from hospital.settings import Settings
from hospital.stack import background, jvm
from hospital.stack.connect import Connect
from hospital.stack.kafka import Kafka
from hospital.stack.postgres import Postgres
from hospital.stack.process import names_path, tail
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

    @property
    def lock_path(self) -> Path:
        return self.settings.stack_path / "stack.lock"

    @contextlib.contextmanager
    def locked(self, report: Reporter = _silent, timeout: float = 600.0) -> Iterator[None]:
        """Hold the stack's file lock: one `up`/`down` at a time per stack folder.

        flock is released by the kernel when the holder dies, so a killed `up` never leaves a
        stale lock behind.
        """
        self.prepare_folder()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            waiting = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StackError(
                            f"another `hospital stack up/down` holds {self.lock_path} "
                            f"for more than {timeout:.0f}s"
                        ) from None
                    if not waiting:
                        report("stack", "waiting for another `hospital stack up/down`")
                        waiting = True
                    time.sleep(0.2)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def folder_mode(self) -> int:
        """Permissions of the stack folder: owner only, plus traverse for the server's user.

        As root the cluster runs as the `postgres` system user, which must reach its data dir
        when that lives inside the stack folder (it does unless the /var/tmp fallback is used).
        """
        pg = self.postgres
        if pg.run_as and not pg.external and pg.base.is_relative_to(self.settings.stack_path):
            return 0o711
        return 0o700

    def prepare_folder(self) -> None:
        self.settings.stack_path.mkdir(parents=True, exist_ok=True)
        self.settings.stack_path.chmod(self.folder_mode())

    def up(self, report: Reporter = _silent, migrate: bool = True) -> list[StepResult]:
        """Start what is not healthy; leave healthy services alone. Idempotent."""
        with self.locked(report):
            return self._up(report, migrate)

    def _up(self, report: Reporter, migrate: bool) -> list[StepResult]:
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
                if svc is self.postgres and self.postgres.refresh_access():
                    report("postgres", "pg_hba.conf updated and reloaded")
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
            return all(
                migrate.current(self.settings, t) == migrate.heads(t)
                for t in migrate.managed_trees(self.settings)
            )
        except SQLAlchemyError:
            return False

    def down(self, report: Reporter = _silent) -> list[StepResult]:
        """Stop exactly the processes this stack started: background ones, then services."""
        if not self.settings.stack_path.exists():
            return [StepResult(s.name, "not running", 0.0) for s in reversed(self.services)]
        with self.locked(report):
            return self._down(report)

    def _down(self, report: Reporter) -> list[StepResult]:
        results: list[StepResult] = []
        started = time.perf_counter()
        # Workers and UIs first: they hold connections to the services below.
        if background.running(self.settings):
            report("background", "stopping workers and UIs")
        for proc in background.stop_all(self.settings):
            results.append(StepResult(proc.name, "stopped", time.perf_counter() - started))
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
        """The services, then every registered background process that still runs."""
        services = [svc.status() for svc in self.services]
        extra = [
            ServiceStatus(
                name=p.name,
                pid=p.pid,
                port=p.port,
                running=True,
                healthy=True,
                external=False,
                address=p.url or "",
                kind="background",
            )
            for p in background.running(self.settings)
        ]
        return services + extra

    def logs(self, name: str, lines: int = 80) -> str:
        svc = self.service(name)
        return tail(svc.log_path, lines)

    def leftover_processes(self) -> list[int]:
        """Pids of any process whose command line names this stack's directories.

        Whole paths only: the folder `.stack` does not match a process of `.stack-test`.
        """
        markers = (str(self.settings.stack_path), str(self.postgres.data))
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            args = proc.info["cmdline"] or []
            if proc.info["status"] != psutil.STATUS_ZOMBIE and any(
                names_path(args, marker) for marker in markers
            ):
                found.append(int(proc.info["pid"]))
        return found
