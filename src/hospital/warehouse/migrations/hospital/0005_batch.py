"""Batch path: ingestion ledger, quarantine, initial-load tables and SQL validators.

- ``batch_ledger``: one row per CSV file of ``lake/batch`` (path relative to it) with its
  SHA-256, size/mtime (so an unchanged loaded file is skipped without re-hashing), status
  (``loaded`` or ``rejected``), rows loaded/rejected and the error of a rejected file. Written in
  the same transaction as the rows it describes.
- ``batch_quarantine``: bad rows (file, line, column, reason, value) and rejected files (no line).
- ``people`` (``people.csv``), ``initial_census`` (``hospital_patients.csv``: patients in a bed
  when the world started; ``patients`` is the CDC mirror), ``transports`` (ambulance runs).
- Columns the batch files carry that the core tables lacked.
- ``batch_is_*``: inlinable, exception-free type checks, so one bad value quarantines its row
  instead of aborting the statement (PostgreSQL 15 has no ``pg_input_is_valid``).
- ``uuid-ossp`` for ``uuid_generate_v5``: the batch computes ``bed_events.event_id`` in SQL,
  identical to ``hospital.simulator.events.event_id``.

Staging tables are per-session TEMP tables created by the ingestor: a crashed ingest leaves none.

Revision ID: hospital_0005
Revises: hospital_0004
"""

from alembic import op

from hospital.warehouse.roles import if_role_exists

revision = "hospital_0005"
down_revision = "hospital_0004"
branch_labels = None
depends_on = None

DDL = r"""
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

CREATE TABLE batch_ledger (
    path           text PRIMARY KEY,
    drop_name      text NOT NULL,
    sha256         text NOT NULL,
    size_bytes     bigint NOT NULL,
    mtime_ns       bigint NOT NULL,
    status         text NOT NULL CHECK (status IN ('loaded', 'rejected')),
    rows_staged    integer NOT NULL DEFAULT 0,
    rows_loaded    integer NOT NULL DEFAULT 0,
    rows_rejected  integer NOT NULL DEFAULT 0,
    error          text,
    seconds        double precision,
    ingested_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE batch_quarantine (
    quarantine_id   bigserial PRIMARY KEY,
    file            text NOT NULL,
    sha256          text,
    line            integer,
    column_name     text,
    reason          text NOT NULL,
    value           text,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX batch_quarantine_file_idx ON batch_quarantine (file, line);

CREATE TABLE people (
    person_id         uuid PRIMARY KEY,
    national_id       char(13) NOT NULL,
    first_name        text NOT NULL,
    last_name         text NOT NULL,
    sex               char(1) NOT NULL,
    birth_date        date NOT NULL,
    population_group  text,
    address_line      text,
    suburb            text,
    city              text,
    province          text,
    postal_code       text,
    phone             text
);

CREATE TABLE initial_census (
    patient_id        uuid PRIMARY KEY,
    national_id       char(13) NOT NULL,
    first_name        text NOT NULL,
    last_name         text NOT NULL,
    sex               char(1) NOT NULL,
    birth_date        date NOT NULL,
    population_group  text,
    address_line      text,
    suburb            text,
    city              text,
    province          text,
    postal_code       text,
    phone             text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE transports (
    transport_id    uuid PRIMARY KEY,
    patient_id      uuid NOT NULL,
    visit_id        uuid,
    transport_type  text NOT NULL,
    priority        text NOT NULL,
    unit            text,
    from_location   text,
    to_location     text,
    dispatched_at   timestamptz NOT NULL,
    arrived_at      timestamptz NOT NULL
);
CREATE INDEX transports_time_idx ON transports (arrived_at);

ALTER TABLE admissions ADD COLUMN IF NOT EXISTS expected_discharge_date date;
ALTER TABLE staff ADD COLUMN IF NOT EXISTS person_id uuid;

CREATE FUNCTION batch_is_uuid(t text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
$$;

CREATE FUNCTION batch_is_int(t text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t ~ '^[+-]?[0-9]{1,9}$'
$$;

-- A real calendar date (leap years included), checked without casting.
CREATE FUNCTION batch_is_date(t text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN t !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' THEN false
        WHEN substr(t, 6, 2)::int NOT BETWEEN 1 AND 12 THEN false
        ELSE substr(t, 9, 2)::int BETWEEN 1 AND CASE
            WHEN substr(t, 6, 2)::int IN (4, 6, 9, 11) THEN 30
            WHEN substr(t, 6, 2)::int <> 2 THEN 31
            WHEN substr(t, 1, 4)::int % 4 = 0
                 AND (substr(t, 1, 4)::int % 100 <> 0 OR substr(t, 1, 4)::int % 400 = 0) THEN 29
            ELSE 28
        END
    END AND length(t) = 10
$$;

-- ISO 8601 timestamp; without a UTC offset it is read as UTC (the ingest session's zone).
CREATE FUNCTION batch_is_ts(t text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN t !~ ('^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]'
                   || '(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?$')
            THEN false
        ELSE batch_is_date(substr(t, 1, 10))
    END
$$;

-- Python's datetime.isoformat() of a UTC time, so bed_events.detail matches the stream's.
CREATE FUNCTION batch_iso(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN to_char(t AT TIME ZONE 'UTC', 'US') = '000000' THEN ''
                ELSE '.' || to_char(t AT TIME ZONE 'UTC', 'US') END
        || '+00:00'
$$;
"""

# Only where the role exists: an external server need not have our `analyst`.
GRANTS = if_role_exists(
    "analyst",
    "GRANT SELECT ON batch_ledger, batch_quarantine, people, initial_census, transports"
    " TO analyst;",
)


def upgrade() -> None:
    op.execute(DDL)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS batch_iso(timestamptz)")
    for fn in ("batch_is_ts", "batch_is_date", "batch_is_int", "batch_is_uuid"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}(text)")
    op.execute("ALTER TABLE staff DROP COLUMN IF EXISTS person_id")
    op.execute("ALTER TABLE admissions DROP COLUMN IF EXISTS expected_discharge_date")
    for table in ("transports", "initial_census", "people", "batch_quarantine", "batch_ledger"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
