"""The JVM half of the stack, resolved from Maven Central by ``mvn dependency:copy-dependencies``.

``infra/jvm/pom.xml`` lists Kafka, Kafka Connect, a Log4j2 backend and the Debezium plugin
tarballs. Jars land in ``<stack>/jvm/lib`` (the broker and worker classpath); the tarballs are
unpacked under ``<stack>/jvm/plugins`` (Connect's ``plugin.path``). A stamp holding the pom's
hash makes the step a no-op until the pom changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hospital.errors import PrerequisiteError
from hospital.settings import Settings
from hospital.stack import prerequisites


@dataclass(frozen=True)
class JvmLayout:
    root: Path

    @property
    def lib(self) -> Path:
        return self.root / "lib"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins"

    @property
    def stamp(self) -> Path:
        return self.root / ".resolved"

    @property
    def classpath(self) -> str:
        return f"{self.lib}/*"

    @property
    def log4j_config(self) -> Path:
        return self.root / "log4j2.properties"


def pom_path(settings: Settings) -> Path:
    return settings.root / "infra" / "jvm" / "pom.xml"


def layout(settings: Settings) -> JvmLayout:
    return JvmLayout(settings.stack_path / "jvm")


def _pom_hash(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def is_resolved(settings: Settings) -> bool:
    jvm = layout(settings)
    stamp = jvm.stamp
    return stamp.exists() and stamp.read_text().strip() == _pom_hash(pom_path(settings))


LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d{ISO8601}] %p %m (%c{1})%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
"""


def ensure_resolved(settings: Settings, force: bool = False) -> JvmLayout:
    """Fetch jars and unpack Connect plugins unless already done for this pom."""
    jvm = layout(settings)
    pom = pom_path(settings)
    if not force and is_resolved(settings):
        return jvm
    mvn = prerequisites.maven(settings)
    prerequisites.java(settings)
    jvm.root.mkdir(parents=True, exist_ok=True)
    # Resolve into fresh folders and swap them in only once Maven and unpacking succeeded: a
    # failed re-resolve (offline, bad pom) must leave the jars of a running broker in place.
    staging = Path(tempfile.mkdtemp(prefix=".resolve-", dir=jvm.root))
    try:
        lib, plugins = staging / "lib", staging / "plugins"
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={lib}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines()
            reason = output[-1] if output else "Maven failed without output"
            raise PrerequisiteError(
                "Maven could not fetch the Kafka/Debezium jars (is Maven Central reachable?): "
                f"{reason}"
            )
        lib.mkdir(exist_ok=True)
        plugins.mkdir()
        for tarball in sorted(lib.glob("*-plugin.tar.gz")):
            _extract(tarball, plugins)
            tarball.unlink()
        for new, current in ((lib, jvm.lib), (plugins, jvm.plugins)):
            old = staging / f"old-{current.name}"
            if current.exists():
                current.rename(old)
            new.rename(current)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    jvm.log4j_config.write_text(LOG4J2)
    jvm.stamp.write_text(_pom_hash(pom) + "\n")
    return jvm


def _extract(tarball: Path, target: Path) -> None:
    """Unpack ``tarball`` under ``target``, refusing members that would land outside it.

    tarfile's ``filter="data"`` does that, but Debian 12's Python 3.11.2 predates it.
    """
    with tarfile.open(tarball) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(target, filter="data")
            return
        root = target.resolve()
        for member in archive.getmembers():
            dest = (root / member.name).resolve()
            unsafe_link = (member.issym() or member.islnk()) and not (
                (dest.parent / member.linkname).resolve().is_relative_to(root)
            )
            if not dest.is_relative_to(root) or unsafe_link or member.isdev():
                raise PrerequisiteError(f"{tarball.name}: unsafe member {member.name!r}")
        archive.extractall(target)  # every member was checked above


def java_command(settings: Settings, heap_mb: int, main: str, *args: str) -> list[str]:
    jvm = layout(settings)
    return [
        prerequisites.java(settings),
        f"-Xms{min(heap_mb, 256)}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        "-Djava.net.preferIPv4Stack=true",
        f"-Dlog4j2.configurationFile={jvm.log4j_config}",
        "-cp",
        jvm.classpath,
        main,
        *args,
    ]
