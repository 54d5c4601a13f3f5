"""One typed settings object, read from the environment and ``.env``.

Nothing here runs at import time: call :func:`get_settings` (cached) or build ``Settings()``
explicitly (tests do, with overrides). Every variable is documented in ``.env.example``.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hospital.errors import ConfigError

Port = Annotated[int, Field(ge=1024, le=65535)]

ROLE_NAMES = ("ehr_writer", "cdc_reader", "hospital_app", "analyst")
Role = Literal["superuser", "ehr_writer", "cdc_reader", "hospital_app", "analyst"]
Database = Literal["postgres", "ehr", "hospital"]


def _project_root() -> Path:
    """The folder holding pyproject.toml when run from a checkout, else the working dir."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "src" / "hospital").exists():
            return parent
    return Path.cwd()


class Settings(BaseSettings):
    """Every knob of the platform. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # Off on purpose: with it, pydantic-settings also reads the *field* name from the
        # environment, so HOST / STACK_DIR / LAKE_DIR (set by many shells and containers)
        # would be honoured. load_settings() maps field names to the variables instead.
        populate_by_name=False,
    )

    # --- where things live -------------------------------------------------------------------
    # Prefixed names only: STACK_DIR or HOST alone collide with other tools' variables
    # (HOST=0.0.0.0 would expose every service).
    stack_dir: Path = Field(
        default=Path(".stack"), validation_alias=AliasChoices("HOSPITAL_STACK_DIR")
    )
    lake_dir: Path = Field(default=Path("lake"), validation_alias=AliasChoices("HOSPITAL_LAKE_DIR"))
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("HOSPITAL_BIND_HOST"))
    # A non-loopback HOSPITAL_BIND_HOST is refused unless this is set (and then every password
    # must differ from its shipped default).
    allow_remote: bool = Field(
        default=False, validation_alias=AliasChoices("HOSPITAL_ALLOW_REMOTE")
    )

    # --- PostgreSQL ----------------------------------------------------------------------------
    pg_port: Port = 55432
    pg_superuser: str = "postgres"
    pg_superuser_password: SecretStr = SecretStr("postgres-local")
    ehr_writer_password: SecretStr = SecretStr("ehr-writer-local")
    cdc_reader_password: SecretStr = SecretStr("cdc-reader-local")
    hospital_app_password: SecretStr = SecretStr("hospital-app-local")
    analyst_password: SecretStr = SecretStr("analyst-local")
    # External databases, one DSN per (database, role) the platform uses (see EXTERNAL_DSNS):
    # when any is set, `stack up` starts no PostgreSQL, and a role without its DSN is an error.
    ehr_dsn: SecretStr | None = None  # EHR as the hospital side's read-only reader
    ehr_writer_dsn: SecretStr | None = None  # EHR as its owner/writer (simulator, migrations)
    cdc_reader_dsn: SecretStr | None = None  # EHR with logical replication (Debezium)
    hospital_dsn: SecretStr | None = None  # hospital DB as its owner/writer (also migrations)
    hospital_analyst_dsn: SecretStr | None = None  # hospital DB read-only (dashboards)
    pg_bindir: Path | None = None

    # --- Kafka / Connect -----------------------------------------------------------------------
    kafka_port: Port = 9092
    kafka_controller_port: Port = 9093
    connect_port: Port = 8083
    # External broker: when set, `stack up` starts no Kafka and points Connect at it.
    kafka_bootstrap_servers: str | None = None
    kafka_heap_mb: Annotated[int, Field(ge=128, le=8192)] = 512
    connect_heap_mb: Annotated[int, Field(ge=128, le=8192)] = 768
    maven_bin: str = "mvn"
    java_bin: str = "java"

    # --- simulation ----------------------------------------------------------------------------
    num_people: Annotated[int, Field(ge=1, le=50_000_000)] = 5_000_000
    seed: Annotated[int, Field(ge=0)] = 42
    start_date: date = date(2020, 1, 1)
    end_date: date | None = None
    seconds_per_sim_day: Annotated[float, Field(ge=0)] = 0.0
    stream_cadence_minutes: Annotated[int, Field(ge=1, le=1440)] = 3
    # Simulator realism (docs/simulator.md): demand per 1,000 catchment people a day, the bed
    # occupancy beds are planned for, and the crude birth rate per 1,000 a year.
    sim_visits_per_1000: Annotated[float, Field(gt=0, le=100)] = 0.12
    sim_target_occupancy: Annotated[float, Field(ge=0.3, le=1)] = 0.92
    sim_births_per_1000: Annotated[float, Field(ge=0, le=100)] = 19.0
    sim_min_catchment: Annotated[int, Field(ge=0, le=50_000_000)] = 1_000_000

    # --- cdc (hospital.cdc) ------------------------------------------------------------------
    # Debezium source (topics <prefix>.public.<table>, its own slot) and the JDBC-sink peer.
    cdc_connector_name: str = "hospital-ehr-cdc"
    cdc_jdbc_connector_name: str = "hospital-ehr-jdbc-sink"
    cdc_topic_prefix: str = "ehr"
    cdc_slot_name: str = "hospital_cdc_slot"
    cdc_topic_partitions: Annotated[int, Field(ge=1, le=64)] = 1
    cdc_heartbeat_interval_ms: Annotated[int, Field(ge=100, le=3_600_000)] = 2000
    # The applier: consumer group, dead-letter topic, batch closing rules, metrics cadence.
    cdc_group: str = "hospital-cdc-applier"
    cdc_dlq_topic: str = "hospital.cdc.dlq"
    cdc_batch_max_events: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000
    cdc_batch_max_wait_ms: Annotated[int, Field(ge=1, le=60_000)] = 100
    cdc_idle_seconds: Annotated[float, Field(ge=0.1, le=3600)] = 3.0
    cdc_metrics_seconds: Annotated[float, Field(ge=0.5, le=3600)] = 5.0
    cdc_jdbc_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5000
    # How long `reconcile cdc` waits for the pipeline to reach the EHR's current LSN.
    cdc_reconcile_wait_seconds: Annotated[float, Field(ge=0, le=86_400)] = 120.0

    # --- stream (hospital.stream) ------------------------------------------------------------
    # One topic for every bed event, keyed by patient id (a patient's events stay in order);
    # invalid messages go to the dead-letter topic. Micro-batches close at max events or max wait.
    stream_topic: str = "hospital.bed_events"
    stream_dlq_topic: str = "hospital.bed_events.dlq"
    stream_partitions: Annotated[int, Field(ge=1, le=256)] = 3
    stream_group: str = "hospital-stream"
    # Static group membership: a restarted worker takes its partitions back without a rebalance.
    stream_instance_id: str = "hospital-stream-1"
    stream_session_timeout_ms: Annotated[int, Field(ge=6000, le=300_000)] = 10_000
    stream_lake_subdir: str = "stream"
    stream_batch_max_events: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000
    stream_batch_max_wait_ms: Annotated[int, Field(ge=1, le=60_000)] = 200
    stream_idle_seconds: Annotated[float, Field(ge=0.1, le=3600)] = 3.0
    stream_metrics_seconds: Annotated[float, Field(ge=0.5, le=3600)] = 5.0
    stream_vacuum_retention_hours: Annotated[int, Field(ge=0, le=100_000)] = 168
    # The worker compacts + vacuums its Delta table every this many micro-batches (0: never).
    stream_compact_every_batches: Annotated[int, Field(ge=0, le=1_000_000)] = 500

    # --- batch (hospital.batch) --------------------------------------------------------------
    batch_watch_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    batch_temp_buffers_mb: Annotated[int, Field(ge=8, le=8192)] = 1024
    batch_work_mem_mb: Annotated[int, Field(ge=4, le=8192)] = 512
    export_fetch_rows: Annotated[int, Field(ge=100, le=1_000_000)] = 50_000

    # --- scheduler, dashboard, pgAdmin (hospital.scheduler, hospital.dashboard) --------------
    # scheduler: RUN_PROFILE names a profile of hospital.scheduler.profiles (demo, walkthrough,
    # nine-days-1455, backfill); SECONDS_PER_SIM_DAY / END_DATE / NUM_PEOPLE, when set, win over it.
    run_profile: str = "demo"
    run_drain_timeout_seconds: Annotated[float, Field(ge=0, le=86_400)] = 180.0
    worker_max_backoff_seconds: Annotated[float, Field(ge=0.1, le=600)] = 30.0
    scheduler_snapshots: bool = True
    dashboard_port: Port = 8050
    dashboard_refresh_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    dashboard_statement_timeout_ms: Annotated[int, Field(ge=100, le=600_000)] = 5000
    dashboard_pool_size: Annotated[int, Field(ge=1, le=32)] = 3
    pgadmin_enabled: bool = True
    pgadmin_port: Port = 5050
    pgadmin_version: str = "9.18"
    pgadmin_venv_dir: Path | None = None
    pgadmin_email: str = "admin@hospital.example.org"
    pgadmin_password: SecretStr = SecretStr("pgadmin-local")

    @model_validator(mode="after")
    def _check_exposure(self) -> Settings:
        if _is_loopback(self.host):
            return self
        if not self.allow_remote:
            raise ValueError(
                f"HOSPITAL_BIND_HOST={self.host} is not a loopback address: PostgreSQL, Kafka "
                "and Kafka Connect's unauthenticated REST API would be reachable from other "
                "machines; set HOSPITAL_ALLOW_REMOTE=1 if that is what you want"
            )
        defaults = [
            name.upper()
            for name, field in type(self).model_fields.items()
            if isinstance(field.default, SecretStr)
            and getattr(self, name).get_secret_value() == field.default.get_secret_value()
        ]
        if defaults:
            raise ValueError(
                f"HOSPITAL_ALLOW_REMOTE=1 needs passwords of your own: {', '.join(defaults)} "
                "still have their published defaults"
            )
        return self

    @model_validator(mode="after")
    def _check_dates(self) -> Settings:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"END_DATE ({self.end_date}) is before START_DATE ({self.start_date})")
        ports = {
            "PG_PORT": self.pg_port,
            "KAFKA_PORT": self.kafka_port,
            "KAFKA_CONTROLLER_PORT": self.kafka_controller_port,
            "CONNECT_PORT": self.connect_port,
        }
        seen: dict[int, str] = {}
        for name, port in ports.items():
            if port in seen:
                raise ValueError(f"{name} and {seen[port]} are both {port}")
            seen[port] = name
        return self

    # --- derived values ------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return _project_root()

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.root / path)

    @property
    def stack_path(self) -> Path:
        return self.resolve(self.stack_dir).resolve()

    @property
    def lake_path(self) -> Path:
        return self.resolve(self.lake_dir).resolve()

    @property
    def local_postgres(self) -> bool:
        return all(getattr(self, name) is None for name in EXTERNAL_DSNS.values())

    @property
    def client_host(self) -> str:
        """Where clients on this machine reach the services (a wildcard bind is not an address)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def local_kafka(self) -> bool:
        return not self.kafka_bootstrap_servers

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or f"{self.client_host}:{self.kafka_port}"

    @property
    def connect_url(self) -> str:
        return f"http://{self.client_host}:{self.connect_port}"

    def password(self, role: Role) -> str:
        secret = {
            "superuser": self.pg_superuser_password,
            "ehr_writer": self.ehr_writer_password,
            "cdc_reader": self.cdc_reader_password,
            "hospital_app": self.hospital_app_password,
            "analyst": self.analyst_password,
        }[role]
        return secret.get_secret_value()

    def external_dsn(self, database: Database, role: Role) -> str:
        """The configured DSN for ``role`` on ``database`` (external databases only)."""
        name = EXTERNAL_DSNS.get((database, role))
        if name is None:
            raise ConfigError(
                f"with external databases there is no {role} connection to {database}: "
                f"only {', '.join(f'{r} on {d}' for d, r in EXTERNAL_DSNS)} are configured "
                "(each through its own *_DSN variable)"
            )
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise ConfigError(
                f"with external databases, {role} on {database} needs its own DSN: "
                f"set {name.upper()}"
            )
        return value.get_secret_value()

    def dsn(self, database: Database, role: Role) -> str:
        """A libpq connection string for ``role`` on ``database`` (psycopg form).

        Built with make_conninfo, which quotes every value: a password with spaces, quotes,
        backslashes or ``host=...`` in it stays a password.
        """
        if not self.local_postgres:
            return self.external_dsn(database, role)
        from psycopg.conninfo import make_conninfo

        user = self.pg_superuser if role == "superuser" else role
        return make_conninfo(
            "",
            host=self.client_host,
            port=str(self.pg_port),
            dbname=database,
            user=user,
            password=self.password(role),
        )

    def sqlalchemy_url(self, database: Database, role: Role) -> str:
        """SQLAlchemy URL (psycopg 3 driver) for ``role`` on ``database``."""
        return _dsn_to_url(self.dsn(database, role))

    def conninfo(self, database: Database, role: Role) -> dict[str, str]:
        """The connection's parameters (host, port, dbname, user, password, ...) as libpq
        reads them: for tools configured field by field (Debezium, pgAdmin), local or external.
        """
        from psycopg.conninfo import conninfo_to_dict

        params = {k: str(v) for k, v in conninfo_to_dict(self.dsn(database, role)).items()}
        params.setdefault("port", "5432")
        return params


