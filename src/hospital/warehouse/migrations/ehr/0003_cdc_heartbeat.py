"""CDC: the heartbeat table Debezium writes while the EHR is quiet (in the publication).

Debezium's ``heartbeat.action.query`` upserts the single row of ``cdc_heartbeat`` every
``CDC_HEARTBEAT_INTERVAL_MS``. Because the table is in ``hospital_cdc``, each beat is a change
the connector receives, so it can confirm a newer LSN to its slot and the slot's retained WAL
stays bounded even when no clinical table changes. ``cdc_reader`` is read-only everywhere else;
it may write this one table only.

Revision ID: ehr_0003
Revises: ehr_0002
"""

from alembic import op

from hospital.warehouse.roles import if_role_exists

revision = "ehr_0003"
down_revision = "ehr_0002"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE cdc_heartbeat (
    id       smallint PRIMARY KEY CHECK (id = 1),
    beat_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO cdc_heartbeat (id) VALUES (1);
ALTER PUBLICATION hospital_cdc ADD TABLE cdc_heartbeat;
"""
# Only where the role exists: an external server may name Debezium's role differently.
GRANTS = if_role_exists(
    "cdc_reader", "GRANT SELECT, INSERT, UPDATE ON cdc_heartbeat TO cdc_reader;"
)


def upgrade() -> None:
    op.execute(DDL)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute("ALTER PUBLICATION hospital_cdc DROP TABLE cdc_heartbeat")
    op.execute("DROP TABLE IF EXISTS cdc_heartbeat")
