"""Apply the Alembic migration trees, one per database.

Each tree runs as its database's owner (``ehr_writer`` for ``ehr``, ``hospital_app`` for
``hospital``) so the tables belong to the role that writes them and default privileges apply.
With external databases those are EHR_WRITER_DSN and HOSPITAL_DSN; a tree whose owner DSN is
not given is not ours to migrate (e.g. a real EHR we only read) and is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from hospital.errors import MigrationError
from hospital.settings import EXTERNAL_DSNS, Role, Settings

Tree = Literal["ehr", "hospital"]
TREES: tuple[Tree, ...] = ("ehr", "hospital")
OWNERS: dict[Tree, Role] = {"ehr": "ehr_writer", "hospital": "hospital_app"}
MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(tree: Tree) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_locations", str(MIGRATIONS / tree))
    cfg.set_main_option("path_separator", "os")
    return cfg


def _run(settings: Settings, tree: Tree, action: str, revision: str) -> None:
    engine = create_engine(settings.sqlalchemy_url(tree, OWNERS[tree]))
    cfg = alembic_config(tree)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            if action == "upgrade":
                command.upgrade(cfg, revision)
            else:
                command.downgrade(cfg, revision)
    except SQLAlchemyError as exc:
        raise MigrationError(f"{action} of {tree} to {revision} failed: {exc}") from exc
    finally:
        engine.dispose()


def managed_trees(settings: Settings) -> tuple[Tree, ...]:
    """The trees this installation migrates: both locally; externally, those with an owner DSN."""
    if settings.local_postgres:
        return TREES
    return tuple(t for t in TREES if getattr(settings, EXTERNAL_DSNS[(t, OWNERS[t])]) is not None)


def upgrade(settings: Settings, tree: Tree | None = None, revision: str = "heads") -> None:
    """Bring ``tree`` (or every managed tree) up to ``revision``."""
    for name in (tree,) if tree else managed_trees(settings):
        _run(settings, name, "upgrade", revision)


def downgrade(settings: Settings, tree: Tree | None = None, revision: str = "base") -> None:
    """Take ``tree`` (or every managed tree, hospital first) down to ``revision``."""
    for name in (tree,) if tree else tuple(reversed(managed_trees(settings))):
        _run(settings, name, "downgrade", revision)


def current(settings: Settings, tree: Tree) -> set[str]:
    """The revisions the database is at (empty before the first migration)."""
    engine = create_engine(settings.sqlalchemy_url(tree, OWNERS[tree]))
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def heads(tree: Tree) -> set[str]:
    """The newest revisions the code knows for ``tree``."""
    return set(ScriptDirectory.from_config(alembic_config(tree)).get_heads())