# (database, role) -> the field holding its DSN when the databases are external. Migrations
# run as the owners (ehr_writer, hospital_app); there is no superuser connection to them.
EXTERNAL_DSNS: dict[tuple[str, str], str] = {
    ("ehr", "hospital_app"): "ehr_dsn",
    ("ehr", "ehr_writer"): "ehr_writer_dsn",
    ("ehr", "cdc_reader"): "cdc_reader_dsn",
    ("hospital", "hospital_app"): "hospital_dsn",
    ("hospital", "analyst"): "hospital_analyst_dsn",
}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything, so it counts as remote


def _dsn_to_url(dsn: str) -> str:
    """A libpq DSN (URL or key=value form) as a SQLAlchemy psycopg URL, nothing lost."""
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import URL

    parts = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    host = parts.pop("host", None)
    port = parts.pop("port", None)
    url = URL.create(
        "postgresql+psycopg",
        username=parts.pop("user", None),
        password=parts.pop("password", None),
        host=host if host and "," not in host else None,
        port=int(port) if port and "," not in port else None,
        database=parts.pop("dbname", None),
        query={k: v for k, v in parts.items()},
    )
    if host and "," in host:  # multi-host DSNs: psycopg reads host/port from the query
        url = url.update_query_dict({"host": host, **({"port": port} if port else {})})
    return url.render_as_string(hide_password=False)


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's report into one sentence per bad variable."""
    # Overrides may use field names or variable names; the last one given wins.
    # Settings() takes each aliased field only by its variable name (populate_by_name is off).
    key_of = {name: name for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            variable = str(field.validation_alias.choices[0])
            key_of[name] = variable
            key_of[variable.lower()] = variable
    unknown = sorted(k.upper() for k in overrides if k.lower() not in key_of)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    values = {key_of[k.lower()]: v for k, v in overrides.items()}
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper()
            if not name:  # a rule across variables: its input is every value, secrets included
                problems.append(err["msg"].removeprefix("Value error, "))
            elif "password" in name.lower() or name.endswith("_DSN"):
                problems.append(f"{name}: {err['msg']}")
            else:
                problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once, on first use)."""
    return load_settings()


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0
