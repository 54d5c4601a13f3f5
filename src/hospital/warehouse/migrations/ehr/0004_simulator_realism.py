"""Simulator realism: patients.deceased_at (deaths in and out of the hospital).

Births need no new column (a newborn is a patient like any other) and discharge dispositions are
visit statuses (``completed``, ``died``, ``transferred``, ``absconded``) in the existing text
column. ``patients`` is in the CDC publication already; the hospital mirror gets the same column
in hospital_0007 (the CDC applier maps columns by name).

Revision ID: ehr_0004
Revises: ehr_0003
"""

from alembic import op

revision = "ehr_0004"
down_revision = "ehr_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE patients ADD COLUMN IF NOT EXISTS deceased_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE patients DROP COLUMN IF EXISTS deceased_at")
