"""The event store's hot-path SQL, sent straight through asyncpg.

Statements are multi-row VALUES lists, one per row count, cached, so asyncpg prepares each
shape once per connection. They run on the asyncpg connection under the caller's
SQLAlchemy ``AsyncConnection`` and therefore inside its transaction.
"""

from __future__ import annotations

from functools import cache

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

EVENT_COLUMNS = 7
OUTBOX_COLUMNS = 5


def _values(rows: int, columns: int, casts: tuple[str, ...]) -> str:
    return ", ".join(
        "(" + ", ".join(f"${r * columns + c + 1}{casts[c]}" for c in range(columns)) + ")"
        for r in range(rows)
    )


@cache
def insert_events_sql(rows: int) -> str:
    casts = ("::uuid", "", "::int", "", "::jsonb", "::jsonb", "::uuid")
    return ("INSERT INTO events (event_id, stream_name, version, type, data, metadata, "
            f"tenant_id) VALUES {_values(rows, EVENT_COLUMNS, casts)} "
            "RETURNING global_position, recorded_at")


@cache
def insert_outbox_sql(rows: int) -> str:
    casts = ("::uuid", "", "", "::bytea", "")
    return ("INSERT INTO outbox (event_id, stream_name, subject, payload, traceparent) "
            f"VALUES {_values(rows, OUTBOX_COLUMNS, casts)}")


class NotInTransactionError(RuntimeError):
    """An append outside ``Database.transaction()`` would commit events without the rest."""


async def raw_driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``conn``, in or out of a transaction."""
    fairy = await conn.get_raw_connection()
    return fairy.driver_connection  # type: ignore[return-value]


async def driver_connection(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``conn``; it must be inside ``Database.transaction()``."""
    fairy = await conn.get_raw_connection()
    driver: asyncpg.Connection = fairy.driver_connection  # type: ignore[assignment]
    if not driver.is_in_transaction():
        raise NotInTransactionError("append events inside Database.transaction()")
    return driver
