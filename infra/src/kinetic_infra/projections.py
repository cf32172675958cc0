"""Inline projections: a service's own read models, updated in the transaction that appends
the events, so a read after a successful command always sees its effect.

A projection owns its tables. ``rebuild`` empties them and replays the whole event log in
global order, which gives the same rows as applying the events one by one at write time
(projections must therefore depend only on the events, never on the clock or other tables).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Table, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_infra.db.database import Database
from kinetic_infra.db.schema import events
from kinetic_infra.event_store.model import RecordedEvent

Apply = Callable[[AsyncConnection, RecordedEvent], Awaitable[None]]


@dataclass
class Projection:
    name: str
    tables: Sequence[Table]
    handlers: dict[str, Apply] = field(default_factory=dict)

    def on(self, event_type: str) -> Callable[[Apply], Apply]:
        def register(fn: Apply) -> Apply:
            self.handlers[event_type] = fn
            return fn

        return register

    async def apply(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        handler = self.handlers.get(event.type)
        if handler is not None:
            await handler(conn, event)


async def apply_all(projections: Sequence[Projection], conn: AsyncConnection,
                    recorded: Sequence[RecordedEvent]) -> None:
    for event in recorded:
        for projection in projections:
            await projection.apply(conn, event)


async def rebuild(db: Database, projection: Projection, *, batch: int = 1000) -> int:
    """Replay every event into an emptied projection, in one transaction (readers see the
    old rows until it commits). Returns the number of events replayed."""
    from kinetic_infra.event_store.store import recorded_from_row

    count = 0
    async with db.transaction() as conn:
        names = ", ".join(f'"{t.name}"' for t in projection.tables)
        await conn.execute(text(f"TRUNCATE {names}"))
        position = 0
        while True:
            rows = (await conn.execute(
                select(events).where(events.c.global_position > position)
                .order_by(events.c.global_position).limit(batch)
            )).mappings().all()
            if not rows:
                return count
            for row in rows:
                await projection.apply(conn, recorded_from_row(row))
                count += 1
            position = rows[-1]["global_position"]
