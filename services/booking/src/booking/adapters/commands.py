"""Running a booking command from HTTP: one transaction under the caller's organization,
made safe to repeat by an ``Idempotency-Key`` (scoped to the organization, so another
organization reusing a key gets its own effect, never the first one's result)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_infra.auth.principal import Principal
from kinetic_infra.commands import run_command
from kinetic_infra.db.database import Database
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.event_store.model import EventContext

Work = Callable[[AsyncConnection, UUID], Awaitable[dict[str, Any]]]


def event_context(tenant_id: UUID, command_id: UUID, **ids: UUID | None) -> EventContext:
    return EventContext(tenant_id=tenant_id, correlation_id=command_id, causation_id=command_id,
                        **ids)


async def execute(db: Database, scope: str, principal: Principal, key: UUID | None,
                  work: Work) -> dict[str, Any]:
    """Run ``work(conn, command_id)``; with a key, a repeat returns the first result."""
    command_id = key or new_id()
    scoped = f"{scope}:{principal.tenant_id}"
    return await run_command(db, lambda conn: work(conn, command_id),
                             tenant_id=principal.tenant_id,
                             idempotency_scope=scoped if key else None,
                             command_id=str(command_id) if key else None)
