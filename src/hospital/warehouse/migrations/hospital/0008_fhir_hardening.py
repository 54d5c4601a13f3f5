"""FHIR hardening: quarantine detail, unresolved references, view versions in the skip key.

- ``fhir.resource.view_hash``: fingerprint of the ViewDefinitions of the resource's type at
  the time it was flattened. The loader skips a resource only when both its content hash and
  this fingerprint are unchanged, so a changed view re-flattens existing data.
- ``fhir.resource.full_url``: the ``fullUrl`` the resource arrived under, so that a
  ``urn:uuid:`` reference from another bundle can be resolved to it.
- ``fhir.unresolved_reference``: references (``urn:uuid:…``) that named no usable entry when
  their resource was loaded. The resource is kept (the reference as written, its flattened
  key column NULL) and rewritten when a resource with that ``fullUrl`` arrives.
- ``fhir.quarantine.stage``: where the entry was stopped (parse, flatten, load).

Revision ID: hospital_0008
Revises: hospital_0007
"""

from alembic import op

revision = "hospital_0008"
down_revision = "hospital_0007"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE fhir.resource ADD COLUMN view_hash text;
ALTER TABLE fhir.resource ADD COLUMN full_url text;
CREATE INDEX resource_full_url_idx ON fhir.resource (full_url) WHERE full_url IS NOT NULL;

CREATE TABLE fhir.unresolved_reference (
    resource_type  text NOT NULL,
    resource_id    text NOT NULL,
    reference      text NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resource_type, resource_id, reference)
);
CREATE INDEX unresolved_reference_reference_idx ON fhir.unresolved_reference (reference);

ALTER TABLE fhir.quarantine ADD COLUMN stage text;

-- Readable by analysts where that role exists (an external server may not have our roles).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'analyst') THEN
        GRANT SELECT ON fhir.unresolved_reference TO analyst;
    END IF;
END
$$;
"""

DOWNGRADE = """
ALTER TABLE fhir.quarantine DROP COLUMN stage;
DROP TABLE fhir.unresolved_reference;
DROP INDEX fhir.resource_full_url_idx;
ALTER TABLE fhir.resource DROP COLUMN full_url;
ALTER TABLE fhir.resource DROP COLUMN view_hash;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
