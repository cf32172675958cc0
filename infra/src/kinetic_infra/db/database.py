"""One async SQLAlchemy engine per service database (asyncpg driver).

Services connect with their own role to their own database; nothing here reads another
service's tables. Transactions are the unit of consistency: events, inline projections,
outbox and inbox rows of one command commit together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from uuid import UUID

import asyncpg

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


TENANT_SETTING = "kinetic.tenant_id"


async def set_tenant(driver: asyncpg.Connection, tenant_id: UUID) -> None:
    """Scope the current transaction to one organization (row-level security reads this)."""
    await driver.execute(f"SELECT set_config('{TENANT_SETTING}', $1, true)", str(tenant_id))


class TransactionAbortedError(RuntimeError):
    """The block ended normally, but a statement in it had failed, so nothing committed."""


def _literal(text: str) -> str:
    """A string literal (standard_conforming_strings is on in every supported PostgreSQL)."""
    return "'" + text.replace("'", "''") + "'"


# What a connection the server has closed raises on its next statement (the client may
# learn of the close while the statement is under way: an internal client error).
DEAD_CONNECTION = (asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError,
                   asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError, OSError)


async def _roll_back(conn: AsyncConnection, driver: asyncpg.Connection) -> None:
    try:
        await driver.execute("ROLLBACK")
    except BaseException:
        # The pool does not reset connections (it would cost a round trip on every return),
        # so one that cannot roll back must never be handed out again.
        await conn.invalidate()
        raise


def sqlalchemy_url(url: str) -> str:
    """Accept a plain libpq URL (``postgresql://…``) as every other tool does."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20,
                 traced: bool = False) -> None:
        self.url = url
        # AUTOCOMMIT at the SQLAlchemy level: transactions are begun and ended on the asyncpg
        # connection itself (see `transaction`), so SQLAlchemy Core statements and the event
        # store's driver-level statements share one transaction with no extra round trip.
        # No pre-ping: it cost three round trips per checkout; a dead pooled connection fails
        # at BEGIN, before anything ran, and `transaction` then starts over on a new one.
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url), pool_size=pool_size, max_overflow=max_overflow,
            pool_pre_ping=False, pool_recycle=1800, isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
        )
        if traced:
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().instrument(engine=self.engine.sync_engine)

    @asynccontextmanager
    async def transaction(self, tenant_id: UUID | None = None, *, readonly: bool = False,
                          advisory_lock: str | None = None) -> AsyncIterator[AsyncConnection]:
        """One READ COMMITTED transaction: commits when the block ends, rolls back if it raises.

        ``tenant_id`` is set for this transaction only (``set_config(…, true)``): row-level
        security shows and accepts that organization's rows and no others, and the setting
        ends with the transaction, so a pooled connection never carries it to the next one.
        ``advisory_lock`` names a transaction-scoped advisory lock taken before the block
        runs (it serialises the blocks that name the same lock).
        """
        # BEGIN, the tenant and the lock in one round trip (a simple query of several
        # statements): every request and every consumed message opens a transaction. The
        # tenant is a UUID, so its text is safe to inline.
        begin = "BEGIN READ ONLY" if readonly else "BEGIN"
        if tenant_id is not None:
            begin += f"; SELECT set_config('{TENANT_SETTING}', '{UUID(str(tenant_id))}', true)"
        if advisory_lock is not None:
            key = _literal(advisory_lock)
            begin += f"; SELECT pg_advisory_xact_lock(hashtextextended({key}, 0))"
        async with self._begun(begin) as (conn, driver):
            try:
                yield conn
            except BaseException:
                await _roll_back(conn, driver)
                raise
            if await driver.execute("COMMIT") == "ROLLBACK":
                # PostgreSQL answers COMMIT of a transaction a failed statement aborted by
                # rolling it back: the block caught that failure and carried on.
                raise TransactionAbortedError("a statement failed inside the transaction; "
                                              "nothing of it was committed")

    @asynccontextmanager
    async def _begun(self, begin: str
                     ) -> AsyncIterator[tuple[AsyncConnection, asyncpg.Connection]]:
        """A pooled connection with ``begin`` run on it.

        The pool does not pre-ping, so after a PostgreSQL restart (or an idle timeout) its
        connections are dead, and one fails at BEGIN, before anything of the block ran: the
        pool is then replaced (its other connections are as dead) and BEGIN runs once more on
        a new connection, so a restart costs callers nothing instead of a 500 apiece."""
        for last_try in (False, True):
            async with self.engine.connect() as conn:
                fairy = await conn.get_raw_connection()
                driver: asyncpg.Connection = fairy.driver_connection  # type: ignore[assignment]
                try:
                    await driver.execute(begin)
                except BaseException as exc:
                    dead = isinstance(exc, Exception) and (
                        isinstance(exc, DEAD_CONNECTION) or driver.is_closed())
                    if not dead:
                        # A later statement of the BEGIN failed (a lock wait cancelled):
                        # the transaction it opened is rolled back too.
                        await _roll_back(conn, driver)
                        raise
                    await conn.invalidate()
                    if last_try:
                        raise
                    await self.engine.dispose(close=False)
                    continue
                yield conn, driver
                return

    def read(self, tenant_id: UUID | None = None) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read-only transaction for queries (tenant-scoped like ``transaction``)."""
        return self.transaction(tenant_id, readonly=True)

    async def dispose(self) -> None:
        await self.engine.dispose()
