"""Platform tables (events, outbox, inbox, dead letters) and the front-desk read models.

Revision ID: 0001
Revises:
"""

from alembic import op

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.schema import PLATFORM_DDL, PLATFORM_DROP

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(PLATFORM_DDL)
    execute_script("""
    CREATE TABLE locations (
        location_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        name text NOT NULL,
        timezone text NOT NULL,
        registered_at timestamptz NOT NULL
    );
    CREATE INDEX locations_tenant ON locations (tenant_id);
    CREATE TABLE patients (
        patient_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        home_location_id uuid NOT NULL,
        given_name text NOT NULL,
        family_name text NOT NULL,
        date_of_birth date NOT NULL,
        email text,
        phone text,
        preferred_language text,
        registered_at timestamptz NOT NULL
    );
    CREATE INDEX patients_tenant ON patients (tenant_id);
    CREATE TABLE episodes (
        episode_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        location_id uuid NOT NULL,
        reason text NOT NULL,
        symptom_site text NOT NULL,
        goal text,
        goal_target_date date,
        referral boolean NOT NULL,
        status text NOT NULL,
        opened_at timestamptz NOT NULL
    );
    CREATE INDEX episodes_tenant ON episodes (tenant_id);
    CREATE INDEX episodes_patient ON episodes (patient_id);
    """)


def downgrade() -> None:
    execute_script("DROP TABLE episodes, patients, locations;")
    execute_script(PLATFORM_DROP)
