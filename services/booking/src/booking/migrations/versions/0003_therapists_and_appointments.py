"""Therapists, appointments (no double booking, enforced by exclusion constraints) and each
location's late-cancellation window.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.security import tenant_isolation

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    CREATE EXTENSION IF NOT EXISTS btree_gist;
    ALTER TABLE locations ADD COLUMN late_cancel_hours integer NOT NULL DEFAULT 24;
    CREATE TABLE therapists (
        therapist_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        location_ids uuid[] NOT NULL,
        registered_at timestamptz NOT NULL
    );
    CREATE TABLE appointments (
        appointment_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        therapist_id uuid NOT NULL,
        location_id uuid NOT NULL,
        episode_id uuid,
        appointment_type text NOT NULL,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
        status text NOT NULL,
        late_cancel boolean,
        booked_at timestamptz NOT NULL,
        cancelled_at timestamptz,
        CONSTRAINT appointments_therapist_one_at_a_time EXCLUDE USING gist (
            tenant_id WITH =, therapist_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
            WHERE (status = 'booked'),
        CONSTRAINT appointments_patient_one_at_a_time EXCLUDE USING gist (
            tenant_id WITH =, patient_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
            WHERE (status = 'booked')
    );
    CREATE INDEX appointments_location_day ON appointments (tenant_id, location_id, starts_at);
    """)
    execute_script(tenant_isolation("therapists", "appointments"))


def downgrade() -> None:
    op.execute("DROP TABLE appointments")
    op.execute("DROP TABLE therapists")
    op.execute("ALTER TABLE locations DROP COLUMN late_cancel_hours")
