"""Platform tables and the caseload read model.

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
    CREATE TABLE caseload (
        episode_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        location_id uuid NOT NULL,
        symptom_site text NOT NULL,
        plan_status text NOT NULL,
        workflow_id text NOT NULL,
        opened_at timestamptz NOT NULL
    );
    CREATE INDEX caseload_tenant ON caseload (tenant_id, opened_at);
    """)


def downgrade() -> None:
    execute_script("DROP TABLE caseload;")
    execute_script(PLATFORM_DROP)
