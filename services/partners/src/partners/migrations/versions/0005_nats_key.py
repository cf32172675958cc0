"""A partner's NATS key: the NATS server's auth callout admits a partner system that presents
it, with permissions on its own feed only (only the key's digest is stored).

Revision ID: 0005
Revises: 0004
"""

from kinetic_infra.db.migrations import execute_script

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("ALTER TABLE partners ADD COLUMN nats_key_sha256 text;")


def downgrade() -> None:
    execute_script("ALTER TABLE partners DROP COLUMN nats_key_sha256;")
