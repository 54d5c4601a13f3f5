"""Supervised worker processes: the stages' long-running CLI workers as children of the run.

Each worker runs ``python -m hospital.cli <stage> <command>`` with its output appended to
``<stack>/logs/worker-<name>.log``, in its own session (a terminal's Ctrl-C reaches the scheduler
only, which then stops the workers in order) and with a parent-death signal (a scheduler killed
with SIGKILL takes its workers along). A worker that exits is restarted after a backoff that
doubles up to ``WORKER_MAX_BACKOFF_SECONDS`` (and resets after a minute of healthy running).
Workers are registered with :mod:`hospital.stack.background`, so ``hospital stack status`` lists
them and ``hospital stack down`` stops them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hospital.settings import Settings
from hospital.stack import background

HEALTHY_AFTER_S = 60.0  # a worker that ran this long before exiting restarts at once
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    argv: tuple[str, ...]  # the full command line

    @classmethod
    def hospital(cls, name: str, *words: str) -> WorkerSpec:
        return cls(name, (sys.executable, "-m", "hospital.cli", *words))


# (worker, the words after `hospital`): each stage's long-running command
WORKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cdc", ("cdc", "apply")),
    ("stream", ("stream", "consume")),
    ("batch", ("batch", "ingest", "--watch")),
    ("fhir", ("fhir", "watch")),
)


def available_workers(only: set[str] | None = None) -> tuple[list[WorkerSpec], dict[str, str]]:
    """The worker specs to run, and {worker left out: why}; ``only`` filters by name."""
    specs: list[WorkerSpec] = []
    missing: dict[str, str] = {}
    for name, words in WORKERS:
        if only is not None and name not in only:
            missing[name] = "not selected"
        else:
            specs.append(WorkerSpec.hospital(name, *words))
    return specs, missing


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that give a child process exactly these settings.

    Only values set explicitly (environment, ``.env``, overrides) and the resolved stack and lake
    folders are exported: defaults stay defaults, so "set explicitly" keeps its meaning in the
    child (run profiles yield to explicit variables).
    """
    env: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None or (
            name not in settings.model_fields_set and name not in ("stack_dir", "lake_dir")
        ):
            continue
        alias = info.validation_alias
        key = str(alias.choices[0]) if alias is not None and hasattr(alias, "choices") else name
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        if name in ("stack_dir", "lake_dir"):
            raw = settings.resolve(Path(raw)).resolve()
        env[key.upper()] = str(raw).lower() if isinstance(raw, bool) else str(raw)
    return env


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGTERM when the parent thread dies.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Worker:
    spec: WorkerSpec
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    starts: int = 0
    last_exit: int | None = None
    started_at: float = 0.0
    next_start: float = 0.0
    backoff: float = 1.0
    history: list[int] = field(default_factory=list)  # every pid it ran as

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.spec.name,
            "pid": self.pid,
            "running": self.running,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "log": str(self.log_path),
            "command": " ".join(self.spec.argv[2:]),
        }


class Supervisor:
    """Start, watch, restart and stop a set of workers (a monitor thread polls them)."""

    def __init__(
        self,
        settings: Settings,
        specs: Sequence[WorkerSpec],
        env: dict[str, str] | None = None,
        max_backoff: float | None = None,
        register: bool = True,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        logs = settings.stack_path / "logs"
        self.workers = [Worker(s, logs / f"worker-{s.name}.log") for s in specs]
        self.env = {**os.environ, **(env if env is not None else settings_env(settings))}
        self.max_backoff = max_backoff or settings.worker_max_backoff_seconds
        self.register = register
        self.on_event = on_event or (lambda _msg: None)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._stop_orphans()
        with self._lock:
            for worker in self.workers:
                self._spawn(worker)
        self._thread = threading.Thread(target=self._monitor, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every worker, wait up to ``timeout`` s, then SIGKILL what is left."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            live = [w for w in self.workers if w.running]
            for worker in live:
                assert worker.proc is not None
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for worker in live:
                assert worker.proc is not None
                try:
                    worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.on_event(f"{worker.spec.name}: did not stop in {timeout:.0f}s, SIGKILL")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(worker.proc.pid, signal.SIGKILL)
                    worker.proc.wait(timeout=10)
                worker.last_exit = worker.proc.returncode
            for worker in self.workers:
                self._unregister(worker)

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- internals -----------------------------------------------------------------------------
    def _spawn(self, worker: Worker) -> None:
        worker.log_path.parent.mkdir(parents=True, exist_ok=True)
        with worker.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            log.write(
                f"--- {stamp} start #{worker.starts + 1}: {' '.join(worker.spec.argv)}\n".encode()
            )
            log.flush()
            worker.proc = subprocess.Popen(
                list(worker.spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.settings.root,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        worker.starts += 1
        worker.started_at = time.monotonic()
        worker.history.append(worker.proc.pid)
        if self.register:
            self._register(worker)

    def _register(self, worker: Worker) -> None:
        if worker.proc is None:
            return
        with contextlib.suppress(Exception):
            background.register(self.settings, f"worker-{worker.spec.name}", worker.proc.pid)

    def _unregister(self, worker: Worker) -> None:
        if not self.register:
            return
        with contextlib.suppress(Exception):
            background.unregister(self.settings, f"worker-{worker.spec.name}")

    def _stop_orphans(self) -> None:
        """Workers a killed earlier run left behind (registered, still alive) are stopped."""
        if not self.register:
            return
        names = {f"worker-{w.spec.name}" for w in self.workers}
        for record in background.running(self.settings):
            if record.name in names:
                proc = record.process()
                if proc is not None:
                    self.on_event(f"stopping orphaned {record.name} (pid {record.pid})")
                    with contextlib.suppress(Exception):
                        proc.terminate()
                        proc.wait(timeout=15)
                    with contextlib.suppress(Exception):
                        proc.kill()
                background.unregister(self.settings, record.name, record.pid)

    def _monitor(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                if self._stopping.is_set():
                    return
                self.poll_once()

    def poll_once(self) -> None:
        """Notice exits and restart workers whose backoff has passed (called under the lock)."""
        now = time.monotonic()
        for worker in self.workers:
            if worker.proc is None:
                continue
            code = worker.proc.poll()
            if code is None:
                continue
            if worker.next_start == 0.0:
                worker.last_exit = code
                ran = now - worker.started_at
                worker.backoff = 1.0 if ran >= HEALTHY_AFTER_S else worker.backoff
                worker.next_start = now + worker.backoff
                self.on_event(
                    f"{worker.spec.name} exited with {code} after {ran:.1f}s; "
                    f"restart in {worker.backoff:.0f}s"
                )
                worker.backoff = min(worker.backoff * 2, self.max_backoff)
            elif now >= worker.next_start:
                worker.next_start = 0.0
                worker.restarts += 1
                self._spawn(worker)
                self.on_event(f"{worker.spec.name} restarted as pid {worker.pid}")

    def status(self) -> list[dict[str, object]]:
        with self._lock:
            return [w.as_dict() for w in self.workers]

    @property
    def restarts(self) -> int:
        return sum(w.restarts for w in self.workers)

    def worker(self, name: str) -> Worker:
        for w in self.workers:
            if w.spec.name == name:
                return w
        raise KeyError(name)
