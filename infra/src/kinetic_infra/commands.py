"""Running a command: one transaction, optimistic-concurrency retries, idempotency.

Retry policy: a ``WrongExpectedVersionError`` means another writer appended to the stream
between our read and our append. The whole unit of work (reload, decide, append) runs again,
at most ``attempts`` times in all, because the new state may change the decision; after
that the caller gets ``ConcurrencyConflictError`` (HTTP 409). Nothing is written by a
failed attempt: each runs in its own transaction.

Idempotency: a command with a ``command_id`` records it in the inbox table in the same
transaction as its effect, with its result. A repeat (a client retry, a redelivered event)
returns the recorded result and changes nothing. A concurrent repeat waits on the first
one's primary-key row and then sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts.problems import ConflictError
from kinetic_infra.db.database import Database
from kinetic_infra.db.schema import inbox
from kinetic_infra.event_store.errors import WrongExpectedVersionError

DEFAULT_ATTEMPTS = 3

Work = Callable[[AsyncConnection], Awaitable[dict[str, Any]]]


class ConcurrencyConflictError(ConflictError):
    type_slug = "concurrency-conflict"
    title = "The record was changed by someone else; reload and try again"


async def claim(conn: AsyncConnection, consumer: str, message_id: str) -> bool:
    """Record that ``consumer`` handles ``message_id`` in this transaction; False if it
    already did (the caller then skips its effect)."""
    inserted = await conn.scalar(
        pg_insert(inbox).values(consumer=consumer, message_id=message_id)
        .on_conflict_do_nothing(index_elements=["consumer", "message_id"])
        .returning(inbox.c.message_id)
    )
    return inserted is not None


async def run_command(
    db: Database,
    work: Work,
    *,
    idempotency_scope: str | None = None,
    command_id: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
) -> dict[str, Any]:
    for attempt in range(1, attempts + 1):
        try:
            async with db.transaction() as conn:
                if command_id is not None and idempotency_scope is not None:
                    if not await claim(conn, idempotency_scope, command_id):
                        recorded = await conn.scalar(
                            select(inbox.c.result).where(
                                inbox.c.consumer == idempotency_scope,
                                inbox.c.message_id == command_id,
                            )
                        )
                        return dict(recorded or {})
                    result = await work(conn)
                    await conn.execute(
                        inbox.update()
                        .where(inbox.c.consumer == idempotency_scope,
                               inbox.c.message_id == command_id)
                        .values(result=result)
                    )
                    return result
                return await work(conn)
        except WrongExpectedVersionError as exc:
            if attempt == attempts:
                raise ConcurrencyConflictError(
                    "the record changed while the request was processed",
                    stream=exc.stream, expected=exc.expected, attempts=attempts,
                ) from None
    raise AssertionError("unreachable")
