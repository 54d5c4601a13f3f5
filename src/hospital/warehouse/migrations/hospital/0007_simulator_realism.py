"""Simulator realism: hospital mirror columns matching ehr_0004 (patients.deceased_at).

Revision ID: hospital_0007
Revises: hospital_0006
"""

from alembic import op

revision = "hospital_0007"
down_revision = "hospital_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE patients ADD COLUMN IF NOT EXISTS deceased_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE patients DROP COLUMN IF EXISTS deceased_at")
