"""Run the dashboard: in the foreground (``hospital dashboard``) or detached (``--background``).

Either way the serving process registers itself with :mod:`hospital.stack.background`, so
``hospital stack status`` lists it and ``hospital stack down`` stops it. The library functions
:func:`start_background` and :func:`stop` are what ``hospital run`` (the scheduler) calls.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from pydantic import SecretStr

from hospital.errors import HospitalError
from hospital.settings import Settings, port_in_use
from hospital.stack import background

NAME = "dashboard"


class DashboardError(HospitalError):
    """The dashboard or pgAdmin could not be started or stopped."""


def url(settings: Settings, port: int | None = None) -> str:
    return f"http://{settings.host}:{port or settings.dashboard_port}"


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process build exactly these settings.

    Tests and the scheduler hold Settings built from files and overrides, not from the
    environment; a detached child must see the same values (stack folder, ports, passwords).
    """
    env = dict(os.environ)
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        alias = field.validation_alias
        var = name.upper()
        if alias is not None and hasattr(alias, "choices"):
            var = str(alias.choices[0]).upper()
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[var] = str(value)
    return env


def log_path(settings: Settings, name: str) -> Path:
    return settings.stack_path / "logs" / f"{name}.log"


def spawn_detached(settings: Settings, argv: list[str], name: str, env: dict[str, str]) -> int:
    """Start ``argv`` in its own session, output appended to <stack>/logs/<name>.log."""
    log = log_path(settings, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=settings.root,
            env=env,
            start_new_session=True,  # outlives the CLI and is not hit by its Ctrl-C
        )
    return proc.pid


def wait_http(address: str, pid: int, timeout: float, name: str, log: Path) -> None:
    """Until ``address`` answers any HTTP status; fail early if ``pid`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(address, timeout=2.0)
            return
        except httpx.HTTPError:
            pass
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                proc.wait(0)
                raise psutil.NoSuchProcess(pid)
        except psutil.NoSuchProcess:
            raise DashboardError(f"{name} exited during start-up; see {log}") from None
        time.sleep(0.3)
    raise DashboardError(f"{name} did not answer at {address} within {timeout:.0f}s; see {log}")


def registered(settings: Settings, name: str) -> background.BackgroundProcess | None:
    return next((r for r in background.running(settings) if r.name == name), None)


def stop_registered(settings: Settings, name: str, timeout: float = 15.0) -> bool:
    """SIGTERM the registered process ``name`` (SIGKILL after ``timeout``); False if none ran."""
    record = registered(settings, name)
    if record is None:
        return False
    proc = record.process()
    if proc is not None:
        procs = [proc, *proc.children(recursive=True)]
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.terminate()
        _gone, alive = psutil.wait_procs(procs, timeout=timeout)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(alive, timeout=5)
    background.unregister(settings, name, record.pid)
    return True


def serve(settings: Settings, port: int | None = None) -> None:
    """Serve the dashboard in this process until SIGINT/SIGTERM."""
    import uvicorn

    from hospital.dashboard.app import create_app

    port = port or settings.dashboard_port
    if port_in_use(settings.host, port):
        raise DashboardError(
            f"port {settings.host}:{port} is already in use: set DASHBOARD_PORT or stop the other"
            " program"
        )
    address = url(settings, port)
    background.register(settings, NAME, os.getpid(), port=port, url=address)
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=port,
            log_level="warning",
            access_log=False,
        )
    finally:
        background.unregister(settings, NAME, os.getpid())


def start_background(settings: Settings, port: int | None = None, timeout: float = 60.0) -> str:
    """Start the dashboard detached (a no-op if it already runs) and return its URL."""
    running = registered(settings, NAME)
    if running is not None:
        return running.url or url(settings, running.port)
    port = port or settings.dashboard_port
    if port_in_use(settings.host, port):
        raise DashboardError(f"port {settings.host}:{port} is already in use: set DASHBOARD_PORT")
    argv = [sys.executable, "-m", "hospital.cli", "dashboard", "--port", str(port)]
    pid = spawn_detached(settings, argv, NAME, settings_env(settings))
    address = url(settings, port)
    wait_http(address + "/healthz", pid, timeout, NAME, log_path(settings, NAME))
    return address


def stop(settings: Settings) -> bool:
    """Stop the dashboard started for this stack; False when none was running."""
    return stop_registered(settings, NAME)
