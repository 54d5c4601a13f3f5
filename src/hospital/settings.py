"""One typed settings object, read from the environment and ``.env``.

Nothing here runs at import time: call :func:`get_settings` (cached) or build ``Settings()``
explicitly (tests do, with overrides). Every variable is documented in ``.env.example``.
"""

from __future__ import annotations

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
        populate_by_name=True,
    )

    # --- where things live -------------------------------------------------------------------
    # Prefixed names: STACK_DIR or HOST alone would collide with other tools' variables.
    stack_dir: Path = Field(
        default=Path(".stack"), validation_alias=AliasChoices("HOSPITAL_STACK_DIR", "stack_dir")
    )
    lake_dir: Path = Field(
        default=Path("lake"), validation_alias=AliasChoices("HOSPITAL_LAKE_DIR", "lake_dir")
    )
    host: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices("HOSPITAL_BIND_HOST", "host")
    )

    # --- PostgreSQL ----------------------------------------------------------------------------
    pg_port: Port = 55432
    pg_superuser: str = "postgres"
    pg_superuser_password: SecretStr = SecretStr("postgres-local")
    ehr_writer_password: SecretStr = SecretStr("ehr-writer-local")
    cdc_reader_password: SecretStr = SecretStr("cdc-reader-local")
    hospital_app_password: SecretStr = SecretStr("hospital-app-local")
    analyst_password: SecretStr = SecretStr("analyst-local")
    # External databases: when set, `stack up` starts no PostgreSQL and uses these instead.
    ehr_dsn: str | None = None
    hospital_dsn: str | None = None
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

    # --- cdc (hospital.cdc) ------------------------------------------------------------------

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

    # --- batch (hospital.batch) --------------------------------------------------------------
    batch_watch_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    batch_temp_buffers_mb: Annotated[int, Field(ge=8, le=8192)] = 256
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
        return self.ehr_dsn is None and self.hospital_dsn is None

    @property
    def local_kafka(self) -> bool:
        return not self.kafka_bootstrap_servers

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or f"{self.host}:{self.kafka_port}"

    @property
    def connect_url(self) -> str:
        return f"http://{self.host}:{self.connect_port}"

    def password(self, role: Role) -> str:
        secret = {
            "superuser": self.pg_superuser_password,
            "ehr_writer": self.ehr_writer_password,
            "cdc_reader": self.cdc_reader_password,
            "hospital_app": self.hospital_app_password,
            "analyst": self.analyst_password,
        }[role]
        return secret.get_secret_value()

    def dsn(self, database: Database, role: Role) -> str:
        """A libpq connection string for ``role`` on ``database`` (psycopg form)."""
        if database == "ehr" and self.ehr_dsn:
            return self.ehr_dsn
        if database == "hospital" and self.hospital_dsn:
            return self.hospital_dsn
        user = self.pg_superuser if role == "superuser" else role
        return (
            f"host={self.host} port={self.pg_port} dbname={database} "
            f"user={user} password={self.password(role)}"
        )

    def sqlalchemy_url(self, database: Database, role: Role) -> str:
        """SQLAlchemy URL (psycopg 3 driver) for ``role`` on ``database``."""
        from sqlalchemy.engine import URL, make_url

        if database == "ehr" and self.ehr_dsn:
            return _dsn_to_url(self.ehr_dsn)
        if database == "hospital" and self.hospital_dsn:
            return _dsn_to_url(self.hospital_dsn)
        user = self.pg_superuser if role == "superuser" else role
        url = URL.create(
            "postgresql+psycopg",
            username=user,
            password=self.password(role),
            host=self.host,
            port=self.pg_port,
            database=database,
        )
        return make_url(url).render_as_string(hide_password=False)


def _dsn_to_url(dsn: str) -> str:
    if dsn.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + dsn.split("://", 1)[1]
    if dsn.startswith("postgresql+"):
        return dsn
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import URL

    parts = conninfo_to_dict(dsn)
    return URL.create(
        "postgresql+psycopg",
        username=str(parts.get("user", "")) or None,
        password=str(parts.get("password", "")) or None,
        host=str(parts.get("host", "127.0.0.1")),
        port=int(str(parts.get("port", 5432))),
        database=str(parts.get("dbname", "")) or None,
    ).render_as_string(hide_password=False)


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's report into one sentence per bad variable."""
    # Overrides may use field names or variable names; the last one given wins.
    names = {name: name for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            names.update({str(choice).lower(): name for choice in field.validation_alias.choices})
    unknown = sorted(k.upper() for k in overrides if k.lower() not in names)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    values = {names[k.lower()]: v for k, v in overrides.items()}
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper() or "configuration"
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
