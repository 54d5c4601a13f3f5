"""scripts/bootstrap.sh: uv found or installed into a private venv (never pip into the system
Python), system tools checked, apt-get only as root on Debian, else one sentence.

Fake ``python3``, ``id``, ``apt-get`` and ``java`` on PATH stand in for a fresh machine, so
nothing here touches the network or the system's packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bootstrap.sh"

FAKE_PYTHON = """#!/bin/bash
# python3 -m venv DIR: a venv whose python "pip installs" uv by writing bin/uv.
if [ "$1" = "-m" ] && [ "$2" = "venv" ] && [ -z "${FAKE_NO_VENV:-}" ]; then
  mkdir -p "$3/bin"
  cat > "$3/bin/python" <<'EOF'
#!/bin/bash
dir="$(dirname "$0")"
echo "$*" >> "$dir/../pip.log"
printf '#!/bin/sh\\necho "uv 0.0.0-fake"\\n' > "$dir/uv"
chmod +x "$dir/uv"
EOF
  chmod +x "$3/bin/python"
  exit 0
fi
echo "No module named venv" >&2
exit 1
"""


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, str]:
    """A PATH without uv (fake bin first), an empty HOME, a uv venv that does not exist yet."""
    fake = tmp_path / "bin"
    fake.mkdir()
    _write(fake / "python3", FAKE_PYTHON)
    _write(fake / "apt-get", f'#!/bin/sh\necho "$*" >> {tmp_path}/apt.log\n')
    _write(fake / "id", '#!/bin/sh\nif [ "$1" = "-u" ]; then echo "${FAKE_UID:-1000}"; fi\n')
    system = [d for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin") if not Path(d, "uv").exists()]
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": ":".join([str(fake), *system]),
        "HOME": str(home),
        "HOSPITAL_UV_VENV": str(tmp_path / "venv"),
    }


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_uv_is_installed_into_a_private_venv_once(machine: dict[str, str], tmp_path: Path) -> None:
    first = _run(machine, "--print-uv")

    assert first.returncode == 0, first.stderr
    uv = tmp_path / "venv" / "uv-only" / "uv"  # alone in its folder: safe to put on PATH
    assert first.stdout.strip() == str(uv)  # stdout is the path only: the Makefile reads it
    assert [p.name for p in uv.parent.iterdir()] == ["uv"]
    assert "PEP 668" in first.stderr
    pip = (tmp_path / "venv" / "pip.log").read_text().splitlines()
    assert len(pip) == 1 and "-m pip install" in pip[0] and "uv==" in pip[0]

    second = _run(machine, "--print-uv")

    assert second.stdout.strip() == str(uv)
    assert second.stderr == ""  # found, not installed again
    assert len((tmp_path / "venv" / "pip.log").read_text().splitlines()) == 1


def test_without_venv_support_a_user_is_told_what_to_install(
    machine: dict[str, str], tmp_path: Path
) -> None:
    result = _run({**machine, "FAKE_NO_VENV": "1"}, "--print-uv")

    assert result.returncode != 0
    assert result.stdout == ""
    assert "install python3-venv" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2  # "installing ..." then one sentence
    assert not (tmp_path / "apt.log").exists()


def test_as_root_on_debian_venv_support_comes_from_apt(
    machine: dict[str, str], tmp_path: Path
) -> None:
    # apt-get is a fake that installs nothing: the venv still fails, but apt was asked.
    result = _run({**machine, "FAKE_NO_VENV": "1", "FAKE_UID": "0"}, "--print-uv")

    assert result.returncode != 0
    apt = (tmp_path / "apt.log").read_text().splitlines()
    assert apt[0] == "update -qq"
    assert "python3-venv" in apt[1]


def test_missing_tools_are_named_in_one_sentence_without_root(
    machine: dict[str, str], tmp_path: Path
) -> None:
    env = {**machine, "JAVA_BIN": "no-such-java", "MAVEN_BIN": "no-such-mvn"}

    result = _run(env)

    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "bootstrap: missing: Java 17+, Maven; install them "
        "(Debian 12: sudo apt-get install openjdk-17-jre-headless maven) and run again"
    )
    assert not (tmp_path / "apt.log").exists()  # not root: nothing installed


def test_as_root_on_debian_missing_tools_are_installed_with_one_update(
    machine: dict[str, str], tmp_path: Path
) -> None:
    env = {**machine, "JAVA_BIN": "no-such-java", "MAVEN_BIN": "no-such-mvn", "FAKE_UID": "0"}

    result = _run(env)

    apt = (tmp_path / "apt.log").read_text().splitlines()
    assert [line for line in apt if line.startswith("update")] == ["update -qq"]
    assert any("openjdk-17-jre-headless maven" in line for line in apt if "install" in line)
    # The fake apt-get installed nothing, so the sentence still follows.
    assert result.returncode != 0 and "missing: Java 17+, Maven" in result.stderr


def test_check_mode_never_installs(machine: dict[str, str], tmp_path: Path) -> None:
    result = _run({**machine, "FAKE_UID": "0", "JAVA_BIN": "no-such-java"}, "--check")

    assert result.returncode != 0
    assert "uv is missing" in result.stderr and "missing: Java 17+" in result.stderr
    assert not (tmp_path / "apt.log").exists()
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize(("version", "ok"), [("11.0.22", False), ("17.0.15", True), ("21", True)])
def test_java_must_be_17_or_newer(
    machine: dict[str, str], tmp_path: Path, version: str, ok: bool
) -> None:
    java = tmp_path / "bin" / "fake-java"
    _write(java, f"#!/bin/sh\necho 'openjdk version \"{version}\" 2024-01-16' >&2\n")

    result = _run({**machine, "JAVA_BIN": str(java)}, "--check")

    assert ("Java 17+" in result.stderr) is not ok


def test_a_complete_machine_is_left_alone_and_uv_is_printed() -> None:
    env = dict(os.environ)
    if not shutil.which("uv") or _run(env, "--check").returncode != 0:
        # Never let a test apt-get install anything: only a complete machine runs this.
        pytest.skip("this machine lacks a tool (scripts/bootstrap.sh --check says which)")
    first = _run(env)
    second = _run(env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout == f"{shutil.which('uv')}\n"
    assert "install" not in first.stderr and "install" not in second.stderr
