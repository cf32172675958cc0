"""Running a command: one transaction, optimistic-concurrency retries, idempotency.

Retry policy: a ``WrongExpectedVersionError`` means another writer appended to the stream
between our read and our append. The whole unit of work (reload, decide, append) runs again,
at most ``attempts`` times in all, because the new state may change the decision; after
that the caller gets ``ConcurrencyConflictError`` (HTTP 409). Nothing is written by a
failed attempt: each runs in its own transaction.

Idempotency: a command with a ``command_id`` records it in the inbox table in the same
transaction as its effect, with its result. A repeat (a client retry, a redelivered event)
returns the recorded result and changes nothing. A concurrent repeat waits on the first
one's primary-key row and then sees it. The key is the organization's own (another one
reusing it gets its own effect), and with a ``request`` fingerprint it stands for that
request only: the same key sent with another body is refused (422), not answered with the
first body's result, which would silently drop the second request (a second patient never
registered).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

from fastapi.encoders import jsonable_encoder
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts.problems import ConflictError, IdempotencyKeyReusedError
from kinetic_infra.db.database import Database
from kinetic_infra.db.schema import inbox
from kinetic_infra.event_store.errors import WrongExpectedVersionError
from kinetic_infra.event_store.sql import driver_connection

DEFAULT_ATTEMPTS = 3

Work = Callable[[AsyncConnection], Awaitable[dict[str, Any]]]


class ConcurrencyConflictError(ConflictError):
    type_slug = "concurrency-conflict"
    title = "The record was changed by someone else; reload and try again"


REQUEST_KEY = "_request"  # where a result records the fingerprint of its request


CLAIM_SQL = ("INSERT INTO inbox (consumer, message_id) SELECT $1, unnest($2::text[]) "
             "ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id")


async def claim_many(conn: AsyncConnection, consumer: str, message_ids: Sequence[str]) -> set[str]:
    """Record that ``consumer`` handles these messages in this transaction, in one round
    trip; returns the ids it had not handled before (the others are repeats to skip)."""
    if not message_ids:
        return set()
    driver = await driver_connection(conn)
    rows = await driver.fetch(CLAIM_SQL, consumer, list(message_ids))
    return {r["message_id"] for r in rows}


async def claim(conn: AsyncConnection, consumer: str, message_id: str) -> bool:
    return bool(await claim_many(conn, consumer, [message_id]))


async def run_command(
    db: Database,
    work: Work,
    *,
    tenant_id: UUID,
    idempotency_scope: str | None = None,
    command_id: str | None = None,
    request: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
) -> dict[str, Any]:
    """``request``: a fingerprint of what the caller sent (see ``fingerprint``)."""
    scope = f"{idempotency_scope}:{tenant_id}"
    for attempt in range(1, attempts + 1):
        try:
            async with db.transaction(tenant_id) as conn:
                if command_id is not None and idempotency_scope is not None:
                    if not await claim(conn, scope, command_id):
                        recorded = dict(await conn.scalar(
                            select(inbox.c.result).where(
                                inbox.c.consumer == scope, inbox.c.message_id == command_id,
                            )
                        ) or {})
                        first = recorded.pop(REQUEST_KEY, None)
                        if request is not None and first not in (None, request):
                            raise IdempotencyKeyReusedError(
                                "this Idempotency-Key was used for a different request: "
                                "send a new key for a new request", key=command_id)
                        return recorded
                    result = await work(conn)
                    await conn.execute(
                        inbox.update()
                        .where(inbox.c.consumer == scope, inbox.c.message_id == command_id)
                        .values(result=result if request is None
                                else {**result, REQUEST_KEY: request})
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


def fingerprint(request: Any) -> str:
    """The SHA-256 of a request's JSON form (keys sorted): pydantic models, ids and dates
    included."""
    body = json.dumps(jsonable_encoder(request), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()
