"""``hospital fhir watch`` as a real worker process: drop files, SIGTERM, kill -9, restart."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from hospital.fhir.flatten import shipped_views
from hospital.fhir.shared import samples_dir
from hospital.fhir.watch import watch
from hospital.settings import Settings
from tests.support import TEST_ENV, read_env_file
from tests.unit.fhir.guard import require_shared

pytestmark = pytest.mark.integration


def _truncate(settings: Settings) -> None:
    tables = ["resource", "quarantine", "unresolved_reference", *(t.table for t in shipped_views())]
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"fhir.{t}" for t in tables))


@pytest.fixture
def area(stack: Settings) -> Iterator[Path]:
    """A fresh folder under the stack's lake (inbox/, processed/, rejected/), fhir tables empty."""
    folder = stack.lake_path / "fhir" / f"watch-test-{uuid.uuid4().hex[:8]}"
    (folder / "inbox").mkdir(parents=True)
    _truncate(stack)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
    _truncate(stack)


def _worker(inbox: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update({k.upper(): v for k, v in read_env_file(TEST_ENV).items()})
    exe = shutil.which("hospital", path=str(Path(sys.executable).parent)) or "hospital"
    return subprocess.Popen(
        [exe, "fhir", "watch", "--inbox", str(inbox), "--poll", "0.2", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def _drop(inbox: Path, name: str, text: str) -> None:
    hidden = inbox / f".{name}"  # written aside, renamed in: the watcher never sees half a file
    hidden.write_text(text, "utf-8")
    hidden.rename(inbox / name)


def _count(settings: Settings, sql: str) -> int:
    with psycopg.connect(settings.dsn("hospital", "analyst")) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_worker_ingests_rejects_and_stops_on_sigterm(stack: Settings, area: Path) -> None:
    inbox = area / "inbox"
    worker = _worker(inbox)
    try:
        patients = [{"resourceType": "Patient", "id": f"w{i}"} for i in range(3)]
        _drop(inbox, "good.ndjson", "\n".join(json.dumps(p) for p in patients) + "\n")
        _drop(inbox, "broken.json", "{not json")
        _drop(inbox, "half-bad.ndjson", json.dumps({"resourceType": "Patient"}) + "\n")
        _wait(lambda: not any(inbox.iterdir()))
        # A file dropped again later (tomorrow's export under the same name) is taken too.
        _drop(inbox, "good.ndjson", json.dumps({"resourceType": "Patient", "id": "w9"}) + "\n")
        _wait(lambda: not any(inbox.iterdir()))
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    assert "Traceback" not in output and "stopped" in output

    assert sorted(p.name for p in (area / "processed").iterdir()) == [
        "good.1.ndjson",
        "good.ndjson",
        "half-bad.ndjson",
    ]
    assert sorted(p.name for p in (area / "rejected").iterdir()) == [
        "broken.json",
        "broken.json.reason.txt",
    ]
    assert "invalid JSON" in (area / "rejected" / "broken.json.reason.txt").read_text()
    assert _count(stack, "SELECT count(*) FROM fhir.patient") == 4
    assert _count(stack, "SELECT count(*) FROM fhir.quarantine") == 2
    assert _count(stack, "SELECT count(*) FROM pipeline_metrics WHERE path = 'fhir'") > 0


def test_worker_killed_at_random_points_converges_on_restart(stack: Settings, area: Path) -> None:
    samples = sorted(require_shared(samples_dir(stack.root), "Synthea samples").glob("*.json"))
    expected = sum(len(json.loads(p.read_text("utf-8"))["entry"]) for p in samples)
    inbox = area / "inbox"
    rng = random.Random(7)
    for attempt in range(3):
        _truncate(stack)
        for folder in ("processed", "rejected"):
            shutil.rmtree(area / folder, ignore_errors=True)
        for path in samples:
            shutil.copy(path, inbox / path.name)
        worker = _worker(inbox, "--batch-files", "3")
        time.sleep(rng.uniform(1.0, 4.0))  # interpreter start-up, then somewhere in the batches
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
        left = len(list(inbox.iterdir()))

        restart = _worker(inbox, "--once")
        output, _ = restart.communicate(timeout=180)
        assert restart.returncode == 0, output
        assert not list(inbox.iterdir()), f"attempt {attempt}: {left} left after the kill"
        assert len(list((area / "processed").iterdir())) == len(samples)
        assert _count(stack, "SELECT count(*) FROM fhir.resource") == expected
        assert _count(stack, "SELECT count(*) FROM fhir.quarantine") == 0
        assert _count(stack, "SELECT count(*) FROM fhir.unresolved_reference") == 0


def test_a_file_ingested_but_not_moved_is_reingested_without_change(
    stack: Settings, area: Path
) -> None:
    """The crash window between commit and move: the restarted worker changes nothing."""
    inbox = area / "inbox"
    lines = [json.dumps({"resourceType": "Patient", "id": f"r{i}"}) for i in range(5)]
    _drop(inbox, "day.ndjson", "\n".join(lines) + "\n")
    first = watch(stack, inbox=inbox, once=True)
    assert first.ingest.inserted == 5
    with psycopg.connect(stack.dsn("hospital", "hospital_app")) as conn:
        before = conn.execute("SELECT id, xmin::text FROM fhir.resource ORDER BY 1").fetchall()
    # As if the worker died after the commit, before the move: the file is back in the inbox.
    shutil.move(str(area / "processed" / "day.ndjson"), str(inbox / "day.ndjson"))
    again = watch(stack, inbox=inbox, once=True)
    assert (again.ingest.inserted, again.ingest.updated, again.ingest.unchanged) == (0, 0, 5)
    assert not list(inbox.iterdir())
    with psycopg.connect(stack.dsn("hospital", "hospital_app")) as conn:
        after = conn.execute("SELECT id, xmin::text FROM fhir.resource ORDER BY 1").fetchall()
    assert after == before
