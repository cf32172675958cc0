"""Append-only event store on PostgreSQL (SQLAlchemy Core over asyncpg).

Guarantees:
- Optimistic concurrency comes from ``UNIQUE (stream_name, version)``: of two writers that
  read version n, exactly one commits version n+1; the other gets
  ``WrongExpectedVersionError`` (never "check then insert").
- The two INSERTs go straight to asyncpg inside the caller's SQLAlchemy transaction: this is
  the hottest path of every service, and SQLAlchemy's per-statement overhead more than
  doubled its CPU cost (see `make bench`).
- Events, the outbox rows for their public copies and the caller's inline projections are
  written in the caller's transaction: all commit together or none does.
- Versions within a stream are contiguous from 1; ``global_position`` orders the whole log
  (it may commit out of order, which is why the relay does not tail it; see outbox/relay.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent, nats_subject
from kinetic_contracts.registry import schema_uri
from kinetic_infra.event_store.sql import (
    OUTBOX_COLUMNS,
    driver_connection,
    insert_events_sql,
    insert_outbox_sql,
    raw_driver,
)
from kinetic_infra.event_store.errors import WrongExpectedVersionError
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.projections import Projection, apply_all
from kinetic_infra.telemetry import current_traceparent, events_appended, tracer
from kinetic_infra.event_store.model import (
    Any_,
    EventContext,
    Exactly,
    ExpectedVersion,
    NewEvent,
    NoStream,
    RecordedEvent,
    StreamName,
)


def _version_of(expected: ExpectedVersion) -> int | None:
    match expected:
        case Exactly(version=v):
            return v
        case NoStream():
            return 0
        case Any_():
            return None
    raise ValueError(f"unknown expected version {expected!r}")


class EventStore:
    def __init__(self, service: str, projections: Sequence[Projection] = ()) -> None:
        self.service = service
        self.source = f"/kinetic/{service}"
        self.projections = list(projections)

    async def read(self, conn: AsyncConnection, stream: StreamName | str, *, tenant_id: UUID
                   ) -> tuple[list[RecordedEvent], int]:
        """The stream's events in version order and its current version (0 if none).
        Another tenant's stream reads as empty, exactly like a stream that does not exist."""
        # Straight to the driver (its JSON codecs are SQLAlchemy's): every command reads
        # its streams, and building the statement cost more than running it.
        driver = await raw_driver(conn)
        rows = await driver.fetch(_READ_SQL, str(stream), tenant_id)
        recorded = [recorded_from_row(r) for r in rows]
        return recorded, (recorded[-1].version if recorded else 0)

    async def read_many(self, conn: AsyncConnection, streams: Sequence[StreamName | str], *,
                        tenant_id: UUID) -> dict[str, tuple[list[RecordedEvent], int]]:
        """``read`` of several streams in one round trip, by stream name (every name asked
        for is in the answer, a missing one as empty)."""
        driver = await raw_driver(conn)
        names = [str(s) for s in streams]
        found: dict[str, tuple[list[RecordedEvent], int]] = {n: ([], 0) for n in names}
        for row in await driver.fetch(_READ_MANY_SQL, names, tenant_id):
            events, _ = found[row["stream_name"]]
            events.append(recorded_from_row(row))
            found[row["stream_name"]] = (events, row["version"])
        return found

    async def current_version(self, conn: AsyncConnection, stream: StreamName | str) -> int:
        driver = await raw_driver(conn)
        return int(await driver.fetchval(_VERSION_SQL, str(stream)) or 0)

    async def append(
        self,
        conn: AsyncConnection,
        stream: StreamName | str,
        new_events: Sequence[NewEvent],
        *,
        expected: ExpectedVersion,
        context: EventContext,
    ) -> list[RecordedEvent]:
        if not new_events:
            return []
        with tracer.start_as_current_span("event_store.append", attributes={
                "kinetic.stream.category": str(stream).split("-", 1)[0],
                "kinetic.events": len(new_events)}):
            if context.traceparent is None:
                context = replace(context, traceparent=current_traceparent())
            recorded = await self._append(conn, str(stream), new_events, expected, context)
        events_appended.add(len(recorded), {"service": self.service})
        return recorded

    async def _append(self, conn: AsyncConnection, stream_name: str,
                      new_events: Sequence[NewEvent], expected: ExpectedVersion,
                      context: EventContext) -> list[RecordedEvent]:
        start = _version_of(expected)
        if start is None:
            start = await self.current_version(conn, stream_name)
        metadata = _metadata(context)
        metadata_json = json.dumps(metadata)
        ids = [new_id() for _ in new_events]
        data = [e.data.model_dump(mode="json") for e in new_events]
        params: list[Any] = []
        for i, (event_id, e, payload) in enumerate(zip(ids, new_events, data, strict=True), 1):
            params += [event_id, stream_name, start + i, e.type, json.dumps(payload),
                       metadata_json, context.tenant_id]
        driver = await driver_connection(conn)
        try:
            stored = await driver.fetch(insert_events_sql(len(new_events)), *params)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "events_stream_version_key":
                raise WrongExpectedVersionError(stream_name, start) from None
            raise
        recorded = [
            RecordedEvent(
                event_id=event_id, stream_name=stream_name, version=start + i,
                global_position=row["global_position"], type=e.type, data=payload,
                metadata=metadata, tenant_id=context.tenant_id, recorded_at=row["recorded_at"],
            )
            for i, (event_id, e, payload, row) in enumerate(
                zip(ids, new_events, data, stored, strict=True), 1)
        ]
        await self._write_outbox(driver, recorded, new_events, context)
        await apply_all(self.projections, conn, recorded)
        return recorded

    async def _write_outbox(self, driver: asyncpg.Connection, recorded: list[RecordedEvent],
                            new_events: Sequence[NewEvent], context: EventContext) -> None:
        params: list[Any] = []
        for rec, new in zip(recorded, new_events, strict=True):
            if new.public is None:
                continue
            envelope = self.envelope(rec, new, context)
            params += [rec.event_id, rec.stream_name,
                       nats_subject(context.tenant_id, envelope.type),
                       envelope.model_dump_json(exclude_none=True).encode(), context.traceparent]
        if params:
            await driver.execute(insert_outbox_sql(len(params) // OUTBOX_COLUMNS), *params)

    def envelope(self, rec: RecordedEvent, new: NewEvent, context: EventContext) -> CloudEvent:
        assert new.public is not None
        public_type = new.public.event_type
        return CloudEvent(
            id=rec.event_id,
            source=self.source,
            type=public_type,
            subject=str(new.public.aggregate_id()),
            time=rec.recorded_at,
            dataschema=schema_uri(public_type),
            data=new.public.model_dump(mode="json"),
            tenantid=context.tenant_id,
            locationid=context.location_id,
            episodeid=context.episode_id,
            sequence=rec.version,
            correlationid=context.correlation_id,
            causationid=context.causation_id,
            traceparent=context.traceparent,
        )


def _metadata(context: EventContext) -> dict[str, Any]:
    return {
        k: (str(v) if v is not None else None)
        for k, v in {
            "location_id": context.location_id,
            "episode_id": context.episode_id,
            "correlation_id": context.correlation_id,
            "causation_id": context.causation_id,
            "traceparent": context.traceparent,
        }.items()
        if v is not None
    }


_READ_SQL = ("SELECT event_id, stream_name, version, global_position, type, data, metadata, "
             "tenant_id, recorded_at FROM events WHERE stream_name = $1 AND tenant_id = $2 "
             "ORDER BY version")
_READ_MANY_SQL = ("SELECT event_id, stream_name, version, global_position, type, data, "
                  "metadata, tenant_id, recorded_at FROM events WHERE stream_name = ANY($1) "
                  "AND tenant_id = $2 ORDER BY stream_name, version")
_VERSION_SQL = "SELECT coalesce(max(version), 0) FROM events WHERE stream_name = $1"


def recorded_from_row(row: Any) -> RecordedEvent:
    return RecordedEvent(
        event_id=row["event_id"], stream_name=row["stream_name"], version=row["version"],
        global_position=row["global_position"], type=row["type"], data=row["data"],
        metadata=row["metadata"], tenant_id=row["tenant_id"], recorded_at=row["recorded_at"],
    )

