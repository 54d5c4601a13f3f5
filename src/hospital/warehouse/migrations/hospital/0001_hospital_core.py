"""Hospital core tables: the hospital's own analytics database.

Mirrors of EHR tables (patients, visits, diagnoses, doctor_notes, medications, allergies) carry no
foreign keys: CDC delivers each table's topic independently, so a child row may land before its
parent. Operational tables (departments, staff, rosters, admissions, pharmacy orders, transfers)
are fed by the batch and stream paths.

Revision ID: hospital_0001
Revises:
"""

from alembic import op

revision = "hospital_0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    "departments",
    "staff",
    "staff_assignments",
    "patients",
    "admissions",
    "visits",
    "diagnoses",
    "doctor_notes",
    "medications",
    "allergies",
    "pharmacy_orders",
    "transfers",
)

DDL = """
CREATE TABLE departments (
    department_code  text PRIMARY KEY,
    name             text NOT NULL,
    kind             text NOT NULL,
    bed_capacity     integer NOT NULL CHECK (bed_capacity >= 0),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE staff (
    staff_id          uuid PRIMARY KEY,
    national_id       char(13) NOT NULL,
    first_name        text NOT NULL,
    last_name         text NOT NULL,
    sex               char(1) NOT NULL,
    birth_date        date NOT NULL,
    role              text NOT NULL,
    specialty         text,
    department_code   text REFERENCES departments (department_code),
    experience_level  text,
    hire_date         date NOT NULL,
    retire_date       date,
    status            text NOT NULL,
    replaced_by       uuid REFERENCES staff (staff_id),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE staff_assignments (
    work_date        date NOT NULL,
    staff_id         uuid NOT NULL REFERENCES staff (staff_id),
    shift            text NOT NULL,
    department_code  text NOT NULL REFERENCES departments (department_code),
    PRIMARY KEY (work_date, staff_id, shift)
);

CREATE TABLE patients (
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

CREATE TABLE admissions (
    admission_id           uuid PRIMARY KEY,
    patient_id             uuid NOT NULL,
    visit_id               uuid,
    department_code        text NOT NULL,
    bed_number             integer,
    admitted_at            timestamptz NOT NULL,
    discharged_at          timestamptz,
    discharge_disposition  text,
    status                 text NOT NULL,
    updated_at             timestamptz NOT NULL
);

CREATE TABLE visits (
    visit_id           uuid PRIMARY KEY,
    patient_id         uuid NOT NULL,
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

CREATE TABLE diagnoses (
    diagnosis_id  uuid PRIMARY KEY,
    visit_id      uuid NOT NULL,
    patient_id    uuid NOT NULL,
    icd10_code    text NOT NULL,
    description   text NOT NULL,
    is_primary    boolean NOT NULL,
    diagnosed_at  timestamptz NOT NULL,
    status        text NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE doctor_notes (
    note_id          uuid PRIMARY KEY,
    visit_id         uuid NOT NULL,
    patient_id       uuid NOT NULL,
    author_staff_id  uuid,
    written_at       timestamptz NOT NULL,
    note_text        text NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE TABLE medications (
    medication_id  uuid PRIMARY KEY,
    patient_id     uuid NOT NULL,
    visit_id       uuid,
    drug_code      text NOT NULL,
    drug_name      text NOT NULL,
    dose           text,
    route          text,
    frequency      text,
    prescriber_id  uuid,
    start_date     date NOT NULL,
    end_date       date,
    status         text NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE TABLE allergies (
    allergy_id   uuid PRIMARY KEY,
    patient_id   uuid NOT NULL,
    substance    text NOT NULL,
    reaction     text,
    severity     text,
    status       text NOT NULL,
    recorded_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE pharmacy_orders (
    order_id         uuid PRIMARY KEY,
    patient_id       uuid NOT NULL,
    medication_id    uuid,
    drug_code        text NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    ordered_by       uuid,
    ordered_at       timestamptz NOT NULL,
    dispensed_at     timestamptz,
    status           text NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE TABLE transfers (
    transfer_id      uuid PRIMARY KEY,
    patient_id       uuid NOT NULL,
    admission_id     uuid,
    transfer_type    text NOT NULL,
    from_department  text,
    to_department    text,
    from_facility    text,
    to_facility      text,
    reason           text,
    transferred_at   timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX transfers_time_idx ON transfers (transferred_at);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
