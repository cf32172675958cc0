"""Completions booking reversed, remembered so that a completion delivered after its
reversal (replicas read side by side; a failed delivery comes back seconds later) records no
session (adapters/sessions.py). Starts empty: a session recorded before this from a
completion heard after its reversal cannot be told apart here (only booking's stream knows
the order) and stays until removed by hand.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.security import tenant_isolation

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    CREATE TABLE reversed_completions (
        tenant_id uuid NOT NULL,
        appointment_id uuid NOT NULL,
        reversed_at timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, appointment_id)
    );
    """)
    execute_script(tenant_isolation("reversed_completions"))


def downgrade() -> None:
    op.execute("DROP TABLE reversed_completions")
