"""Security: row-level security on every tenant table (locations, patients, episodes, events, dead
letters) and the append-only, hash-chained audit log.

Revision ID: 0002
Revises: 0001
"""

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.security import security_downgrade, security_migration

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT_TABLES = ("locations", "patients", "episodes",)


def upgrade() -> None:
    execute_script(security_migration(*TENANT_TABLES))


def downgrade() -> None:
    execute_script(security_downgrade(*TENANT_TABLES))
