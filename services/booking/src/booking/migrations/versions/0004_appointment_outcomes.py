"""Checked-in and completed sessions keep holding their hour; cancelled and no-show ones
free it.

Revision ID: 0004
Revises: 0003
"""

from kinetic_infra.db.migrations import execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

HOLDING = "status IN ('booked', 'checked_in', 'completed')"


def _constraints(where: str) -> str:
    return f"""
    ALTER TABLE appointments DROP CONSTRAINT appointments_therapist_one_at_a_time;
    ALTER TABLE appointments DROP CONSTRAINT appointments_patient_one_at_a_time;
    ALTER TABLE appointments ADD CONSTRAINT appointments_therapist_one_at_a_time EXCLUDE USING
        gist (tenant_id WITH =, therapist_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
        WHERE ({where});
    ALTER TABLE appointments ADD CONSTRAINT appointments_patient_one_at_a_time EXCLUDE USING
        gist (tenant_id WITH =, patient_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
        WHERE ({where});
    """


def upgrade() -> None:
    execute_script(_constraints(HOLDING) + """
    ALTER TABLE appointments ADD COLUMN checked_in_at timestamptz;
    ALTER TABLE appointments ADD COLUMN finished_at timestamptz;
    """)


def downgrade() -> None:
    execute_script(_constraints("status = 'booked'") + """
    ALTER TABLE appointments DROP COLUMN checked_in_at;
    ALTER TABLE appointments DROP COLUMN finished_at;
    """)
