"""Booking's command handlers: load → decide → append, one function per command.

Facts from other aggregates that a decider needs (does the patient exist?) are read from
the event store under the caller's tenant and passed in the command, so deciders stay pure.
Another organization's patient therefore reads as "does not exist".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.adapters.projections import appointments, waitlist as waitlist_rows
from booking.domain import appointment, episode, location, patient, therapist, waitlist
from kinetic_contracts.booking.v1.events import AppointmentBooked
from kinetic_infra.event_store.decider import Aggregate, as_new_event, handle, load, load_many
from kinetic_infra.event_store.model import NO_STREAM, EventContext, StreamName
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


def waitlist_stream(entry_id: UUID) -> StreamName:
    return StreamName("waitlist", entry_id)


async def load_therapist(conn: AsyncConnection, store: EventStore, therapist_id: UUID,
                         tenant_id: UUID) -> therapist.Therapist | None:
    state, _version = await load(conn, store, therapist_stream(therapist_id), therapist,
                                 tenant_id=tenant_id)
    return state if isinstance(state, therapist.Therapist) else None


async def load_location(conn: AsyncConnection, store: EventStore, location_id: UUID,
                        tenant_id: UUID) -> location.Location | None:
    state, _version = await load(conn, store, location_stream(location_id), location,
                                 tenant_id=tenant_id)
    return state if isinstance(state, location.Location) else None


async def _episode_facts(conn: AsyncConnection, episode_id: UUID, state: object
                         ) -> appointment.EpisodeFacts | None:
    if not isinstance(state, episode.OpenedEpisode):
        return None
    sessions = await conn.scalar(select(func.count()).select_from(appointments).where(
        appointments.c.episode_id == episode_id,
        appointments.c.status.in_(appointment.HOLDING_STATUSES)))
    return appointment.EpisodeFacts(patient_id=state.patient_id, closed=state.closed,
                                    has_sessions=bool(sessions))


@dataclass(frozen=True)
class BookingFacts:
    """What booking an appointment is decided on, besides the request itself."""

    patient_exists: bool
    location: location.Location | None
    therapist: therapist.Therapist | None
    episode: appointment.EpisodeFacts | None


async def booking_facts(conn: AsyncConnection, store: EventStore, *, patient_id: UUID,
                        location_id: UUID, therapist_id: UUID, episode_id: UUID | None,
                        tenant_id: UUID) -> BookingFacts:
    """The patient's, location's, therapist's and episode's streams, read in one round
    trip (the front desk books all day, and each read was a round trip of its own)."""
    streams: dict[StreamName, Aggregate] = {
        patient_stream(patient_id): patient, location_stream(location_id): location,
        therapist_stream(therapist_id): therapist}
    if episode_id is not None:
        streams[episode_stream(episode_id)] = episode
    loaded = await load_many(conn, store, streams, tenant_id=tenant_id)
    place, person = (loaded[location_stream(location_id)][0],
                     loaded[therapist_stream(therapist_id)][0])
    return BookingFacts(
        patient_exists=loaded[patient_stream(patient_id)][1] > 0,
        location=place if isinstance(place, location.Location) else None,
        therapist=person if isinstance(person, therapist.Therapist) else None,
        episode=None if episode_id is None else await _episode_facts(
            conn, episode_id, loaded[episode_stream(episode_id)][0]))


async def offer_freed_hour(conn: AsyncConnection, store: EventStore, freed: AppointmentBooked,
                           now: datetime, context: EventContext) -> UUID | None:
    """Offer a cancelled session's hour to the first matching waiting entry (first come,
    first served), in the cancelling transaction. Returns the entry offered it, if any."""
    w = waitlist_rows.c
    entry_id = await conn.scalar(
        select(w.entry_id).where(
            w.status == "waiting", w.location_id == freed.location_id,
            w.patient_id != freed.patient_id,
            or_(w.therapist_id.is_(None), w.therapist_id == freed.therapist_id),
            or_(w.wants_before.is_(None), w.wants_before > freed.starts_at))
        .order_by(w.joined_at, w.entry_id).limit(1))
    if entry_id is None or freed.starts_at <= now:
        return None
    await handle(conn, store, waitlist_stream(entry_id), waitlist, waitlist.OfferSlot(
        entry_id=entry_id, therapist_id=freed.therapist_id, starts_at=freed.starts_at,
        ends_at=freed.ends_at, freed_by=freed.appointment_id, now=now),
        tenant_id=context.tenant_id, context=context)
    return entry_id


async def late_cancel_hours(conn: AsyncConnection, store: EventStore, location_id: UUID,
                            tenant_id: UUID) -> int:
    state, _version = await load(conn, store, location_stream(location_id), location,
                                 tenant_id=tenant_id)
    return state.late_cancel_hours if isinstance(state, location.Location) else 24


async def book_appointment(conn: AsyncConnection, store: EventStore,
                           command: appointment.BookAppointment, context: EventContext) -> None:
    # The appointment id was just minted, so its stream is new: decide from the initial
    # state and append expecting no stream, instead of reading one that cannot exist.
    new = appointment.decide(command, appointment.INITIAL)
    await store.append(conn, appointment_stream(command.appointment_id),
                       [as_new_event(e) for e in new], expected=NO_STREAM, context=context)


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


async def reverse_outcome(conn: AsyncConnection, store: EventStore,
                          command: appointment.ReverseOutcome, context: EventContext) -> None:
    await handle(conn, store, appointment_stream(command.appointment_id), appointment, command,
                 tenant_id=context.tenant_id, context=context)
