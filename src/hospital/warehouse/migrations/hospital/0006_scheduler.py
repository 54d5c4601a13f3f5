"""Scheduler: the main job's per-day job state and run history.

Revision ID: hospital_0006
Revises: hospital_0005
"""

from alembic import op

revision = "hospital_0006"
down_revision = "hospital_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")


def downgrade() -> None:
    op.execute("SELECT 1")
