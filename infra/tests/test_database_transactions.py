"""``Database.transaction`` on the real PostgreSQL: what a block writes commits only when it
ends normally, the organization it is scoped to ends with it, and a pooled connection is
never handed out inside a transaction."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from kinetic_infra.db.database import TENANT_SETTING, Database, TransactionAbortedError


class Refused(Exception):
    pass


@pytest.fixture
async def db(scratch_dsn: str):
    database = Database(scratch_dsn, pool_size=1, max_overflow=0)  # one connection, reused
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE notes (body text NOT NULL)"))
    yield database
    await database.dispose()


async def notes(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(text("SELECT body FROM notes ORDER BY body"))).scalars())


async def test_a_block_that_raises_writes_nothing_and_its_connection_comes_back_clean(db):
    with pytest.raises(Refused):
        async with db.transaction(uuid.uuid4()) as conn:
            await conn.execute(text("INSERT INTO notes VALUES ('lost')"))
            raise Refused
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO notes VALUES ('kept')"))
    assert await notes(db) == ["kept"]


async def test_a_failed_statement_rolls_the_block_back_and_the_next_block_works(db):
    with pytest.raises(Exception, match="null value"):
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO notes VALUES ('first')"))
            await conn.execute(text("INSERT INTO notes VALUES (NULL)"))
    assert await notes(db) == []


async def test_the_organization_is_set_for_the_block_only(db):
    tenant = uuid.uuid4()
    setting = text(f"SELECT current_setting('{TENANT_SETTING}', true)")
    async with db.transaction(tenant) as conn:
        assert await conn.scalar(setting) == str(tenant)
    async with db.transaction() as conn:  # the same pooled connection
        assert await conn.scalar(setting) in (None, "")


async def test_a_read_only_block_refuses_to_write(db):
    with pytest.raises(Exception, match="read-only transaction"):
        async with db.read(uuid.uuid4()) as conn:
            await conn.execute(text("INSERT INTO notes VALUES ('no')"))
    assert await notes(db) == []


async def test_blocks_naming_the_same_advisory_lock_run_one_after_another(scratch_dsn: str):
    database = Database(scratch_dsn, pool_size=8)
    try:
        async with database.transaction() as conn:
            await conn.execute(text("CREATE TABLE counter (n int NOT NULL)"))
            await conn.execute(text("INSERT INTO counter VALUES (0)"))

        async def increment() -> None:
            # Read, then write what was read plus one: without the lock, two blocks would
            # read the same value and one increment would be lost.
            async with database.transaction(advisory_lock="counter's lock") as conn:
                n = await conn.scalar(text("SELECT n FROM counter"))
                await asyncio.sleep(0.01)
                await conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

        await asyncio.gather(*(increment() for _ in range(20)))
        async with database.read() as conn:
            assert await conn.scalar(text("SELECT n FROM counter")) == 20
    finally:
        await database.dispose()


async def test_a_block_that_swallows_a_failed_statement_is_told_nothing_committed(db):
    with pytest.raises(TransactionAbortedError):
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO notes VALUES ('before')"))
            try:
                await conn.execute(text("INSERT INTO notes VALUES (NULL)"))
            except Exception:  # noqa: BLE001 - the mistake this guards against
                pass
    assert await notes(db) == []


async def test_a_cancelled_block_is_rolled_back_and_its_connection_reused_clean(db):
    started = asyncio.Event()

    async def slow_writer() -> None:
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO notes VALUES ('abandoned')"))
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(slow_writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The pool's only connection: had the abandoned transaction stayed open on it, this
    # block's COMMIT would have committed the abandoned row with its own.
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO notes VALUES ('next')"))
    assert await notes(db) == ["next"]


async def test_a_pooled_connection_the_server_dropped_is_replaced_before_the_block_runs(
        scratch_dsn: str):
    """After a PostgreSQL restart every pooled connection is dead; the next block must run
    on a new one, not fail (a 500 per stale connection), and run once."""
    import asyncpg

    database = Database(scratch_dsn, pool_size=2, max_overflow=0)
    try:
        async with database.transaction() as conn:
            await conn.execute(text("CREATE TABLE notes (body text NOT NULL)"))
        pids = set()
        async with database.transaction() as first, database.transaction() as second:
            for conn in (first, second):  # both pooled connections, then returned
                pids.add(await conn.scalar(text("SELECT pg_backend_pid()")))
        admin = await asyncpg.connect(scratch_dsn)
        try:
            for pid in pids:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        runs = 0
        for note in ("after", "restart"):
            async with database.transaction(uuid.uuid4()) as conn:
                runs += 1
                await conn.execute(text("INSERT INTO notes VALUES (:b)"), {"b": note})
        assert runs == 2
        assert await notes(database) == ["after", "restart"]
    finally:
        await database.dispose()
