"""A delivery not sent yet when the patient withdrew data sharing with the partner is not
sent: the delivery log says ``withdrawn``.

Revision ID: 0008
Revises: 0007
"""

from kinetic_infra.db.migrations import execute_script

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
    ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
        CHECK (status IN ('pending', 'retrying', 'delivered', 'dead', 'withdrawn'));
    """)


def downgrade() -> None:
    execute_script("""
    UPDATE deliveries SET status = 'dead' WHERE status = 'withdrawn';
    ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
    ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
        CHECK (status IN ('pending', 'retrying', 'delivered', 'dead'));
    """)
