"""pgAdmin 4 from PyPI: started through the library API, logged into over HTTP (CSRF flow),
both servers (EHR and hospital) there at first login and connectable with the role passwords.

The venv is cached in ~/.cache/hospital/pgadmin-venv-<version> (unless PGADMIN_VENV_DIR is
set), so only the first run on a machine pays for the install from PyPI.
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from hospital.dashboard import pgadmin
from hospital.settings import Settings
from hospital.stack import background

pytestmark = pytest.mark.integration

PASSWORD = "test-pgadmin-pw"
CSRF = re.compile(r"[\"']csrfToken[\"']\s*:\s*[\"']([^\"']+)[\"']")


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pga(stack: Settings) -> Iterator[tuple[Settings, str]]:
    venv = stack.pgadmin_venv_dir or (
        Path.home() / ".cache" / "hospital" / f"pgadmin-venv-{stack.pgadmin_version}"
    )
    settings = stack.model_copy(
        update={
            "pgadmin_port": free_port(stack.host),
            "pgadmin_venv_dir": venv,
            "pgadmin_password": SecretStr(PASSWORD),
        }
    )
    pgadmin.stop_pgadmin(settings)
    # A fresh configuration every run: first-login behaviour is what is under test.
    shutil.rmtree(pgadmin.home(settings), ignore_errors=True)
    address = pgadmin.ensure_pgadmin(settings)
    try:
        yield settings, address
    finally:
        pgadmin.stop_pgadmin(settings)


def login(address: str, email: str, password: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=address, follow_redirects=True, timeout=60)
    page = client.get("/login")
    match = CSRF.search(page.text)
    assert match, "no CSRF token on pgAdmin's login page"
    token = match.group(1)
    client.post(
        "/authenticate/login", data={"email": email, "password": password, "csrf_token": token}
    )
    return client, token


def servers(client: httpx.Client, token: str) -> dict[str, dict[str, object]]:
    headers = {"X-pgA-CSRFToken": token}
    groups = client.get("/browser/server_group/nodes/", headers=headers)
    assert groups.status_code == 200, groups.text
    found: dict[str, dict[str, object]] = {}
    for group in groups.json()["data"]:
        nodes = client.get(f"/browser/server/nodes/{group['_id']}", headers=headers)
        if nodes.status_code == 200:
            found.update({s["label"]: s for s in nodes.json()["result"] or []})
    return found


def test_login_sees_both_servers_and_connects(pga: tuple[Settings, str]) -> None:
    settings, address = pga
    client, token = login(address, settings.pgadmin_email, PASSWORD)
    found = servers(client, token)
    assert {"EHR (source)", "Hospital (analytics)"} <= set(found)
    assert found["EHR (source)"]["db"] == "ehr"
    assert found["Hospital (analytics)"]["db"] == "hospital"

    # The pre-loaded definition really reaches the hospital database (as the analyst role).
    hospital = found["Hospital (analytics)"]
    connect = client.post(
        f"/browser/server/connect/{hospital['_pid']}/{hospital['_id']}",
        json={"password": settings.password("analyst")},
        headers={"X-pgA-CSRFToken": token},
    )
    assert connect.status_code == 200, connect.text
    assert connect.json()["data"]["connected"] is True


def test_wrong_password_is_refused(pga: tuple[Settings, str]) -> None:
    settings, address = pga
    client, token = login(address, settings.pgadmin_email, "not-the-password")
    groups = client.get("/browser/server_group/nodes/", headers={"X-pgA-CSRFToken": token})
    assert groups.status_code != 200 or "server_group" not in groups.text


def test_restart_is_a_no_op_stop_ends_it_and_a_new_password_applies(
    pga: tuple[Settings, str],
) -> None:
    settings, address = pga
    [record] = [r for r in background.running(settings) if r.name == "pgadmin"]
    assert record.url == address
    assert pgadmin.ensure_pgadmin(settings) == address  # already running: same one
    assert [r.pid for r in background.running(settings) if r.name == "pgadmin"] == [record.pid]
    config = (pgadmin.home(settings) / "config_local.py").read_text()
    assert "SERVER_MODE = True" in config and str(settings.stack_path) in config

    assert pgadmin.stop_pgadmin(settings) is True
    assert not record.alive()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{address}/misc/ping", timeout=2)
    # Starting again keeps the configuration database (servers loaded once) and applies a
    # changed PGADMIN_PASSWORD to the admin: the new one logs in, the old one no longer does.
    changed = settings.model_copy(update={"pgadmin_password": SecretStr("changed-pgadmin-pw")})
    again = pgadmin.ensure_pgadmin(changed)
    try:
        client, token = login(again, settings.pgadmin_email, "changed-pgadmin-pw")
        assert {"EHR (source)", "Hospital (analytics)"} <= set(servers(client, token))
        old_client, old_token = login(again, settings.pgadmin_email, PASSWORD)
        refused = old_client.get(
            "/browser/server_group/nodes/", headers={"X-pgA-CSRFToken": old_token}
        )
        assert refused.status_code != 200 or "server_group" not in refused.text
    finally:
        pgadmin.stop_pgadmin(changed)
