"""Stream path: real-time bed events with lineage, consumer offsets, quarantine.

``bed_events`` is where the stream and the batch paths meet: one row per event id
(``hospital.simulator.events.event_id(kind, source_id)``). The stream path sets
``seen_by_stream_at`` (the fast view), the batch path sets ``confirmed_by_batch_at`` (the day's
record of truth); a row with only the batch column set is an event the stream missed and the
batch filled in. ``stream_offsets`` is the database sink's position per topic partition and
``stream_quarantine`` holds invalid messages with their Kafka coordinates.

Revision ID: hospital_0004
Revises: hospital_0003
"""

from alembic import op

revision = "hospital_0004"
down_revision = "hospital_0003"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE bed_events (
    event_id               uuid PRIMARY KEY,
    kind                   text NOT NULL
        CHECK (kind IN ('admission', 'discharge', 'transfer', 'transport')),
    source_id              uuid NOT NULL,
    patient_id             uuid NOT NULL,
    department_code        text,
    occurred_at            timestamptz NOT NULL,
    event_date             date NOT NULL,
    detail                 jsonb NOT NULL DEFAULT '{}'::jsonb,
    seen_by_stream_at      timestamptz,
    stream_topic           text,
    stream_partition       integer,
    stream_offset          bigint,
    confirmed_by_batch_at  timestamptz,
    batch_file             text
);
CREATE INDEX bed_events_date_kind_idx ON bed_events (event_date, kind);

-- The database sink's own position in each topic partition (next offset to apply), written in
-- the same transaction as the rows it covers: on restart the consumer seeks here.
CREATE TABLE stream_offsets (
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint NOT NULL,
    consumer_group  text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition)
);

-- Messages that are not valid events (not JSON, unknown schema_version, missing fields,
-- impossible values), one row per Kafka coordinate; they also go to the dead-letter topic.
CREATE TABLE stream_quarantine (
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    message_key     text,
    payload         bytea,
    reason          text NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS stream_quarantine")
    op.execute("DROP TABLE IF EXISTS stream_offsets")
    op.execute("DROP TABLE IF EXISTS bed_events")
