"""EHR additions for the simulator: treatments, and bookkeeping of applied simulated days.

``treatments`` joins the CDC publication like the core tables. ``sim_world`` records which world
(seed, population, origin...) the database holds and ``sim_days`` which days were applied, so a
re-run refuses a different world and skips days already written; neither is published.

Revision ID: ehr_0002
Revises: ehr_0001
"""

from alembic import op

revision = "ehr_0002"
down_revision = "ehr_0001"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE treatments (
    treatment_id    uuid PRIMARY KEY,
    visit_id        uuid NOT NULL REFERENCES visits (visit_id),
    patient_id      uuid NOT NULL REFERENCES patients (patient_id),
    treatment_code  text NOT NULL,
    description     text NOT NULL,
    performed_by    uuid,
    performed_at    timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'completed',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX treatments_visit_idx ON treatments (visit_id);
ALTER TABLE treatments REPLICA IDENTITY FULL;
ALTER PUBLICATION hospital_cdc ADD TABLE treatments;

CREATE TABLE sim_world (
    id          smallint PRIMARY KEY CHECK (id = 1),
    config_key  text NOT NULL,
    origin      date NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sim_days (
    sim_day     date PRIMARY KEY,
    inserted    integer NOT NULL,
    updated     integer NOT NULL,
    deleted     integer NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS sim_days")
    op.execute("DROP TABLE IF EXISTS sim_world")
    op.execute("ALTER PUBLICATION hospital_cdc DROP TABLE treatments")
    op.execute("DROP TABLE IF EXISTS treatments")
