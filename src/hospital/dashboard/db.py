"""A small, thread-safe pool of read-only connections for the dashboard.

Every connection logs in as the ``analyst`` role (read-only on the hospital database), with a
short ``statement_timeout`` so one slow chart can never pile up work on the database, the session
forced read-only, and the time zone fixed to UTC so ``::date`` buckets are the same for everyone.
A query against a table or column some stage has not created yet yields ``None`` instead of an
error: the dashboard shows an empty chart, never a 500.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors, sql

from hospital.errors import HospitalError
from hospital.settings import Settings

Row = tuple[Any, ...]
Query = str | sql.Composed

# Errors that mean "this data is not there (yet) or not for us": an empty chart, not a failure.
_ABSENT = (
    errors.UndefinedTable,
    errors.UndefinedColumn,
    errors.UndefinedFunction,
    errors.InsufficientPrivilege,
    errors.QueryCanceled,
)


class DashboardDbError(HospitalError):
    """The dashboard cannot reach its database."""


class ReadPool:
    """At most ``size`` autocommit connections, created lazily and reused."""

    def __init__(self, dsn: str, size: int = 3, statement_timeout_ms: int = 5000) -> None:
        self._dsn = dsn
        self._size = size
        # jit=off: the charts' queries are short, and PostgreSQL's JIT (triggered by cost
        # estimates that CTEs inflate) spent 0.3-0.6 s compiling a 17 ms query.
        self._options = (
            f"-c statement_timeout={statement_timeout_ms} "
            "-c default_transaction_read_only=on -c TimeZone=UTC -c jit=off"
        )
        self._idle: queue.LifoQueue[psycopg.Connection[Row]] = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def for_settings(cls, settings: Settings) -> ReadPool:
        return cls(
            settings.dsn("hospital", "analyst"),
            size=settings.dashboard_pool_size,
            statement_timeout_ms=settings.dashboard_statement_timeout_ms,
        )

    def _connect(self) -> psycopg.Connection[Row]:
        try:
            return psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=3, options=self._options
            )
        except psycopg.OperationalError as exc:
            raise DashboardDbError(f"cannot connect to the hospital database: {exc}") from None

    @contextlib.contextmanager
    def connection(self, timeout: float = 10.0) -> Iterator[psycopg.Connection[Row]]:
        if self._closed:
            raise DashboardDbError("the dashboard's connection pool is closed")
        conn: psycopg.Connection[Row] | None = None
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._created < self._size
                if grow:
                    self._created += 1
            if grow:
                try:
                    conn = self._connect()
                except BaseException:
                    with self._lock:
                        self._created -= 1
                    raise
            else:
                try:
                    conn = self._idle.get(timeout=timeout)
                except queue.Empty:
                    raise DashboardDbError("all dashboard connections are busy") from None
        try:
            yield conn
        finally:
            # A connection the server dropped is ``broken``: close it, a new one replaces it.
            if not (conn.closed or conn.broken or self._closed):
                self._idle.put(conn)
            else:
                conn.close()
                with self._lock:
                    self._created -= 1

    def fetch(self, query: Query, params: Sequence[object] = ()) -> list[Row] | None:
        """Rows of ``query``, or None when a table/column is missing or the query timed out.

        A pooled connection the server has dropped (PostgreSQL restarted, the session was
        terminated) is discarded and the query retried once on a fresh one.
        """
        for attempt in (1, 2):
            with self.connection() as conn:
                try:
                    return conn.execute(query, params).fetchall()
                except _ABSENT:
                    return None
                except psycopg.OperationalError as exc:
                    if attempt == 1 and conn.broken:
                        continue
                    raise DashboardDbError(f"the hospital database failed: {exc}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
