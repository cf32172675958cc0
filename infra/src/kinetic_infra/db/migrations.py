"""Alembic, driven from code: each service keeps its own ``migrations/`` folder and its
``env.py`` calls ``run_env``. Migrations run as their own process role (``migrate``), the
same step a Kubernetes Job runs before the service starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from kinetic_infra.db.database import sqlalchemy_url


def alembic_config(migrations: Path, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(migrations: Path, database_url: str, revision: str = "head",
            app_role: str = "") -> None:
    """Migrate as the owner, then (re)grant the application role its rights."""
    command.upgrade(alembic_config(migrations, database_url), revision)
    if app_role:
        asyncio.run(_grant(database_url, app_role))


async def _grant(database_url: str, app_role: str) -> None:
    import asyncpg

    from kinetic_infra.db.database import asyncpg_dsn
    from kinetic_infra.db.security import app_role_grants

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(app_role_grants(app_role))
    finally:
        await conn.close()


def run_env(context) -> None:  # type: ignore[no-untyped-def]  # alembic's context module
    """The body of every service's migrations/env.py (online mode, asyncpg)."""

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=None,
                          transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = async_engine_from_config(
            context.config.get_section(context.config.config_ini_section, {}),
            prefix="sqlalchemy.", poolclass=pool.NullPool,
        )
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())


def split_sql(script: str) -> list[str]:
    """Split a DDL script into statements (asyncpg prepares one statement at a time).
    Semicolons inside dollar-quoted bodies ($$ … $$, e.g. functions) do not split."""
    statements, current, in_dollar = [], [], False
    for line in script.splitlines():
        if line.count("$$") % 2 == 1:
            in_dollar = not in_dollar
        current.append(line)
        if not in_dollar and line.rstrip().endswith(";"):
            statement = "\n".join(current).strip()
            if statement.rstrip(";").strip():
                statements.append(statement)
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return statements


def execute_script(script: str) -> None:
    """Run a multi-statement DDL script inside the current Alembic migration."""
    from alembic import op

    for statement in split_sql(script):
        op.execute(statement)
