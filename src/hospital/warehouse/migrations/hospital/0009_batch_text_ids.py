"""Batch: people's and the initial census's national_id and sex as text.

``char(13)`` / ``char(1)`` pad and trim spaces, so the batch path's direct load (COPY straight
into an empty target, then one check of the new rows) could not see a value exactly as the
strict path does and refused these tables: the initial ``people.csv`` (5,000,000 rows by
default) went the typed way, ~2x slower, and was the longest step of the first ``make run``.
The batch rules already require exactly 13 digits and one of the sex codes, so the values
stored do not change. PostgreSQL's own advice is ``text`` over ``char(n)``.

Revision ID: hospital_0009
Revises: hospital_0008
"""

from alembic import op

revision = "hospital_0009"
down_revision = "hospital_0008"
branch_labels = None
depends_on = None

TABLES = ("people", "initial_census")


def upgrade() -> None:
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN national_id TYPE text, ALTER COLUMN sex TYPE text"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN national_id TYPE char(13),"
            " ALTER COLUMN sex TYPE char(1)"
        )
