"""The project's own PostgreSQL cluster: initdb into the stack dir, ``wal_level=logical``.

initdb refuses to run as root, so as root (CI) the cluster runs as the ``postgres`` system user;
as anyone else it runs as that user.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import subprocess
from functools import cached_property
from pathlib import Path

import psycopg

from hospital.errors import StackError
from hospital.settings import Settings, port_in_use
from hospital.stack import prerequisites
from hospital.stack.process import alive, read_pid, tail
from hospital.stack.service import Service


def hba(settings: Settings) -> str:
    """pg_hba.conf: passwords always; no physical replication for anyone.

    Debezium needs *logical* replication of the ``ehr`` database only. A logical replication
    connection is matched by its real database name (the ``replication`` keyword matches only
    physical ones, e.g. pg_basebackup), so ``cdc_reader`` gets ``ehr`` and nothing else, and
    with no ``replication`` line nobody can copy the cluster (``pg_authid`` included).
    """
    networks = ["127.0.0.1/32"]
    if settings.allow_remote:  # opted in with HOSPITAL_ALLOW_REMOTE=1 (non-default passwords)
        networks += ["0.0.0.0/0", "::/0"]
    lines = [
        "# Written by `hospital stack up` on every start; edit settings, not this file.",
        "# TYPE  DATABASE  USER        ADDRESS      METHOD",
        "local   ehr       cdc_reader               scram-sha-256",
        "local   all       cdc_reader               reject",
        "local   all       all                      scram-sha-256",
    ]
    for net in networks:
        lines += [
            f"host    ehr       cdc_reader  {net}  scram-sha-256",
            f"host    all       cdc_reader  {net}  reject",
            f"host    all       all         {net}  scram-sha-256",
        ]
    return "\n".join(lines) + "\n"


def _reachable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in path.parents if p.exists())


class Postgres(Service):
    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.run_as = "postgres" if os.geteuid() == 0 else None

    # --- layout ------------------------------------------------------------------------------
    @cached_property
    def base(self) -> Path:
        # Decided once: pid() and health polls read paths below it many times a second.
        if self.run_as and not _reachable_by_others(self.settings.stack_path):
            # The postgres user cannot traverse into e.g. /root: keep the cluster in /var/tmp.
            digest = hashlib.sha256(str(self.settings.stack_path).encode()).hexdigest()[:10]
            return Path("/var/tmp") / f"hospital-stack-{digest}" / "postgres"
        return self.settings.stack_path / "postgres"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        # Written by the server's own user, so it lives beside the data directory.
        return self.base / "postgres.log"

    @property
    def external(self) -> bool:
        return not self.settings.local_postgres

    @property
    def port(self) -> int | None:
        return None if self.external else self.settings.pg_port

    @property
    def address(self) -> str:
        if self.external:
            return "external DSNs (EHR_DSN, HOSPITAL_DSN, ...)"
        return f"postgresql://{self.settings.client_host}:{self.settings.pg_port}"

    # --- process -----------------------------------------------------------------------------
    def pid(self) -> int | None:
        pid = read_pid(self.data / "postmaster.pid")
        return pid if alive(pid, str(self.data)) else None

    def healthy(self) -> bool:
        # A local cluster is ours only while our postmaster runs: another server answering on
        # the port with the same password must not pass for it.
        if not self.external and self.pid() is None:
            return False
        try:
            dsn = (
                self.settings.dsn("ehr", "hospital_app")
                if self.external
                else self.settings.dsn("postgres", "superuser")
            )
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def _run(self, argv: list[str], what: str) -> None:
        kwargs: dict[str, object] = {}
        if self.run_as:
            kwargs = {"user": self.run_as, "group": self.run_as}
        result = subprocess.run(  # type: ignore[call-overload]
            argv, cwd=self.base, capture_output=True, text=True, check=False, **kwargs
        )
        if result.returncode != 0:
            raise StackError(
                f"PostgreSQL {what} failed: {(result.stderr or result.stdout).strip()}\n"
                f"{tail(self.log_path)}"
            )

    def _own(self, path: Path) -> None:
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self, bindir: Path) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self._own(self.base)
        self.base.chmod(0o700)  # the server's user only
        if self.base != self.settings.stack_path / "postgres":
            # The /var/tmp fallback's folder: the server's user must traverse it, nobody list it.
            self.base.parent.chmod(0o711)
        if self.base != self.settings.stack_path / "postgres":
            link = self.settings.stack_path / "postgres"
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(self.base)
        pwfile = self.base / ".pwfile"
        pwfile.write_text(self.settings.password("superuser") + "\n")
        pwfile.chmod(0o600)
        self._own(pwfile)
        try:
            self._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    self.settings.pg_superuser,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ],
                "initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'hospital.conf'\n")

    def write_hba(self) -> bool:
        """(Re)write pg_hba.conf from settings; True when it changed."""
        path = self.data / "pg_hba.conf"
        wanted = hba(self.settings)
        try:
            if path.read_text() == wanted:
                return False
        except FileNotFoundError:
            pass
        path.write_text(wanted)
        path.chmod(0o600)
        self._own(path)
        return True

    def refresh_access(self) -> bool:
        """On a running cluster: bring pg_hba.conf up to date and reload if it changed.

        Clusters made by older versions allowed physical replication; `stack up` fixes that
        without a restart. True when a reload happened.
        """
        if self.external or self.pid() is None or not self.write_hba():
            return False
        with psycopg.connect(self.settings.dsn("postgres", "superuser"), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
        return True

    def _write_config(self) -> None:
        self.write_hba()
        run_dir = self.base / "run"
        run_dir.mkdir(exist_ok=True)
        self._own(run_dir)
        conf = self.data / "hospital.conf"
        conf.write_text(
            "# Written by `hospital stack up` on every start; edit settings, not this file.\n"
            f"listen_addresses = '{self.settings.host}'\n"
            f"port = {self.settings.pg_port}\n"
            f"unix_socket_directories = '{run_dir}'\n"
            "wal_level = logical\n"
            "max_replication_slots = 20\n"
            "max_wal_senders = 20\n"
            "max_connections = 200\n"
            "shared_buffers = 512MB\n"
            "work_mem = 32MB\n"
            "maintenance_work_mem = 256MB\n"
            "max_wal_size = 4GB\n"
            # An abandoned CDC slot must not fill the disk.
            "max_slot_wal_keep_size = 8GB\n"
            "timezone = 'UTC'\n"
            "log_timezone = 'UTC'\n"
        )
        self._own(conf)

    def start(self) -> None:
        if self.external:
            if not self.healthy():
                raise StackError("the external PostgreSQL (EHR_DSN) does not answer")
            return
        bindir = prerequisites.pg_bindir(self.settings)
        if self.pid() is None and port_in_use(self.settings.client_host, self.settings.pg_port):
            raise StackError(
                f"port {self.settings.pg_port} is already in use by another program: "
                "set PG_PORT to a free port"
            )
        if not (self.data / "PG_VERSION").exists():
            self._initdb(bindir)
        self._write_config()
        self._run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                "120",
                "start",
            ],
            "start",
        )
        if not self.healthy():
            raise StackError(f"PostgreSQL started but does not answer:\n{tail(self.log_path)}")

    def stop(self) -> None:
        if self.external or self.pid() is None:
            return
        bindir = prerequisites.pg_bindir(self.settings)
        self._run(
            [str(bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"],
            "stop",
        )

    def destroy(self) -> None:
        """Delete the cluster's files (the service must be stopped)."""
        base = self.base
        shutil.rmtree(base, ignore_errors=True)
        link = self.settings.stack_path / "postgres"
        if base != link:  # the /var/tmp fallback: its folder and our symlink to it go too
            link.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                base.parent.rmdir()
