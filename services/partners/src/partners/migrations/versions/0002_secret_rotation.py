"""Secret rotation with overlap: the previous secret keeps signing until a time.

Revision ID: 0002
Revises: 0001
"""

from kinetic_infra.db.migrations import execute_script

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE partners ADD COLUMN previous_secret text;
    ALTER TABLE partners ADD COLUMN previous_until timestamptz;
    """)


def downgrade() -> None:
    execute_script("ALTER TABLE partners DROP COLUMN previous_secret, "
                   "DROP COLUMN previous_until;")
