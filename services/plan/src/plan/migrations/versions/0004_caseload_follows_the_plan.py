"""The caseload's plan_status for the episodes heard before it followed the plan: set from
where each plan stands (the plans read model, kept with the plan's events).

Before this, the caseload said ``evaluated`` from the evaluation on, and only a closure moved
it; an evaluation heard before the episode's open left it ``awaiting_evaluation``. From now
on the plan's events keep it (adapters/projections.py); this sets it once for the rows
written before. An episode evaluated before its open whose evaluation drafted nothing has
no plan row to read, and stays as it was.

Revision ID: 0004
Revises: 0003
"""

from kinetic_infra.db.migrations import execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# As caseload.status_of maps a plan's record: a draft is "evaluated".
REPAIR = """
UPDATE caseload AS c
   SET plan_status = CASE p.status WHEN 'draft' THEN 'evaluated' ELSE p.status END
  FROM plans AS p
 WHERE p.episode_id = c.episode_id AND p.tenant_id = c.tenant_id
   AND c.plan_status IS DISTINCT FROM CASE p.status WHEN 'draft' THEN 'evaluated'
                                                  ELSE p.status END;
"""


def upgrade() -> None:
    # Every organization's rows at once: the owner steps outside row-level security for this
    # one statement, inside the migration's transaction.
    execute_script(f"""
    ALTER TABLE caseload NO FORCE ROW LEVEL SECURITY;
    ALTER TABLE plans NO FORCE ROW LEVEL SECURITY;
    {REPAIR}
    ALTER TABLE plans FORCE ROW LEVEL SECURITY;
    ALTER TABLE caseload FORCE ROW LEVEL SECURITY;
    """)


def downgrade() -> None:
    pass  # the statuses set are the right ones for the code before this too
