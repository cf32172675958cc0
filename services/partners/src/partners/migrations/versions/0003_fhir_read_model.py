"""The FHIR read model: each partner's resources, built from the events it receives, and the
key its EHR reads them with (only its SHA-256 is kept).

Revision ID: 0003
Revises: 0002
"""

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.security import tenant_isolation

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE partners ADD COLUMN fhir_key_sha256 text;
    CREATE TABLE fhir_resources (
        partner_id uuid NOT NULL,
        resource_type text NOT NULL,
        id text NOT NULL,
        tenant_id uuid NOT NULL,
        patient_id uuid,
        version_id integer NOT NULL,
        body jsonb NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (partner_id, resource_type, id)
    );
    CREATE INDEX fhir_resources_patient ON fhir_resources (partner_id, patient_id, resource_type);
    """)
    execute_script(tenant_isolation("fhir_resources"))


def downgrade() -> None:
    execute_script("DROP TABLE fhir_resources; ALTER TABLE partners DROP COLUMN fhir_key_sha256;")
