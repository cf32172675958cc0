"""Booking's command handlers: load → decide → append, one function per command.

Facts from other aggregates that a decider needs (does the patient exist?) are read from
the event store under the caller's tenant and passed in the command, so deciders stay pure.
Another organization's patient therefore reads as "does not exist".
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from booking.domain import episode, location, patient
from kinetic_infra.event_store.decider import handle
from kinetic_infra.event_store.model import EventContext, StreamName
from kinetic_infra.event_store.store import EventStore


def location_stream(location_id: UUID) -> StreamName:
    return StreamName("location", location_id)


def patient_stream(patient_id: UUID) -> StreamName:
    return StreamName("patient", patient_id)


def episode_stream(episode_id: UUID) -> StreamName:
    return StreamName("episode", episode_id)


async def stream_exists(conn: AsyncConnection, store: EventStore, stream: StreamName,
                        tenant_id: UUID) -> bool:
    _events, version = await store.read(conn, stream, tenant_id=tenant_id)
    return version > 0


async def register_location(conn: AsyncConnection, store: EventStore,
                            command: location.RegisterLocation, context: EventContext) -> None:
    await handle(conn, store, location_stream(command.location_id), location, command,
                 tenant_id=context.tenant_id, context=context)


async def register_patient(conn: AsyncConnection, store: EventStore,
                           command: patient.RegisterPatient, context: EventContext) -> None:
    await handle(conn, store, patient_stream(command.patient_id), patient, command,
                 tenant_id=context.tenant_id, context=context)


async def open_episode(conn: AsyncConnection, store: EventStore,
                       command: episode.OpenEpisode, context: EventContext) -> None:
    await handle(conn, store, episode_stream(command.episode_id), episode, command,
                 tenant_id=context.tenant_id, context=context)
