"""What every service of the stack offers the manager."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from hospital.errors import StackError
from hospital.settings import Settings, port_in_use
from hospital.stack.process import alive, read_pid, spawn, tail, terminate, wait_until


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    port: int | None
    running: bool
    healthy: bool
    external: bool
    address: str
    # "service" for PostgreSQL/Kafka/Connect, "background" for registered workers/UIs.
    kind: str = "service"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "pid": self.pid,
            "port": self.port,
            "running": self.running,
            "healthy": self.healthy,
            "external": self.external,
            "address": self.address,
        }


class Service(ABC):
    """A process of the stack (or an external endpoint standing in for one)."""

    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def logs_dir(self) -> Path:
        return self.settings.stack_path / "logs"

    @property
    def log_path(self) -> Path:
        return self.logs_dir / f"{self.name}.log"

    @property
    @abstractmethod
    def external(self) -> bool: ...

    @property
    @abstractmethod
    def port(self) -> int | None: ...

    @property
    @abstractmethod
    def address(self) -> str: ...

    @abstractmethod
    def pid(self) -> int | None:
        """Pid of our process when it runs, else None."""

    @abstractmethod
    def healthy(self) -> bool: ...

    @abstractmethod
    def start(self) -> None:
        """Start and block until healthy; raise StackError with the log's tail otherwise."""

    @abstractmethod
    def stop(self) -> None: ...

    def running(self) -> bool:
        return self.pid() is not None

    def status(self) -> ServiceStatus:
        pid = None if self.external else self.pid()
        return ServiceStatus(
            name=self.name,
            pid=pid,
            port=self.port,
            running=self.external or pid is not None,
            healthy=self.healthy(),
            external=self.external,
            address=self.address,
        )


class JvmService(Service):
    """A JVM process of ours (broker, Connect worker): one properties file, one pid file.

    The properties file's path is the marker on the command line that tells our process from
    any other one that happens to reuse its pid.
    """

    main_class: str
    config_name: str
    start_timeout: float = 120.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.home = settings.stack_path / self.name

    @property
    def config_path(self) -> Path:
        return self.home / self.config_name

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def heap_mb(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def properties(self) -> str:
        """The service's configuration file, rendered from settings."""

    def prepare(self) -> None:
        """One-time work before the first start (e.g. formatting storage)."""

    def pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if alive(pid, str(self.config_path)) else None

    def ensure_ports_free(self, ports: dict[str, int]) -> None:
        for variable, port in ports.items():
            if port_in_use(self.settings.client_host, port):
                raise StackError(
                    f"port {port} is already in use by another program: "
                    f"set {variable} to a free port"
                )

    def launch(self) -> None:
        """Write config, spawn the JVM, and wait until healthy (or raise with the log tail)."""
        from hospital.stack import jvm

        running = self.pid()
        if running is not None:
            # Rewriting its config or spawning a twin would orphan the running one.
            raise StackError(f"{self.name} already runs as pid {running}: stop it first")
        jvm.ensure_resolved(self.settings)
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.properties())
        self.prepare()
        argv = jvm.java_command(self.settings, self.heap_mb, self.main_class, str(self.config_path))
        # Refuses, leaving the pid file alone, when one of ours already runs.
        pid = spawn(argv, self.log_path, self.pid_file, self.home, marker=str(self.config_path))
        # The pid is ours for sure here: no command-line check while it starts.
        ok = wait_until(lambda: self.healthy() or not alive(pid, None), self.start_timeout, 1)
        if not ok or not self.healthy():
            terminate(pid, None)
            if read_pid(self.pid_file) == pid:
                self.pid_file.unlink(missing_ok=True)
            raise StackError(f"{self.name} did not become healthy:\n{tail(self.log_path)}")

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None and not self.external:
            terminate(pid, str(self.config_path), timeout=45)
        self.pid_file.unlink(missing_ok=True)
