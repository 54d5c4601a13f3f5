"""Security of the local cluster against the real server: replication limits, quoted
passwords, and migrations on a server that lacks our roles."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import create_engine, text

from hospital.settings import Settings
from hospital.stack import Stack, prerequisites
from hospital.warehouse import migrate
from tests.support import stack_settings

pytestmark = pytest.mark.integration


def _superuser(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(settings.dsn("postgres", "superuser"), autocommit=True)


def test_pg_basebackup_as_cdc_reader_is_refused(stack: Settings, tmp_path: Path) -> None:
    """cdc_reader has REPLICATION for Debezium; it must not copy the whole cluster."""
    Stack(stack).postgres.refresh_access()  # a cluster made by an older version: fixed here
    parts = conninfo_to_dict(stack.dsn("ehr", "cdc_reader"))
    result = subprocess.run(
        [
            str(prerequisites.pg_bindir(stack) / "pg_basebackup"),
            "-h",
            str(parts["host"]),
            "-p",
            str(parts["port"]),
            "-U",
            "cdc_reader",
            "-D",
            str(tmp_path / "copy"),
            "-X",
            "none",
            "--no-password",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": stack.password("cdc_reader")},
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "replication connection" in result.stderr  # refused by pg_hba.conf, not a typo
    assert not (tmp_path / "copy" / "global" / "pg_control").exists()


def _replication(
    settings: Settings, dbname: str, mode: str
) -> psycopg.Connection[tuple[object, ...]]:
    params = conninfo_to_dict(settings.dsn("ehr", "cdc_reader"))
    params.update(dbname=dbname, replication=mode)
    return psycopg.connect(make_conninfo("", **params), autocommit=True)


def test_logical_replication_of_ehr_still_works_for_cdc_reader(stack: Settings) -> None:
    Stack(stack).postgres.refresh_access()
    with _replication(stack, "ehr", "database") as conn:
        # The walsender speaks the simple query protocol only: go through libpq directly.
        result = conn.pgconn.exec_(b"IDENTIFY_SYSTEM")
        assert result.status == pq.ExecStatus.TUPLES_OK
        assert result.get_value(0, 3) == b"ehr"  # dbname column: a logical connection
    for dbname, mode in (("hospital", "database"), ("postgres", "database"), ("ehr", "true")):
        with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf"):
            _replication(stack, dbname, mode).close()


@pytest.fixture
def analyst_password(stack: Settings) -> Iterator[str]:
    """A hostile password on the real `analyst` role, restored afterwards."""
    nasty = "p w'\"=\\ host=elsewhere dbname=postgres"
    with _superuser(stack) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE analyst PASSWORD {}").format(sql.Literal(nasty)).as_string(conn)
        )
    try:
        yield nasty
    finally:
        with _superuser(stack) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE analyst PASSWORD {}")
                .format(sql.Literal(stack.password("analyst")))
                .as_string(conn)
            )


def test_a_hostile_password_authenticates_as_itself(stack: Settings, analyst_password: str) -> None:
    settings = stack.model_copy(update={"analyst_password": analyst_password})
    settings = type(stack).model_validate(settings.model_dump())
    with psycopg.connect(settings.dsn("hospital", "analyst")) as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row == ("analyst", "hospital")
    engine = create_engine(settings.sqlalchemy_url("hospital", "analyst"))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == "analyst"
    finally:
        engine.dispose()


@pytest.fixture
def external_server(stack: Settings) -> Iterator[tuple[str, str, str]]:
    """A database owned by a fresh role on a server where `analyst` does not exist."""
    tag = uuid.uuid4().hex[:8]
    database, owner, away = f"ext_{tag}", f"ext_owner_{tag}", f"analyst_away_{tag}"
    password = "o'wn er=\\x"
    with _superuser(stack) as conn:
        # A run killed inside this fixture left analyst renamed: put it back first.
        stray = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'analyst\\_away\\_%'"
        ).fetchall()
        has_analyst = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'analyst'").fetchone()
        if stray and not has_analyst:
            conn.execute(
                sql.SQL("ALTER ROLE {} RENAME TO analyst").format(sql.Identifier(str(stray[0][0])))
            )
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
            .format(sql.Identifier(owner), sql.Literal(password))
            .as_string(conn)
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}")
            .format(sql.Identifier(database), sql.Identifier(owner))
            .as_string(conn)
        )
        conn.execute(sql.SQL("ALTER ROLE analyst RENAME TO {}").format(sql.Identifier(away)))
    try:
        yield database, owner, password
    finally:
        with _superuser(stack) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} RENAME TO analyst").format(sql.Identifier(away)))
            # Renaming clears nothing for SCRAM, but set it again to be sure.
            conn.execute(
                sql.SQL("ALTER ROLE analyst PASSWORD {}")
                .format(sql.Literal(stack.password("analyst")))
                .as_string(conn)
            )
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))


def test_hospital_migrations_grant_to_analyst_only_where_it_exists(
    stack: Settings, external_server: tuple[str, str, str], tmp_path: Path
) -> None:
    database, owner, password = external_server
    parts = conninfo_to_dict(stack.dsn("hospital", "hospital_app"))
    external = stack_settings(
        stack_dir=tmp_path / "stack",
        hospital_dsn=make_conninfo(
            "",
            host=parts["host"],
            port=parts["port"],
            dbname=database,
            user=owner,
            password=password,
        ),
    )
    assert not external.local_postgres
    assert migrate.managed_trees(external) == ("hospital",)  # no EHR_WRITER_DSN: not ours

    # The whole tree: every stage's grants to our roles must be conditional.
    migrate.upgrade(external, "hospital")

    heads = ScriptDirectory.from_config(migrate.alembic_config("hospital")).get_heads()
    assert migrate.current(external, "hospital") == set(heads)
    with psycopg.connect(external.dsn("hospital", "hospital_app")) as conn:
        owner_row = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'fhir' AND tablename = 'patient'"
        ).fetchone()
    assert owner_row == (owner,)
    migrate.downgrade(external, "hospital", "base")
    assert migrate.current(external, "hospital") == set()
