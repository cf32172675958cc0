"""Platform tables and patient accounts.

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
    CREATE TABLE patient_accounts (
        patient_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        opened_at timestamptz NOT NULL,
        episodes integer NOT NULL CHECK (episodes >= 1),
        last_episode_id uuid NOT NULL,
        last_location_id uuid NOT NULL
    );
    CREATE INDEX patient_accounts_tenant ON patient_accounts (tenant_id, opened_at);
    """)


def downgrade() -> None:
    execute_script("DROP TABLE patient_accounts;")
    execute_script(PLATFORM_DROP)
