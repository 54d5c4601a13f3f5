"""Start, find and stop the stack's own processes through pid files.

A pid file is trusted only while ``/proc/<pid>/cmdline`` still contains the marker we started
the process with, so a recycled pid is never mistaken for (or killed as) one of ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int | None, marker: str | None) -> bool:
    """True when ``pid`` runs and was started with ``marker`` on its command line.

    ``marker=None`` is for a pid we just spawned ourselves: only "still running" is asked,
    because a JVM launcher that re-executes itself briefly shows an empty command line.
    """
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z" and (marker is None or marker in cmdline(pid))


def spawn(argv: list[str], log_file: Path, pid_file: Path, cwd: Path) -> int:
    """Start ``argv`` detached in its own session, output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,  # survives the CLI, and is not hit by its Ctrl-C
        )
    # Popen returns once exec has begun, but the kernel fills /proc/<pid>/cmdline a moment
    # later: until then alive() would call our fresh process a stranger.
    deadline = time.monotonic() + 10
    while not cmdline(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def terminate(pid: int, marker: str | None, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL the whole process group if it lingers."""
    if not alive(pid, marker):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid, marker):
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(pid)


def _reap(pid: int) -> None:
    # Children of this very process (tests start services in-process) must be reaped.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(check: Callable[[], object], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``check()`` until it is truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""
