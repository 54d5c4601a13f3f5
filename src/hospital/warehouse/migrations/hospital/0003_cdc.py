"""CDC: mirror lineage columns (source LSN, commit time), applier offsets, tombstones, quarantine.

- Every EHR mirror gets ``_cdc_lsn`` (LSN of the change that wrote the row; the applier only
  overwrites a row with a newer one) and ``_cdc_committed_at`` (EHR commit time). ``treatments``
  gets its mirror here if no earlier migration created it.
- ``cdc_offsets``: the next Kafka offset per (group, topic, partition), written in the same
  transaction as the rows, so a crash never loses or repeats an effect.
- ``cdc_deleted_keys`` / ``cdc_truncations``: a delete (or truncate) leaves its LSN behind so a
  late or replayed insert of an older LSN never resurrects the row.
- ``cdc_quarantine``: poison messages with topic, partition, offset, key and reason.
- Schema ``cdc_jdbc``: where Debezium's JDBC sink (the benchmark peer) creates its tables.

Revision ID: hospital_0003
Revises: hospital_0002
"""

from alembic import op

from hospital.warehouse.roles import if_role_exists

revision = "hospital_0003"
down_revision = "hospital_0002"
branch_labels = None
depends_on = None

MIRRORS = (
    "patients",
    "visits",
    "diagnoses",
    "doctor_notes",
    "medications",
    "allergies",
    "treatments",
)

DDL = """
CREATE TABLE IF NOT EXISTS treatments (
    treatment_id    uuid PRIMARY KEY,
    visit_id        uuid NOT NULL,
    patient_id      uuid NOT NULL,
    treatment_code  text NOT NULL,
    description     text NOT NULL,
    performed_by    uuid,
    performed_at    timestamptz NOT NULL,
    status          text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE cdc_offsets (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL,
    next_offset     bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

CREATE TABLE cdc_deleted_keys (
    table_name  text NOT NULL,
    key         text NOT NULL,
    lsn         bigint NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, key)
);

CREATE TABLE cdc_truncations (
    table_name    text PRIMARY KEY,
    lsn           bigint NOT NULL,
    truncated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cdc_quarantine (
    topic           text NOT NULL,
    partition       integer NOT NULL,
    "offset"        bigint NOT NULL,
    key             text,
    reason          text NOT NULL,
    value           text,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);

CREATE SCHEMA IF NOT EXISTS cdc_jdbc;
"""
# Only where the role exists: an external server need not have our `analyst`.
GRANTS = if_role_exists(
    "analyst",
    """
GRANT USAGE ON SCHEMA cdc_jdbc TO analyst;
GRANT SELECT ON cdc_offsets, cdc_deleted_keys, cdc_truncations, cdc_quarantine, treatments
    TO analyst;
""",
)


def upgrade() -> None:
    op.execute(DDL)
    op.execute(GRANTS)
    for table in MIRRORS:
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS _cdc_lsn bigint, "
            "ADD COLUMN IF NOT EXISTS _cdc_committed_at timestamptz"
        )


def downgrade() -> None:
    for table in MIRRORS:
        op.execute(
            f"ALTER TABLE IF EXISTS {table} DROP COLUMN IF EXISTS _cdc_lsn, "
            "DROP COLUMN IF EXISTS _cdc_committed_at"
        )
    op.execute("DROP SCHEMA IF EXISTS cdc_jdbc CASCADE")
    for table in ("cdc_quarantine", "cdc_truncations", "cdc_deleted_keys", "cdc_offsets"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP TABLE IF EXISTS treatments")
