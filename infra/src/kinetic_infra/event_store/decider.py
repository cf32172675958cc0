"""The one shape of every command handler: load the stream, fold it, decide, append.

An aggregate is any object (usually the domain module itself) with ``EVENT_TYPES``,
``INITIAL``, ``evolve`` and ``decide``; its events may offer ``to_public()`` to say what the
outbox publishes (a contract model is published as itself; anything else stays internal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import EventData
from kinetic_infra.event_store.fold import fold
from kinetic_infra.event_store.model import EventContext, Exactly, NewEvent, RecordedEvent, StreamName
from kinetic_infra.event_store.store import EventStore


class Aggregate(Protocol):
    EVENT_TYPES: Mapping[str, type[BaseModel]]
    INITIAL: Any
    evolve: Callable[[Any, Any], Any]
    decide: Callable[[Any, Any], Sequence[BaseModel]]


def as_new_event(event: BaseModel) -> NewEvent:
    to_public = getattr(event, "to_public", None)
    if callable(to_public):
        return NewEvent(data=event, public=to_public())
    return NewEvent(data=event, public=event if isinstance(event, EventData) else None)


async def load(conn: AsyncConnection, store: EventStore, stream: StreamName,
               aggregate: Aggregate, *, tenant_id: UUID) -> tuple[Any, int]:
    recorded, version = await store.read(conn, stream, tenant_id=tenant_id)
    return fold(recorded, aggregate.EVENT_TYPES, aggregate.evolve, aggregate.INITIAL), version


async def load_many(conn: AsyncConnection, store: EventStore,
                    streams: Mapping[StreamName, Aggregate], *, tenant_id: UUID
                    ) -> dict[StreamName, tuple[Any, int]]:
    """``load`` of several streams, each folded by its own aggregate, in one round trip: a
    command that checks facts in three other streams reads them at once."""
    read = await store.read_many(conn, list(streams), tenant_id=tenant_id)
    out: dict[StreamName, tuple[Any, int]] = {}
    for stream, aggregate in streams.items():
        recorded, version = read[str(stream)]
        out[stream] = (fold(recorded, aggregate.EVENT_TYPES, aggregate.evolve,
                            aggregate.INITIAL), version)
    return out


async def handle(conn: AsyncConnection, store: EventStore, stream: StreamName,
                 aggregate: Aggregate, command: BaseModel, *, tenant_id: UUID,
                 context: EventContext) -> list[RecordedEvent]:
    state, version = await load(conn, store, stream, aggregate, tenant_id=tenant_id)
    new = aggregate.decide(command, state)
    return await store.append(conn, stream, [as_new_event(e) for e in new],
                              expected=Exactly(version), context=context)
