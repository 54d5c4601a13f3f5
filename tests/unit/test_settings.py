"""Settings: defaults, .env/environment precedence, and one clear error per bad variable."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url

from hospital.errors import ConfigError
from hospital.settings import EXTERNAL_DSNS, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the variables it sets (make test exports the test stack's)."""
    for name, field in Settings.model_fields.items():
        monkeypatch.delenv(name.upper(), raising=False)
        alias = field.validation_alias
        for choice in getattr(alias, "choices", ()):
            monkeypatch.delenv(str(choice).upper(), raising=False)
    for name in ("HOST", "STACK_DIR", "LAKE_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_bind_to_loopback_and_use_the_projects_ports(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    s = Settings()
    assert (s.host, s.pg_port, s.kafka_port, s.kafka_controller_port, s.connect_port) == (
        "127.0.0.1",
        55432,
        9092,
        9093,
        8083,
    )
    assert s.start_date == date(2020, 1, 1)
    assert s.num_people == 5_000_000
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.local_postgres and s.local_kafka


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("NUM_PEOPLE=1234\nSTART_DATE=2021-06-01\nPG_PORT=50000\n")
    monkeypatch.setenv("PG_PORT", "50001")  # the environment wins over .env
    s = Settings()
    assert s.num_people == 1234
    assert s.start_date == date(2021, 6, 1)
    assert s.pg_port == 50001


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"start_date": "2020-13-01"}, "START_DATE"),
        ({"num_people": -5}, "NUM_PEOPLE"),
        ({"pg_port": 80}, "PG_PORT"),
        ({"start_date": "2021-01-02", "end_date": "2021-01-01"}, "END_DATE"),
        ({"kafka_port": 55432}, "KAFKA_PORT"),
        ({"seconds_per_sim_day": -1}, "SECONDS_PER_SIM_DAY"),
    ],
)
def test_invalid_values_fail_fast_naming_the_variable(
    overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    assert named in str(info.value)


def test_external_services_switch_off_local_ones() -> None:
    s = load_settings(kafka_bootstrap_servers="broker:9092", ehr_dsn="postgresql://u:p@db:5432/ehr")
    assert not s.local_kafka and not s.local_postgres
    assert s.bootstrap_servers == "broker:9092"
    assert s.dsn("ehr", "hospital_app") == "postgresql://u:p@db:5432/ehr"
    assert s.sqlalchemy_url("ehr", "hospital_app") == "postgresql+psycopg://u:p@db:5432/ehr"
    assert "u:p@db" not in repr(s)  # DSNs carry passwords: they print as secrets


def test_each_role_has_its_own_external_dsn() -> None:
    """One EHR_DSN no longer serves every role: the simulator, Debezium and migrations
    would otherwise all run as whichever user it names."""
    dsns = {
        ("ehr", "hospital_app"): "postgresql://reader:a@db/ehr",
        ("ehr", "ehr_writer"): "postgresql://writer:b@db/ehr",
        ("ehr", "cdc_reader"): "postgresql://repl:c@db/ehr",
        ("hospital", "hospital_app"): "postgresql://owner:d@db/hospital",
        ("hospital", "analyst"): "postgresql://viewer:e@db/hospital?sslmode=require",
    }
    s = load_settings(**{EXTERNAL_DSNS[key]: value for key, value in dsns.items()})
    for (database, role), value in dsns.items():
        assert s.dsn(database, role) == value  # type: ignore[arg-type]
        url = make_url(s.sqlalchemy_url(database, role))  # type: ignore[arg-type]
        assert url.username == make_url(value).username
    assert make_url(s.sqlalchemy_url("hospital", "analyst")).query == {"sslmode": "require"}
    with pytest.raises(ConfigError, match="no superuser connection"):
        s.dsn("postgres", "superuser")

    only_reader = load_settings(ehr_dsn="host=db dbname=ehr user=reader password=x")
    assert only_reader.dsn("ehr", "hospital_app").startswith("host=db")
    with pytest.raises(ConfigError, match="set EHR_WRITER_DSN"):
        only_reader.dsn("ehr", "ehr_writer")
    with pytest.raises(ConfigError, match="set HOSPITAL_ANALYST_DSN"):
        only_reader.sqlalchemy_url("hospital", "analyst")


def test_dsn_carries_role_and_password() -> None:
    s = load_settings(hospital_app_password="s3cret", pg_port=60000)
    dsn = s.dsn("ehr", "hospital_app")
    assert "user=hospital_app" in dsn and "password=s3cret" in dsn and "port=60000" in dsn
    assert "s3cret" not in repr(s)  # secrets never print


@pytest.mark.parametrize(
    "password",
    [
        "with space",
        "pw host=elsewhere",
        "it's",
        'say "hi"',
        "a=b=c",
        "back\\slash\\",
        "\\' host=evil dbname=x",
        "@:/?#%&+",
        " leading and trailing ",
    ],
)
def test_passwords_are_quoted_never_parsed(password: str) -> None:
    """libpq parses the DSN back to exactly the password: nothing in it can redirect the
    connection (and the password) to another host, database or user."""
    s = load_settings(analyst_password=password, pg_port=60001)
    parsed = conninfo_to_dict(s.dsn("hospital", "analyst"))
    assert parsed == {
        "host": "127.0.0.1",
        "port": "60001",
        "dbname": "hospital",
        "user": "analyst",
        "password": password,
    }
    url = make_url(s.sqlalchemy_url("hospital", "analyst"))
    assert (url.host, url.port, url.database, url.username, url.password) == (
        "127.0.0.1",
        60001,
        "hospital",
        "analyst",
        password,
    )


def test_unprefixed_host_and_directories_are_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """HOST=0.0.0.0 is set by many shells and containers: it must not expose the services."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("STACK_DIR=/from-dotenv\n")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("host", "0.0.0.0")
    monkeypatch.setenv("LAKE_DIR", "/elsewhere")
    s = load_settings()
    assert (s.host, s.stack_dir, s.lake_dir) == ("127.0.0.1", Path(".stack"), Path("lake"))
    monkeypatch.setenv("HOSPITAL_BIND_HOST", "127.0.0.2")
    assert load_settings().host == "127.0.0.2"


def test_a_non_loopback_bind_address_needs_an_explicit_opt_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for host in ("0.0.0.0", "192.168.1.5", "db.example.org", "::"):
        with pytest.raises(ConfigError, match="HOSPITAL_ALLOW_REMOTE=1"):
            load_settings(host=host)
    for host in ("127.0.0.1", "127.0.0.5", "localhost", "::1"):
        assert load_settings(host=host).host == host

    with pytest.raises(ConfigError) as info:
        load_settings(host="0.0.0.0", allow_remote=True, ehr_writer_password="own-secret-1")
    message = str(info.value)
    assert "PG_SUPERUSER_PASSWORD" in message and "ANALYST_PASSWORD" in message
    assert "EHR_WRITER_PASSWORD" not in message
    assert "own-secret-1" not in message  # the error never echoes secrets

    own = {
        name: f"own-secret-{name}"
        for name, field in Settings.model_fields.items()
        if name.endswith("_password")
    }
    monkeypatch.setenv("HOSPITAL_ALLOW_REMOTE", "1")
    s = load_settings(host="0.0.0.0", **own)
    assert s.allow_remote and s.host == "0.0.0.0"
    # Clients on this machine use loopback; a wildcard is not an address to connect to.
    assert conninfo_to_dict(s.dsn("ehr", "ehr_writer"))["host"] == "127.0.0.1"
    assert s.bootstrap_servers == f"127.0.0.1:{s.kafka_port}"


def test_importing_the_package_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.setenv("NUM_PEOPLE", "not-a-number")
    for name in [m for m in sys.modules if m == "hospital" or m.startswith("hospital.")]:
        monkeypatch.delitem(sys.modules, name)
    importlib.import_module("hospital.cli")  # builds the CLI without touching settings
    fresh_error = importlib.import_module("hospital.errors").ConfigError
    with pytest.raises(fresh_error, match="NUM_PEOPLE"):
        importlib.import_module("hospital.settings").load_settings()


def test_prefixed_directory_variables_and_unknown_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOSPITAL_STACK_DIR", str(tmp_path / "st"))
    monkeypatch.setenv("HOSPITAL_LAKE_DIR", str(tmp_path / "lk"))
    s = load_settings()
    assert s.stack_path == tmp_path / "st"
    assert s.lake_path == tmp_path / "lk"
    assert load_settings(hospital_stack_dir=tmp_path / "x").stack_path == tmp_path / "x"
    with pytest.raises(ConfigError, match="NO_SUCH_THING"):
        load_settings(no_such_thing=1)


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in text.splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    expected = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        expected.add(str(alias.choices[0]) if alias is not None else name.upper())  # type: ignore[union-attr]
    assert expected - documented == set()


def test_conninfo_gives_tools_the_same_parameters_local_or_external() -> None:
    local = load_settings(cdc_reader_password="a b=c", pg_port=60002)
    assert local.conninfo("ehr", "cdc_reader") == {
        "host": "127.0.0.1",
        "port": "60002",
        "dbname": "ehr",
        "user": "cdc_reader",
        "password": "a b=c",
    }
    external = load_settings(cdc_reader_dsn="postgresql://repl:s%20t@db.example/ehr_prod")
    assert external.conninfo("ehr", "cdc_reader") == {
        "host": "db.example",
        "port": "5432",
        "dbname": "ehr_prod",
        "user": "repl",
        "password": "s t",
    }
