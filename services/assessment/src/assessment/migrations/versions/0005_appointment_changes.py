"""What booking said of an appointment after booking it (cancelled; for a reassessment,
moved), remembered so that a booking delivered after it is read as booking now has it:
replicas read booking's stream side by side, and a booking that overtook its episode comes
back later (application/evaluations.py). Starts empty: the cancellations and moves heard
before this already changed the reassessments waiting for their baseline.

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


def upgrade() -> None:
    execute_script("""
    -- cancelled_at once cancelled (final in booking); the latest move's therapist and time.
    CREATE TABLE appointment_changes (
        tenant_id uuid NOT NULL,
        appointment_id uuid NOT NULL,
        cancelled_at timestamptz,
        therapist_id uuid,
        starts_at timestamptz,
        rescheduled_at timestamptz,
        PRIMARY KEY (tenant_id, appointment_id)
    );
    """)
    execute_script(tenant_isolation("appointment_changes"))


def downgrade() -> None:
    op.execute("DROP TABLE appointment_changes")
