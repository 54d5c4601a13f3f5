"""What every service of the stack offers the manager."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from hospital.settings import Settings


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    port: int | None
    running: bool
    healthy: bool
    external: bool
    address: str

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
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
