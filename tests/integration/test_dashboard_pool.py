"""The dashboard's read pool against the real database: analyst, read-only, short timeouts,
missing tables as None, and a connection killed by the server replaced transparently."""

from __future__ import annotations

import psycopg
import pytest

from hospital.dashboard.db import ReadPool
from hospital.settings import Settings

pytestmark = pytest.mark.integration


def test_pool_reads_as_analyst_read_only_with_a_timeout(stack: Settings) -> None:
    pool = ReadPool(stack.dsn("hospital", "analyst"), size=1, statement_timeout_ms=200)
    try:
        assert pool.fetch(
            "SELECT current_user, current_setting('TimeZone'), current_setting('jit')"
        ) == [("analyst", "UTC", "off")]
        # A query past the statement timeout is cancelled by the server: an empty chart.
        assert pool.fetch("SELECT pg_sleep(2)") is None
        assert pool.fetch("SELECT count(*) FROM no_such_table_yet") is None
        # Read-only even where a role could write (temporary tables need no grant).
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            pool.fetch("CREATE TEMP TABLE scratch (x int)")
        assert pool.fetch("SELECT 1") == [(1,)]  # the connection is still usable
    finally:
        pool.close()


def test_connection_terminated_by_the_server_is_replaced(stack: Settings) -> None:
    pool = ReadPool(stack.dsn("hospital", "analyst"), size=1, statement_timeout_ms=2000)
    try:
        [(pid,)] = pool.fetch("SELECT pg_backend_pid()") or []
        with psycopg.connect(stack.dsn("hospital", "superuser"), autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        [(new_pid,)] = pool.fetch("SELECT pg_backend_pid()") or []
        assert new_pid != pid
    finally:
        pool.close()
