"""Settings: defaults, .env/environment precedence, and one clear error per bad variable."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hospital.errors import ConfigError
from hospital.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the variables it sets (make test exports the test stack's)."""
    for name, field in Settings.model_fields.items():
        monkeypatch.delenv(name.upper(), raising=False)
        alias = field.validation_alias
        for choice in getattr(alias, "choices", ()):
            monkeypatch.delenv(str(choice).upper(), raising=False)


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


def test_dsn_carries_role_and_password() -> None:
    s = load_settings(hospital_app_password="s3cret", pg_port=60000)
    dsn = s.dsn("ehr", "hospital_app")
    assert "user=hospital_app" in dsn and "password=s3cret" in dsn and "port=60000" in dsn
    assert "s3cret" not in repr(s)  # secrets never print


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
