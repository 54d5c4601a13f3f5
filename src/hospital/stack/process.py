"""Start, find and stop the stack's own processes through pid files.

A pid file is trusted only while the process's command line still names the marker we started
it with (a config file or data directory of this stack, matched as a whole path, never as a
substring), so a recycled pid is never mistaken for (or killed as) one of ours.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

from hospital.errors import StackError


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def cmdline_args(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def cmdline(pid: int) -> str:
    return " ".join(cmdline_args(pid))


def names_path(args: Iterable[str], marker: str) -> bool:
    """True when one argument is ``marker`` or a path below it.

    Also inside ``-Dkey=<path>`` and ``a:b`` classpath lists. ``/x/.stack`` does not match
    ``/x/.stack-test``: the marker must end at a ``/``, ``:`` or the end of a component.
    """
    pattern = re.compile(r"(?:^|[=:])" + re.escape(marker.rstrip("/")) + r"(?:$|[/:])")
    return any(pattern.search(arg) for arg in args)


def alive(pid: int | None, marker: str | None) -> bool:
    """True when ``pid`` runs and was started with ``marker`` on its command line.

    ``marker=None`` is for a pid we just spawned ourselves: only "still running" is asked,
    because a JVM launcher that re-executes itself briefly shows an empty command line.
    """
    if not pid:
        return False
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return marker is None or names_path(cmdline_args(pid), marker)


def spawn(
    argv: list[str], log_file: Path, pid_file: Path, cwd: Path, marker: str | None = None
) -> int:
    """Start ``argv`` detached in its own session, output appended to ``log_file``.

    Refuses (StackError, pid file untouched) when ``pid_file`` names a live process of ours
    (``marker`` on its command line): overwriting it would orphan that process, since nothing
    could find it again to stop it. The pid file is created exclusively, so of two racing
    spawns only one records its pid; the loser stops its own child again.
    """
    old = read_pid(pid_file)
    ours = alive(old, marker) if marker else (old is not None and cmdline_args(old) == argv)
    if ours:
        raise StackError(f"{pid_file.parent.name} already runs as pid {old} ({pid_file})")
    pid_file.unlink(missing_ok=True)  # stale: its process is gone (or is not ours)
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
    while not cmdline_args(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        fd = os.open(pid_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        terminate(proc.pid, None, timeout=10)
        raise StackError(f"another start of {pid_file.parent.name} won the race") from None
    with os.fdopen(fd, "w") as out:
        out.write(f"{proc.pid}\n")
    return proc.pid


def _group(pid: int) -> list[psutil.Process]:
    """The process and its descendants, as psutil handles (they detect pid reuse)."""
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _gone(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` still running (zombies that are our children get reaped)."""
    left = []
    for proc in procs:
        _reap(proc.pid)
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
    return left


def terminate(pid: int, marker: str | None, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL the whole process group if it lingers, and wait again.

    Returns only once the process and every descendant seen are gone, so a caller may reuse
    the port, pid file or data directory right after; raises StackError if even SIGKILL
    does not end them within 10 s (e.g. stuck in uninterruptible I/O).
    """
    if not alive(pid, marker):
        return
    members = _group(pid)
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        members = _gone(members)
        if not members:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for proc in members:  # descendants that left the group
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    deadline = time.monotonic() + 10
    while members := _gone(members):
        if time.monotonic() >= deadline:
            pids = ", ".join(str(p.pid) for p in members)
            raise StackError(f"process(es) {pids} still run after SIGKILL")
        time.sleep(0.05)


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
