"""An appointment that replaces a no-show recorded in error: the patient did come, and the
front desk's day view shows which no-show the checked-in session stands for.

Revision ID: 0006
Revises: 0005
"""

from kinetic_infra.db.migrations import execute_script

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("ALTER TABLE appointments ADD COLUMN replaces uuid;")
