"""EHR core tables: the national EHR, source of truth the simulator writes.

Every table has a UUID key and ``updated_at``, and REPLICA IDENTITY FULL so that Debezium's
update/delete events carry the full before-image. The publication lists the tables CDC streams;
it is owned by the table owner (ehr_writer), so Debezium runs with autocreate disabled.

Revision ID: ehr_0001
Revises:
"""

from alembic import op

revision = "ehr_0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("patients", "allergies", "medications", "visits", "diagnoses", "doctor_notes")

DDL = """
CREATE TABLE patients (
    patient_id        uuid PRIMARY KEY,
    national_id       char(13) NOT NULL UNIQUE,
    first_name        text NOT NULL,
    last_name         text NOT NULL,
    sex               char(1) NOT NULL CHECK (sex IN ('F', 'M')),
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

CREATE TABLE visits (
    visit_id           uuid PRIMARY KEY,
    patient_id         uuid NOT NULL REFERENCES patients (patient_id),
    facility_code      text NOT NULL,
    department_code    text NOT NULL,
    visit_type         text NOT NULL,
    triage_level       smallint,
    reason             text,
    attending_staff_id uuid,
    started_at         timestamptz NOT NULL,
    ended_at           timestamptz,
    status             text NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX visits_patient_idx ON visits (patient_id);

CREATE TABLE diagnoses (
    diagnosis_id  uuid PRIMARY KEY,
    visit_id      uuid NOT NULL REFERENCES visits (visit_id),
    patient_id    uuid NOT NULL REFERENCES patients (patient_id),
    icd10_code    text NOT NULL,
    description   text NOT NULL,
    is_primary    boolean NOT NULL DEFAULT false,
    diagnosed_at  timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'active',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX diagnoses_visit_idx ON diagnoses (visit_id);

CREATE TABLE allergies (
    allergy_id   uuid PRIMARY KEY,
    patient_id   uuid NOT NULL REFERENCES patients (patient_id),
    substance    text NOT NULL,
    reaction     text,
    severity     text,
    status       text NOT NULL DEFAULT 'active',
    recorded_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX allergies_patient_idx ON allergies (patient_id);

CREATE TABLE medications (
    medication_id  uuid PRIMARY KEY,
    patient_id     uuid NOT NULL REFERENCES patients (patient_id),
    visit_id       uuid REFERENCES visits (visit_id),
    drug_code      text NOT NULL,
    drug_name      text NOT NULL,
    dose           text,
    route          text,
    frequency      text,
    prescriber_id  uuid,
    start_date     date NOT NULL,
    end_date       date,
    status         text NOT NULL DEFAULT 'active',
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX medications_patient_idx ON medications (patient_id);

CREATE TABLE doctor_notes (
    note_id          uuid PRIMARY KEY,
    visit_id         uuid NOT NULL REFERENCES visits (visit_id),
    patient_id       uuid NOT NULL REFERENCES patients (patient_id),
    author_staff_id  uuid,
    written_at       timestamptz NOT NULL,
    note_text        text NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX doctor_notes_visit_idx ON doctor_notes (visit_id);
"""


def upgrade() -> None:
    op.execute(DDL)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} REPLICA IDENTITY FULL")
    op.execute(f"CREATE PUBLICATION hospital_cdc FOR TABLE {', '.join(TABLES)}")


def downgrade() -> None:
    op.execute("DROP PUBLICATION IF EXISTS hospital_cdc")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
