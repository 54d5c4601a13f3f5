"""Alembic environment shared by both migration trees (``ehr`` and ``hospital``).

The runner in :mod:`hospital.warehouse.migrate` passes an open connection through
``config.attributes["connection"]``; the trees differ only in their ``version_locations``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        context.configure(connection=conn, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()


run()
