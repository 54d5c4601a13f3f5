"""CDC: the heartbeat table Debezium writes while the EHR is quiet (in the publication).

Revision ID: ehr_0003
Revises: ehr_0002
"""

from alembic import op

revision = "ehr_0003"
down_revision = "ehr_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")


def downgrade() -> None:
    op.execute("SELECT 1")
