"""What may be disclosed: the latest contact details of each patient and the clinical notes
of each completed evaluation, kept from the restricted events, so a consent given later can
still disclose them.

Revision ID: 0006
Revises: 0005
"""

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.security import tenant_isolation

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    CREATE TABLE disclosable (
        data_class text NOT NULL,
        subject_id uuid NOT NULL,
        tenant_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        envelope jsonb NOT NULL,
        recorded_at timestamptz NOT NULL,
        PRIMARY KEY (data_class, subject_id)
    );
    CREATE INDEX disclosable_patient ON disclosable (patient_id);
    """)
    execute_script(tenant_isolation("disclosable"))


def downgrade() -> None:
    execute_script("DROP TABLE disclosable;")
