"""FHIR path: the ``fhir`` schema of the hospital database.

- ``fhir.resource``: every ingested resource as received (references resolved to ``Type/id``),
  JSONB, with its ``meta.versionId`` and a SHA-256 content hash: re-ingesting identical input
  is detected by the hash and changes nothing.
- One table per shipped ViewDefinition (``src/hospital/fhir/views/*.json``), same columns in
  the same order; the first column is the resource key the loader replaces rows by. Child
  tables (``patient_name`` …) are keyed by (patient_id, index).
- ``fhir.quarantine``: entries that could not be loaded, with file, entry index and reason.

No foreign keys between flattened tables: a bundle may reference resources that arrive later
(or never: conditional references to practitioners and organisations).

Revision ID: hospital_0002
Revises: hospital_0001
"""

from alembic import op

from hospital.warehouse.roles import if_role_exists

revision = "hospital_0002"
down_revision = "hospital_0001"
branch_labels = None
depends_on = None

VIEW_TABLES = (
    "patient",
    "patient_name",
    "patient_address",
    "patient_identifier",
    "encounter",
    "condition",
    "observation",
    "medication_request",
    "allergy_intolerance",
    "procedure",
    "immunization",
    "diagnostic_report",
    "claim",
)

DDL = """
CREATE SCHEMA fhir;

CREATE TABLE fhir.resource (
    resource_type  text NOT NULL,
    id             text NOT NULL,
    version_id     text,
    content_hash   text NOT NULL,
    resource       jsonb NOT NULL,
    source_file    text,
    entry_index    integer,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resource_type, id)
);

CREATE TABLE fhir.quarantine (
    quarantine_id   bigserial PRIMARY KEY,
    source_file     text NOT NULL,
    entry_index     integer,
    resource_type   text,
    resource_id     text,
    reason          text NOT NULL,
    payload         text,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_source_idx ON fhir.quarantine (source_file);

CREATE TABLE fhir.patient (
    id              text NOT NULL,
    version_id      text,
    mrn             text,
    family_name     text,
    given_name      text,
    gender          text,
    birth_date      date,
    deceased_at     timestamptz,
    deceased        boolean,
    marital_status  text,
    race            text,
    ethnicity       text,
    birth_sex       text,
    language        text,
    phone           text,
    PRIMARY KEY (id)
);

CREATE TABLE fhir.patient_name (
    patient_id    text NOT NULL,
    name_index    integer NOT NULL,
    use           text,
    family        text,
    given         text,
    prefix        text,
    suffix        text,
    text          text,
    period_start  timestamptz,
    period_end    timestamptz,
    PRIMARY KEY (patient_id, name_index)
);

CREATE TABLE fhir.patient_address (
    patient_id     text NOT NULL,
    address_index  integer NOT NULL,
    use            text,
    line           text,
    city           text,
    district       text,
    state          text,
    postal_code    text,
    country        text,
    latitude       numeric,
    longitude      numeric,
    PRIMARY KEY (patient_id, address_index)
);

CREATE TABLE fhir.patient_identifier (
    patient_id        text NOT NULL,
    identifier_index  integer NOT NULL,
    use               text,
    type_code         text,
    system            text,
    value             text,
    PRIMARY KEY (patient_id, identifier_index)
);

CREATE TABLE fhir.encounter (
    id               text NOT NULL,
    version_id       text,
    patient_id       text,
    status           text,
    class_code       text,
    type_system      text,
    type_code        text,
    type_display     text,
    practitioner_id  text,
    location_id      text,
    organization_id  text,
    period_start     timestamptz,
    period_end       timestamptz,
    reason_code      text,
    reason_display   text,
    PRIMARY KEY (id)
);

CREATE INDEX encounter_patient_idx ON fhir.encounter (patient_id);

CREATE TABLE fhir.condition (
    id                   text NOT NULL,
    version_id           text,
    patient_id           text,
    encounter_id         text,
    clinical_status      text,
    verification_status  text,
    category             text,
    code_system          text,
    code_code            text,
    code_display         text,
    code_text            text,
    onset_at             timestamptz,
    abatement_at         timestamptz,
    recorded_at          timestamptz,
    PRIMARY KEY (id)
);

CREATE INDEX condition_patient_idx ON fhir.condition (patient_id);

CREATE TABLE fhir.observation (
    id              text NOT NULL,
    version_id      text,
    patient_id      text,
    encounter_id    text,
    status          text,
    category        text,
    code_system     text,
    code_code       text,
    code_display    text,
    value_quantity  numeric,
    value_unit      text,
    value_code      text,
    value_display   text,
    value_string    text,
    effective_at    timestamptz,
    issued_at       timestamptz,
    PRIMARY KEY (id)
);

CREATE INDEX observation_patient_idx ON fhir.observation (patient_id);

CREATE TABLE fhir.medication_request (
    id                   text NOT NULL,
    version_id           text,
    patient_id           text,
    encounter_id         text,
    status               text,
    intent               text,
    medication_system    text,
    medication_code      text,
    medication_display   text,
    medication_id        text,
    requester_id         text,
    authored_at          timestamptz,
    reason_reference_id  text,
    dosage_text          text,
    as_needed            boolean,
    PRIMARY KEY (id)
);

CREATE INDEX medication_request_patient_idx ON fhir.medication_request (patient_id);

CREATE TABLE fhir.allergy_intolerance (
    id                   text NOT NULL,
    version_id           text,
    patient_id           text,
    clinical_status      text,
    verification_status  text,
    type                 text,
    category             text,
    criticality          text,
    code_system          text,
    code_code            text,
    code_display         text,
    code_text            text,
    recorded_at          timestamptz,
    reaction             text,
    reaction_severity    text,
    PRIMARY KEY (id)
);

CREATE INDEX allergy_intolerance_patient_idx ON fhir.allergy_intolerance (patient_id);

CREATE TABLE fhir.procedure (
    id                   text NOT NULL,
    version_id           text,
    patient_id           text,
    encounter_id         text,
    status               text,
    code_system          text,
    code_code            text,
    code_display         text,
    performed_start      timestamptz,
    performed_end        timestamptz,
    performed_at         timestamptz,
    location_id          text,
    reason_reference_id  text,
    PRIMARY KEY (id)
);

CREATE INDEX procedure_patient_idx ON fhir.procedure (patient_id);

CREATE TABLE fhir.immunization (
    id               text NOT NULL,
    version_id       text,
    patient_id       text,
    encounter_id     text,
    status           text,
    vaccine_system   text,
    vaccine_code     text,
    vaccine_display  text,
    occurrence_at    timestamptz,
    primary_source   boolean,
    location_id      text,
    PRIMARY KEY (id)
);

CREATE INDEX immunization_patient_idx ON fhir.immunization (patient_id);

CREATE TABLE fhir.diagnostic_report (
    id            text NOT NULL,
    version_id    text,
    patient_id    text,
    encounter_id  text,
    status        text,
    category      text,
    code_system   text,
    code_code     text,
    code_display  text,
    effective_at  timestamptz,
    issued_at     timestamptz,
    performer_id  text,
    result_count  integer,
    PRIMARY KEY (id)
);

CREATE INDEX diagnostic_report_patient_idx ON fhir.diagnostic_report (patient_id);

CREATE TABLE fhir.claim (
    id                 text NOT NULL,
    version_id         text,
    patient_id         text,
    status             text,
    use                text,
    type_code          text,
    billable_start     timestamptz,
    billable_end       timestamptz,
    created_at         timestamptz,
    provider_id        text,
    priority           text,
    insurance_display  text,
    total_value        numeric,
    total_currency     text,
    item_count         integer,
    PRIMARY KEY (id)
);

CREATE INDEX claim_patient_idx ON fhir.claim (patient_id);

"""

# Only where the role exists: an external server need not have our `analyst`.
GRANTS = if_role_exists(
    "analyst",
    """
GRANT USAGE ON SCHEMA fhir TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA fhir TO analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA fhir GRANT SELECT ON TABLES TO analyst;
""",
)


def upgrade() -> None:
    op.execute(DDL)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute(
        if_role_exists(
            "analyst",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA fhir REVOKE SELECT ON TABLES FROM analyst;",
        )
    )
    op.execute("DROP SCHEMA IF EXISTS fhir CASCADE")
