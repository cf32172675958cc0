"""Reassessments booked before their episode's baseline, and where each episode's
evaluation stands (kept from now on by the evaluations projection, set here for the
episodes evaluated before).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.security import tenant_isolation

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    -- A reassessment booked while its episode has no completed initial evaluation (booked at
    -- intake with the assessment): its draft is opened when the initial evaluation completes.
    CREATE TABLE reassessments_awaiting_baseline (
        appointment_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        episode_id uuid NOT NULL,
        therapist_id uuid NOT NULL,
        starts_at timestamptz NOT NULL,
        correlation_id uuid,
        causation_id uuid NOT NULL
    );
    CREATE INDEX reassessments_awaiting_baseline_episode
        ON reassessments_awaiting_baseline (tenant_id, episode_id);
    """)
    execute_script(tenant_isolation("reassessments_awaiting_baseline"))
    # Every organization's episodes at once: the owner steps outside row-level security for
    # this one statement, inside the migration's transaction.
    execute_script("""
    ALTER TABLE episodes NO FORCE ROW LEVEL SECURITY;
    ALTER TABLE evaluations NO FORCE ROW LEVEL SECURITY;
    UPDATE episodes AS ep SET evaluation_status = COALESCE((
        SELECT CASE WHEN ev.status = 'referred_out' THEN 'referred_out'
                    WHEN ev.status = 'draft' AND ev.kind = 'initial'
                        THEN 'initial_evaluation_in_progress'
                    WHEN ev.status = 'draft' THEN 'reassessment_in_progress'
                    WHEN ev.kind = 'initial' THEN 'evaluated'
                    ELSE 'reassessed' END
        FROM evaluations ev WHERE ev.episode_id = ep.episode_id
        ORDER BY ev.status = 'draft' DESC, ev.closed_at DESC NULLS LAST, ev.opened_at DESC,
                 ev.evaluation_id DESC
        LIMIT 1), 'awaiting_initial_evaluation');
    ALTER TABLE evaluations FORCE ROW LEVEL SECURITY;
    ALTER TABLE episodes FORCE ROW LEVEL SECURITY;
    """)


def downgrade() -> None:
    op.execute("DROP TABLE reassessments_awaiting_baseline")
