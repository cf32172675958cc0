from alembic import context

from kinetic_infra.db.migrations import run_env

run_env(context)
