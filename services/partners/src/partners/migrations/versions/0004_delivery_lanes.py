"""Delivery lanes: a partner's deliveries keep their order within an episode (or a patient,
or the organization's other events), and different episodes go out side by side.

Revision ID: 0004
Revises: 0003
"""

from kinetic_infra.db.migrations import execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE deliveries ADD COLUMN lane text NOT NULL DEFAULT '';
    ALTER TABLE dispatch_queue ADD COLUMN lane text NOT NULL DEFAULT '';
    DROP INDEX dispatch_queue_partner;
    CREATE INDEX dispatch_queue_lane ON dispatch_queue (partner_id, lane, delivery_id);
    """)


def downgrade() -> None:
    execute_script("""
    DROP INDEX dispatch_queue_lane;
    CREATE INDEX dispatch_queue_partner ON dispatch_queue (partner_id, delivery_id);
    ALTER TABLE dispatch_queue DROP COLUMN lane;
    ALTER TABLE deliveries DROP COLUMN lane;
    """)
