"""One async SQLAlchemy engine per service database (asyncpg driver).

Services connect with their own role to their own database; nothing here reads another
service's tables. Transactions are the unit of consistency: events, inline projections,
outbox and inbox rows of one command commit together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def sqlalchemy_url(url: str) -> str:
    """Accept a plain libpq URL (``postgresql://…``) as every other tool does."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20) -> None:
        self.url = url
        # AUTOCOMMIT at the SQLAlchemy level: transactions are begun and ended on the asyncpg
        # connection itself (see `transaction`), so SQLAlchemy Core statements and the event
        # store's driver-level statements share one transaction with no extra round trip.
        # No pre-ping: it cost three round trips per checkout; a dead pooled connection fails
        # one attempt, which commands and consumers already retry.
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url), pool_size=pool_size, max_overflow=max_overflow,
            pool_pre_ping=False, pool_recycle=1800, isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One READ COMMITTED transaction: commits when the block ends, rolls back if it raises."""
        async with self.engine.connect() as conn:
            fairy = await conn.get_raw_connection()
            async with fairy.driver_connection.transaction():  # type: ignore[union-attr]
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()
