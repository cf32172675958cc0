"""Opening hours, closures, working hours and time off; appointment types; consents; the
waitlist; reminders; closed episodes; and what booking keeps of plan's events (the plans'
session frequency and the reassessments due) for the front desk's "to book" list.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.security import tenant_isolation

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("location_closures", "therapist_hours", "therapist_time_off", "appointment_types",
          "patient_consents", "waitlist", "episode_plans", "reassessments_due")


def upgrade() -> None:
    execute_script("""
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    ALTER TABLE locations ADD COLUMN opening_hours jsonb;
    ALTER TABLE therapists ADD COLUMN display_name text;
    ALTER TABLE episodes ADD COLUMN closed_at timestamptz;
    ALTER TABLE appointments ADD COLUMN reminded_at timestamptz;
    CREATE INDEX appointments_episode ON appointments (tenant_id, episode_id, starts_at);
    CREATE INDEX appointments_therapist_time ON appointments (tenant_id, therapist_id, starts_at);
    CREATE INDEX patients_name_trgm ON patients
        USING gin ((lower(given_name || ' ' || family_name)) gin_trgm_ops);
    CREATE INDEX patients_identity ON patients
        (tenant_id, lower(given_name), lower(family_name), date_of_birth);
    CREATE TABLE location_closures (
        closure_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        location_id uuid NOT NULL,
        first_day date NOT NULL,
        last_day date NOT NULL CHECK (last_day >= first_day),
        reason text NOT NULL
    );
    CREATE TABLE therapist_hours (
        therapist_id uuid NOT NULL,
        location_id uuid NOT NULL,
        tenant_id uuid NOT NULL,
        working_hours jsonb NOT NULL,
        PRIMARY KEY (therapist_id, location_id)
    );
    CREATE TABLE therapist_time_off (
        time_off_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        therapist_id uuid NOT NULL,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL CHECK (ends_at > starts_at)
    );
    CREATE INDEX therapist_time_off_when ON therapist_time_off (tenant_id, therapist_id, starts_at);
    CREATE TABLE appointment_types (
        tenant_id uuid NOT NULL,
        appointment_type text NOT NULL,
        minutes integer NOT NULL,
        PRIMARY KEY (tenant_id, appointment_type)
    );
    CREATE TABLE patient_consents (
        patient_id uuid NOT NULL,
        consent text NOT NULL,
        partner text NOT NULL DEFAULT '',
        tenant_id uuid NOT NULL,
        granted boolean NOT NULL,
        version text NOT NULL,
        recorded_at timestamptz NOT NULL,
        PRIMARY KEY (patient_id, consent, partner)
    );
    CREATE TABLE waitlist (
        entry_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        location_id uuid NOT NULL,
        therapist_id uuid,
        appointment_type text NOT NULL,
        wants_before timestamptz,
        joined_at timestamptz NOT NULL,
        status text NOT NULL,
        offered_therapist_id uuid,
        offered_starts_at timestamptz,
        offered_at timestamptz,
        left_at timestamptz
    );
    CREATE INDEX waitlist_waiting ON waitlist (tenant_id, location_id, joined_at)
        WHERE status = 'waiting';
    -- Kept from plan's events by booking's consumer (not a projection of booking's events).
    CREATE TABLE episode_plans (
        episode_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        plan_id uuid NOT NULL,
        sessions_per_week double precision NOT NULL,
        expected_sessions integer NOT NULL,
        target_date date NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE TABLE reassessments_due (
        episode_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        reason text NOT NULL,
        due_by date NOT NULL,
        raised_at timestamptz NOT NULL
    );
    """)
    execute_script(tenant_isolation(*TABLES))


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE {table}")
    execute_script("""
    DROP INDEX patients_name_trgm; DROP INDEX patients_identity;
    DROP INDEX appointments_episode; DROP INDEX appointments_therapist_time;
    ALTER TABLE locations DROP COLUMN opening_hours;
    ALTER TABLE therapists DROP COLUMN display_name;
    ALTER TABLE episodes DROP COLUMN closed_at;
    ALTER TABLE appointments DROP COLUMN reminded_at;
    """)
