"""Booking's command handlers: load → decide → append, one function per command.

Facts from other aggregates that a decider needs (does the patient exist?) are read from
the event store under the caller's tenant and passed in the command, so deciders stay pure.
Another organization's patient therefore reads as "does not exist".
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from booking.domain import appointment, episode, location, patient, therapist
from kinetic_infra.event_store.decider import handle, load
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


def therapist_stream(therapist_id: UUID) -> StreamName:
    return StreamName("therapist", therapist_id)


def appointment_stream(appointment_id: UUID) -> StreamName:
    return StreamName("appointment", appointment_id)


async def register_therapist(conn: AsyncConnection, store: EventStore,
                             command: therapist.RegisterTherapist, context: EventContext) -> None:
    await handle(conn, store, therapist_stream(command.therapist_id), therapist, command,
                 tenant_id=context.tenant_id, context=context)


async def therapist_locations(conn: AsyncConnection, store: EventStore, therapist_id: UUID,
                              tenant_id: UUID) -> frozenset[UUID] | None:
    state, _version = await load(conn, store, therapist_stream(therapist_id), therapist,
                                 tenant_id=tenant_id)
    return state.location_ids if isinstance(state, therapist.Therapist) else None


async def late_cancel_hours(conn: AsyncConnection, store: EventStore, location_id: UUID,
                            tenant_id: UUID) -> int:
    state, _version = await load(conn, store, location_stream(location_id), location,
                                 tenant_id=tenant_id)
    return state.late_cancel_hours if isinstance(state, location.Location) else 24


async def book_appointment(conn: AsyncConnection, store: EventStore,
                           command: appointment.BookAppointment, context: EventContext) -> None:
    await handle(conn, store, appointment_stream(command.appointment_id), appointment, command,
                 tenant_id=context.tenant_id, context=context)


async def cancel_appointment(conn: AsyncConnection, store: EventStore,
                             command: appointment.CancelAppointment,
                             context: EventContext) -> bool:
    recorded = await handle(conn, store, appointment_stream(command.appointment_id), appointment,
                            command, tenant_id=context.tenant_id, context=context)
    return bool(recorded[-1].data["late"])


async def record_arrival(conn: AsyncConnection, store: EventStore,
                         command: appointment.RecordArrival, context: EventContext) -> None:
    await handle(conn, store, appointment_stream(command.appointment_id), appointment, command,
                 tenant_id=context.tenant_id, context=context)
