"""Who an invoice is for: each patient's name and date of birth, from booking's restricted
contact details (nothing else of them), for the documents billing prints.

Revision ID: 0004
Revises: 0003
"""

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.security import tenant_isolation

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    CREATE TABLE billing_patients (
        patient_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        given_name text NOT NULL,
        family_name text NOT NULL,
        date_of_birth date NOT NULL,
        recorded_at timestamptz NOT NULL
    );
    """)
    execute_script(tenant_isolation("billing_patients"))


def downgrade() -> None:
    execute_script("DROP TABLE billing_patients;")
