"""pgAdmin's generated configuration and the credential rules (no install needed)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from pydantic import SecretStr

from hospital.dashboard import pgadmin
from hospital.dashboard.server import DashboardError, settings_env
from hospital.settings import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(stack_dir=tmp_path / "stack", pgadmin_port=5999, pg_port=5433)


def test_config_local_is_server_mode_under_the_stack(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "config_local.py"
    path.write_text(pgadmin.config_local(settings))
    values = runpy.run_path(str(path))
    data = settings.stack_path / "pgadmin" / "data"
    assert values["SERVER_MODE"] is True
    assert values["DATA_DIR"] == str(data)
    assert values["SQLITE_PATH"] == str(data / "pgadmin4.db")
    assert values["LOG_FILE"].startswith(str(data))
    assert values["DEFAULT_SERVER"] == "127.0.0.1"
    assert values["DEFAULT_SERVER_PORT"] == 5999
    assert values["UPGRADE_CHECK_ENABLED"] is False
    assert len(values["SECRET_KEY"]) == 32


def test_servers_json_has_ehr_and_hospital_with_read_only_roles(settings: Settings) -> None:
    servers = pgadmin.servers_json(settings)["Servers"]
    assert isinstance(servers, dict)
    by_db = {s["MaintenanceDB"]: s for s in servers.values()}
    assert set(by_db) == {"ehr", "hospital"}
    assert by_db["ehr"]["Username"] == "hospital_app"
    assert by_db["hospital"]["Username"] == "analyst"
    assert {s["Port"] for s in servers.values()} == {5433}


def test_default_password_refused_beyond_loopback(tmp_path: Path) -> None:
    local = load_settings(stack_dir=tmp_path)
    pgadmin.check_credentials(local)  # loopback: the default is fine
    # model_copy skips the settings validators: pgAdmin's own check must still refuse.
    exposed = local.model_copy(update={"host": "0.0.0.0"})
    with pytest.raises(DashboardError, match="PGADMIN_PASSWORD"):
        pgadmin.check_credentials(exposed)
    own = SecretStr("a-real-secret")
    pgadmin.check_credentials(exposed.model_copy(update={"pgadmin_password": own}))
    with pytest.raises(DashboardError, match="6 characters"):
        pgadmin.check_credentials(load_settings(stack_dir=tmp_path, pgadmin_password="abc"))
    with pytest.raises(DashboardError, match="e-mail"):
        pgadmin.check_credentials(load_settings(stack_dir=tmp_path, pgadmin_email="admin"))


def test_venv_defaults_under_the_stack_and_can_be_shared(
    settings: Settings, tmp_path: Path
) -> None:
    assert pgadmin.venv_dir(settings) == settings.stack_path / "pgadmin" / "venv"
    shared = load_settings(stack_dir=tmp_path / "s", pgadmin_venv_dir=tmp_path / "cache")
    assert pgadmin.venv_dir(shared) == tmp_path / "cache"


def test_settings_env_rebuilds_the_same_settings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = settings_env(settings)
    assert env["HOSPITAL_STACK_DIR"] == str(settings.stack_dir)
    assert env["PGADMIN_PASSWORD"] == "pgadmin-local"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    rebuilt = Settings(_env_file=None)  # type: ignore[call-arg]
    assert rebuilt.model_dump() == settings.model_dump()


def test_servers_follow_external_databases(tmp_path: Path) -> None:
    external = load_settings(
        stack_dir=tmp_path,
        hospital_analyst_dsn="postgresql://analyst:secret@db.example:6543/hosp?sslmode=require",
    )
    servers = pgadmin.servers_json(external)["Servers"]
    assert isinstance(servers, dict)
    # The EHR's read-only DSN is not configured: that server is left out, not guessed.
    [hospital] = servers.values()
    assert hospital["Host"] == "db.example" and hospital["Port"] == 6543
    assert hospital["MaintenanceDB"] == "hosp" and hospital["Username"] == "analyst"
    assert hospital["SSLMode"] == "require"
    assert "secret" not in str(servers)
