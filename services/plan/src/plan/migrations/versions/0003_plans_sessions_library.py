"""Plans, completed sessions and the organization's exercise library.

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

TABLES = ("plans", "logged_sessions", "sessions", "exercises")


def upgrade() -> None:
    execute_script("""
    -- Where each episode's plan stands, kept with its events (same transaction): what the
    -- caseload shows as due without reading every plan's stream.
    CREATE TABLE plans (
        plan_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        episode_id uuid NOT NULL UNIQUE,
        patient_id uuid NOT NULL,
        location_id uuid NOT NULL,
        status text NOT NULL CHECK (status IN ('draft', 'active', 'discharged')),
        stage text NOT NULL,
        stage_position integer NOT NULL,
        revision integer NOT NULL,
        reassessment_due text,
        overdue_milestones text[] NOT NULL DEFAULT '{}',
        sessions_logged integer NOT NULL DEFAULT 0,
        stale_since date,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX plans_tenant ON plans (tenant_id, location_id);
    CREATE TABLE logged_sessions (
        appointment_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        plan_id uuid NOT NULL,
        session_number integer NOT NULL,
        logged_at timestamptz NOT NULL
    );
    -- Completed sessions (booking's appointment.completed): the episode's session count and
    -- the treatment sessions still to log.
    CREATE TABLE sessions (
        appointment_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        episode_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        location_id uuid NOT NULL,
        therapist_id uuid NOT NULL,
        appointment_type text NOT NULL,
        starts_at timestamptz NOT NULL,
        completed_at timestamptz NOT NULL,
        logged_at timestamptz
    );
    CREATE INDEX sessions_episode ON sessions (tenant_id, episode_id, starts_at);
    -- An organization's own exercises, and its versions of seeded ones.
    CREATE TABLE exercises (
        tenant_id uuid NOT NULL,
        code text NOT NULL,
        exercise jsonb NOT NULL,
        added_by uuid NOT NULL,
        added_at timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, code)
    );
    """)
    execute_script(tenant_isolation(*TABLES))


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE {table}")
