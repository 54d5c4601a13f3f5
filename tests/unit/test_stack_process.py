"""Process management of the stack with real child processes: pid files, exact markers,
SIGKILL that is waited for, the up/down lock, and a Maven re-resolve that fails safely."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from hospital.errors import PrerequisiteError, StackError
from hospital.settings import Settings, load_settings
from hospital.stack import Stack, jvm
from hospital.stack.kafka import Kafka
from hospital.stack.process import alive, names_path, read_pid, spawn, terminate

SLEEP = "import time; time.sleep(60)"
# Ignores SIGTERM, and so does the child it starts in its own process group.
STUBBORN_TREE = (
    "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); time.sleep(60)"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(stack_dir=tmp_path / ".stack", lake_dir=tmp_path / "lake")


@pytest.fixture
def children() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        for proc in _tree(pid):
            proc.kill()


def _tree(pid: int) -> list[psutil.Process]:
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _sleeper(children: list[int], *args: str) -> int:
    proc = subprocess.Popen([sys.executable, "-c", SLEEP, *args], start_new_session=True)
    children.append(proc.pid)
    # Until exec completes, the child still shows pytest's command line.
    for _ in range(200):
        if psutil.Process(proc.pid).cmdline()[-len(args) or None :] == list(args):
            break
        time.sleep(0.01)
    return proc.pid


def test_marker_matches_whole_paths_only() -> None:
    assert names_path(["java", "/x/.stack/kafka/server.properties"], "/x/.stack")
    assert names_path(["-Dlog4j2.configurationFile=/x/.stack/jvm/l.properties"], "/x/.stack")
    assert names_path(["-cp", "/a.jar:/x/.stack/jvm/lib/*"], "/x/.stack")
    assert names_path(["-D", "/x/.stack"], "/x/.stack/")
    assert not names_path(["java", "/x/.stack-test/kafka/server.properties"], "/x/.stack")
    assert not names_path(["/y/x/.stack/kafka"], "/x/.stack")
    assert not names_path(["/x/.stack2"], "/x/.stack")


def test_leftover_processes_do_not_confuse_stack_with_stack_test(
    settings: Settings, children: list[int]
) -> None:
    stack = Stack(settings)
    other = Path(f"{settings.stack_path}-test") / "kafka" / "server.properties"
    theirs = _sleeper(children, str(other))
    ours = _sleeper(children, str(settings.stack_path / "kafka" / "server.properties"))

    found = stack.leftover_processes()

    assert ours in found
    assert theirs not in found


def test_a_duplicate_spawn_leaves_the_pid_file_of_the_running_one(
    tmp_path: Path, children: list[int]
) -> None:
    home = tmp_path / "kafka"
    home.mkdir()
    marker = str(home / "server.properties")
    pid_file = home / "kafka.pid"
    running = _sleeper(children, marker)
    pid_file.write_text(f"{running}\n")

    with pytest.raises(StackError, match="already runs"):
        spawn([sys.executable, "-c", "pass", marker], home / "log", pid_file, home, marker=marker)

    assert read_pid(pid_file) == running
    assert alive(running, marker)


def test_spawn_replaces_a_stale_pid_file(tmp_path: Path, children: list[int]) -> None:
    pid_file = tmp_path / "svc.pid"
    pid_file.write_text("999999999\n")
    pid = spawn(
        [sys.executable, "-c", SLEEP, "m"], tmp_path / "log", pid_file, tmp_path, marker="m"
    )
    children.append(pid)
    assert read_pid(pid_file) == pid


def test_launch_refuses_when_our_broker_already_runs(
    settings: Settings, children: list[int]
) -> None:
    kafka = Kafka(load_settings(**{**_fields(settings), "maven_bin": "no-such-mvn"}))
    kafka.home.mkdir(parents=True)
    running = _sleeper(children, str(kafka.config_path))
    kafka.pid_file.write_text(f"{running}\n")

    with pytest.raises(StackError, match="already runs"):
        kafka.launch()

    assert kafka.pid() == running
    assert not kafka.config_path.exists()  # its config was not rewritten either


def _fields(settings: Settings) -> dict[str, object]:
    return {"stack_dir": settings.stack_dir, "lake_dir": settings.lake_dir}


def test_terminate_returns_only_when_sigkill_has_taken_effect(
    tmp_path: Path, children: list[int]
) -> None:
    pid = spawn(
        [sys.executable, "-c", STUBBORN_TREE], tmp_path / "log", tmp_path / "p.pid", tmp_path
    )
    children.append(pid)
    for _ in range(100):  # until the grandchild is there
        if len(_tree(pid)) == 2:
            break
        time.sleep(0.05)
    tree = _tree(pid)
    assert len(tree) == 2

    terminate(pid, None, timeout=0.3)

    still = [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert still == []


def test_the_lock_serialises_up_and_down(settings: Settings) -> None:
    stack = Stack(settings)
    stack.prepare_folder()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(stack.lock_path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(StackError, match="holds"), stack.locked(timeout=0.3):
            pass
        finished = threading.Event()
        downer = threading.Thread(target=lambda: (stack.down(), finished.set()))
        downer.start()
        assert not finished.wait(1.0)  # down waits for the lock
        holder.kill()
        holder.wait()
        downer.join(30)
        assert finished.is_set()
    finally:
        holder.kill()
        holder.wait()


def _fake_mvn(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-mvn"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def test_a_failed_re_resolve_keeps_the_jars_in_place(tmp_path: Path) -> None:
    mvn = _fake_mvn(tmp_path, "echo 'Could not transfer artifact' >&2\nexit 1\n")
    settings = load_settings(stack_dir=tmp_path / "stack", maven_bin=mvn)
    layout = jvm.layout(settings)
    layout.lib.mkdir(parents=True)
    (layout.lib / "kafka.jar").write_text("running broker's jar")
    layout.plugins.mkdir()
    (layout.plugins / "debezium").mkdir()

    with pytest.raises(PrerequisiteError, match="Could not transfer"):
        jvm.ensure_resolved(settings, force=True)

    assert (layout.lib / "kafka.jar").read_text() == "running broker's jar"
    assert (layout.plugins / "debezium").is_dir()
    assert sorted(p.name for p in layout.root.iterdir()) == ["lib", "plugins"]


def test_a_successful_re_resolve_swaps_lib_and_plugins(tmp_path: Path) -> None:
    plugin_src = tmp_path / "plugin"
    (plugin_src / "debezium-x").mkdir(parents=True)
    (plugin_src / "debezium-x" / "x.jar").write_text("plugin")
    tarball = tmp_path / "debezium-x-plugin.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(plugin_src / "debezium-x", arcname="debezium-x")
    mvn = _fake_mvn(
        tmp_path,
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) out="${a#*=}";; esac; done\n'
        f'mkdir -p "$out" && echo new > "$out/kafka-new.jar" && cp {tarball} "$out/"\n',
    )
    settings = load_settings(stack_dir=tmp_path / "stack", maven_bin=mvn)
    layout = jvm.layout(settings)
    layout.lib.mkdir(parents=True)
    (layout.lib / "kafka-old.jar").write_text("old")

    jvm.ensure_resolved(settings, force=True)

    assert sorted(p.name for p in layout.lib.iterdir()) == ["kafka-new.jar"]
    assert (layout.plugins / "debezium-x" / "x.jar").read_text() == "plugin"
    assert jvm.is_resolved(settings)
    assert not list(layout.root.glob(".resolve-*"))


@pytest.mark.parametrize("has_data_filter", [True, False])
def test_plugin_tarballs_cannot_write_outside_the_plugin_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, has_data_filter: bool
) -> None:
    """Debian 12's Python 3.11.2 has no tarfile data filter: the fallback checks members."""
    if not has_data_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    good, evil = tmp_path / "good.tar.gz", tmp_path / "evil.tar.gz"
    payload = tmp_path / "x.jar"
    payload.write_text("jar")
    with tarfile.open(good, "w:gz") as archive:
        archive.add(payload, arcname="debezium/x.jar")
    with tarfile.open(evil, "w:gz") as archive:
        archive.add(payload, arcname="../escaped.jar")
    target = tmp_path / "plugins"
    target.mkdir()

    jvm._extract(good, target)
    with pytest.raises((PrerequisiteError, tarfile.TarError)):
        jvm._extract(evil, target)

    assert (target / "debezium" / "x.jar").read_text() == "jar"
    assert not (tmp_path / "escaped.jar").exists()
