"""Background processes that are not services (scheduler workers, dashboard, pgAdmin).

Each one registers itself in ``<stack>/run/<name>.json`` with its pid *and* the kernel's
creation time of that pid: a pid the kernel later hands to an unrelated process then no longer
matches, so it is never reported, nor signalled, as ours. ``hospital stack status`` lists them
and ``hospital stack down`` stops them before the services they use.

Usage from a long-running command::

    background.register(settings, "dashboard", os.getpid(), port=8050, url="http://...")
    try:
        serve()
    finally:
        background.unregister(settings, "dashboard")
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from hospital.errors import StackError
from hospital.settings import Settings

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class BackgroundProcess:
    name: str
    pid: int
    create_time: float
    port: int | None = None
    url: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "pid": self.pid,
            "create_time": self.create_time,
            "port": self.port,
            "url": self.url,
        }

    def process(self) -> psutil.Process | None:
        """The live process when the recorded pid still is the one we registered."""
        try:
            proc = psutil.Process(self.pid)
            # psutil derives create_time from boot time + start ticks: identical for one process.
            if abs(proc.create_time() - self.create_time) > 0.01:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return proc

    def alive(self) -> bool:
        return self.process() is not None


def run_dir(settings: Settings) -> Path:
    return settings.stack_path / "run"


def _record_path(settings: Settings, name: str) -> Path:
    if not _NAME.match(name):
        raise StackError(
            f"invalid background process name {name!r}: use letters, digits, '_', '.', '-'"
        )
    return run_dir(settings) / f"{name}.json"


def register(
    settings: Settings, name: str, pid: int, port: int | None = None, url: str | None = None
) -> BackgroundProcess:
    """Record ``pid`` as the running background process ``name`` (replacing a stale record).

    Raises StackError when ``pid`` does not run, or when another live process already holds
    ``name`` (two dashboards on one stack would fight over the port).
    """
    path = _record_path(settings, name)
    try:
        create_time = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        raise StackError(f"cannot register {name}: process {pid} does not run") from None
    existing = _load(path)
    if existing is not None and existing.pid != pid and existing.alive():
        raise StackError(
            f"{name} already runs as pid {existing.pid}: stop it first (hospital stack down)"
        )
    record = BackgroundProcess(name, pid, create_time, port, url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    # Write then rename: a reader never sees half a record.
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record.as_dict()) + "\n")
    tmp.replace(path)
    return record


def unregister(settings: Settings, name: str, pid: int | None = None) -> None:
    """Forget ``name``; with ``pid``, only when the record still names that pid."""
    path = _record_path(settings, name)
    if pid is not None:
        record = _load(path)
        if record is not None and record.pid != pid:
            return
    path.unlink(missing_ok=True)


def _load(path: Path) -> BackgroundProcess | None:
    try:
        raw = json.loads(path.read_text())
        return BackgroundProcess(
            name=str(raw["name"]),
            pid=int(raw["pid"]),
            create_time=float(raw["create_time"]),
            port=None if raw.get("port") is None else int(raw["port"]),
            url=None if raw.get("url") is None else str(raw["url"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(settings: Settings) -> list[BackgroundProcess]:
    """Registered processes that still run, by name; stale or unreadable records are removed."""
    folder = run_dir(settings)
    if not folder.is_dir():
        return []
    live: list[BackgroundProcess] = []
    for path in sorted(folder.glob("*.json")):
        record = _load(path)
        if record is not None and record.alive():
            live.append(record)
        else:
            # Re-check before deleting: the process may have just re-registered under this name.
            again = _load(path)
            if again is None or again == record:
                path.unlink(missing_ok=True)
            elif again.alive():
                live.append(again)
    return live


def _signal(procs: list[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.send_signal(sig)  # psutil refuses if the pid was reused since


def _wait(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` seconds; return those still alive (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for proc in procs:
            try:
                # wait() reaps our own children; for others it polls until the pid is gone.
                proc.wait(timeout=0)
            except psutil.TimeoutExpired:
                with contextlib.suppress(psutil.NoSuchProcess):
                    if proc.status() != psutil.STATUS_ZOMBIE:
                        left.append(proc)
            except psutil.NoSuchProcess:
                pass
        if not left or time.monotonic() >= deadline:
            return left
        procs = left
        time.sleep(0.1)


def stop_all(settings: Settings, timeout: float = 10.0) -> list[BackgroundProcess]:
    """Stop every registered background process: SIGTERM, wait, SIGKILL, wait.

    Processes that run under another registered one (a scheduler's workers) are signalled after
    their supervisor is gone, so the supervisor cannot restart them meanwhile. Descendants seen
    at the start are killed too if they outlive the grace period. Returns what was stopped.
    """
    import signal

    records = running(settings)
    procs: dict[int, psutil.Process] = {}
    for record in records:
        proc = record.process()
        if proc is not None:
            procs[record.pid] = proc
    descendants: list[psutil.Process] = []
    roots: list[psutil.Process] = []
    for proc in procs.values():
        try:
            ancestors = {p.pid for p in proc.parents()}
            descendants.extend(proc.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
        if not ancestors & procs.keys():
            roots.append(proc)
    deadline = time.monotonic() + timeout
    _signal(roots, signal.SIGTERM)
    _wait(roots, max(0.0, deadline - time.monotonic()))
    others = [p for p in procs.values() if p not in roots]
    _signal(others, signal.SIGTERM)
    survivors = _wait(list(procs.values()), max(0.0, deadline - time.monotonic()))
    survivors += _wait([d for d in descendants if d.pid not in procs], 0)
    if survivors:
        _signal(survivors, signal.SIGKILL)
        survivors = _wait(survivors, 5.0)
    if survivors:
        pids = ", ".join(str(p.pid) for p in survivors)
        raise StackError(f"background process(es) {pids} did not stop after SIGKILL")
    for record in records:
        unregister(settings, record.name, record.pid)
    return records
