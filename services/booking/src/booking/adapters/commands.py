"""Running a booking command from HTTP: one transaction under the caller's organization,
made safe to repeat by an ``Idempotency-Key`` (scoped to the organization, so another
organization reusing a key gets its own effect, never the first one's result; and to the
request, so the key sent again with another body is refused, not answered with the first
one's result)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_infra.auth.principal import Principal
from kinetic_infra.commands import fingerprint, run_command
from kinetic_infra.db.database import Database
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.event_store.model import EventContext

Work = Callable[[AsyncConnection, UUID], Awaitable[dict[str, Any]]]


def event_context(tenant_id: UUID, command_id: UUID, **ids: UUID | None) -> EventContext:
    return EventContext(tenant_id=tenant_id, correlation_id=command_id, causation_id=command_id,
                        **ids)


async def execute(db: Database, scope: str, principal: Principal, key: UUID | None,
                  work: Work, request: Any = None) -> dict[str, Any]:
    """Run ``work(conn, command_id)``; with a key, a repeat of the same ``request`` (the
    body, and the path's ids where they choose the record) returns the first result."""
    command_id = key or new_id()
    return await run_command(db, lambda conn: work(conn, command_id),
                             tenant_id=principal.tenant_id,
                             idempotency_scope=scope if key else None,
                             command_id=str(command_id) if key else None,
                             request=fingerprint(request) if key else None)
