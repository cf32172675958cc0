"""The Idempotency-Key of a partner's latest secret rotation: the same request again (a
retry, a reload of the page) answers with the secret it issued instead of rotating twice,
which would end the secret the partner still signs with before the overlap.

Revision ID: 0007
Revises: 0006
"""

from kinetic_infra.db.migrations import execute_script

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("ALTER TABLE partners ADD COLUMN rotation_key uuid;")


def downgrade() -> None:
    execute_script("ALTER TABLE partners DROP COLUMN rotation_key;")
