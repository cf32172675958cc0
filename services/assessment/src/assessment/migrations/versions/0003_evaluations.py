"""Evaluations: one row per initial evaluation or reassessment and where it stands.

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
    CREATE TABLE evaluations (
        evaluation_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('initial', 'reassessment')),
        episode_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        location_id uuid NOT NULL,
        appointment_id uuid,
        therapist_id uuid,
        baseline_evaluation_id uuid,
        status text NOT NULL,
        opened_at timestamptz NOT NULL,
        closed_at timestamptz
    );
    CREATE INDEX evaluations_episode ON evaluations (tenant_id, episode_id, opened_at);
    -- At most one open draft of each kind per episode, whoever opens it (a booking, plan's
    -- reassessment-due, or the therapist): a second one is the same draft asked for twice.
    CREATE UNIQUE INDEX evaluations_one_draft ON evaluations (tenant_id, episode_id, kind)
        WHERE status = 'draft';
    """)
    execute_script(tenant_isolation("evaluations"))


def downgrade() -> None:
    op.execute("DROP TABLE evaluations")
