"""The latest reassessment plan resolved per episode, kept from plan's events by booking's
consumer: a reassessment due that was raised no later than it is off the "to book" list,
even when the resolution was heard before the due it answers.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.security import tenant_isolation

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    CREATE TABLE reassessments_resolved (
        episode_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        resolved_at timestamptz NOT NULL
    );
    """)
    execute_script(tenant_isolation("reassessments_resolved"))


def downgrade() -> None:
    op.execute("DROP TABLE reassessments_resolved")
