"""Find the external tools the stack needs, or say in one sentence what to install."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

from hospital.errors import PrerequisiteError
from hospital.settings import Settings


@cache
def _java_major(path: str) -> int | None:
    """Major version of a JVM binary (asked once: every Kafka/Connect launch needs it)."""
    out = subprocess.run([path, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    return int(match.group(1)) if match else None


def java(settings: Settings) -> str:
    """Path of a Java >= 17 runtime."""
    path = shutil.which(settings.java_bin)
    if not path:
        raise PrerequisiteError(
            "Java 17 or newer is required: install it "
            "(Debian: apt-get install openjdk-17-jre-headless)."
        )
    major = _java_major(path)
    if major is None or major < 17:
        raise PrerequisiteError(
            f"{path} is not Java 17 or newer: install openjdk-17-jre-headless or set JAVA_BIN."
        )
    return path


def maven(settings: Settings) -> str:
    path = shutil.which(settings.maven_bin)
    if not path:
        raise PrerequisiteError(
            "Maven is required to fetch the Kafka/Debezium jars: install it "
            "(Debian: apt-get install maven) or set MAVEN_BIN."
        )
    return path


def pg_bindir(settings: Settings) -> Path:
    """Directory holding initdb/pg_ctl/postgres of PostgreSQL 15 (or newer)."""
    candidates: list[Path] = []
    if settings.pg_bindir:
        candidates.append(settings.pg_bindir)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PrerequisiteError(
        "PostgreSQL 15 server binaries were not found: install them "
        "(Debian: apt-get install postgresql-15) or set PG_BINDIR."
    )
