"""Databases and roles of the local cluster, created idempotently as the superuser.

- ``ehr_writer``: owns and writes the EHR (the simulator).
- ``cdc_reader``: REPLICATION + SELECT on the EHR (Debezium).
- ``hospital_app``: owns and writes the hospital DB; may only *read* the EHR.
- ``analyst``: read-only on the hospital DB.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from hospital.settings import ROLE_NAMES, Database, Settings


def _create_role(cur: psycopg.Cursor[tuple[object, ...]], role: str, password: str) -> None:
    extra = sql.SQL(" REPLICATION") if role == "cdc_reader" else sql.SQL("")
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    verb = "ALTER" if cur.fetchone() else "CREATE"
    cur.execute(
        sql.SQL("{} ROLE {} LOGIN PASSWORD {}{}").format(
            sql.SQL(verb), sql.Identifier(role), sql.Literal(password), extra
        )
    )


def _create_database(cur: psycopg.Cursor[tuple[object, ...]], name: str, owner: str) -> None:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    if not cur.fetchone():
        cur.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)
            )
        )


EHR_GRANTS = """
REVOKE ALL ON DATABASE ehr FROM PUBLIC;
GRANT CONNECT ON DATABASE ehr TO ehr_writer, cdc_reader, hospital_app;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO cdc_reader, hospital_app;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO cdc_reader, hospital_app;
ALTER DEFAULT PRIVILEGES FOR ROLE ehr_writer IN SCHEMA public
    GRANT SELECT ON TABLES TO cdc_reader, hospital_app;
"""

HOSPITAL_GRANTS = """
REVOKE ALL ON DATABASE hospital FROM PUBLIC;
GRANT CONNECT ON DATABASE hospital TO hospital_app, analyst;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO analyst;
ALTER DEFAULT PRIVILEGES FOR ROLE hospital_app GRANT SELECT ON TABLES TO analyst;
"""


def if_role_exists(role: str, statements: str) -> str:
    """SQL that runs ``statements`` only where ``role`` exists.

    For migrations: on an external server our roles (``analyst``, ``cdc_reader``...) may not
    exist, and a GRANT to a missing role would fail the whole migration. ``statements`` is
    PL/pgSQL (GRANT/REVOKE/ALTER DEFAULT PRIVILEGES ...;) run inside a DO block.
    """
    if not role.isidentifier():
        raise ValueError(f"not a plain role name: {role!r}")
    return (
        "DO $if_role$ BEGIN\n"
        f"IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN\n"
        f"{statements.strip()}\n"
        "END IF;\nEND $if_role$;"
    )


def bootstrap(settings: Settings) -> None:
    """Create roles and databases (re-running it changes nothing)."""
    with psycopg.connect(settings.dsn("postgres", "superuser"), autocommit=True) as conn:
        cur = conn.cursor()
        for role in ROLE_NAMES:
            _create_role(cur, role, settings.password(role))  # type: ignore[arg-type]
        _create_database(cur, "ehr", "ehr_writer")
        _create_database(cur, "hospital", "hospital_app")
    grants_by_db: tuple[tuple[Database, str], ...] = (
        ("ehr", EHR_GRANTS),
        ("hospital", HOSPITAL_GRANTS),
    )
    for database, grants in grants_by_db:
        with psycopg.connect(settings.dsn(database, "superuser"), autocommit=True) as conn:
            conn.execute(grants.encode())
