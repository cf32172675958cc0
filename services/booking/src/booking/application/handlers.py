"""Booking's command handlers: load → decide → append, one function per command.

Facts from other aggregates that a decider needs (does the patient exist?) are read from
the event store under the caller's tenant and passed in the command, so deciders stay pure.
Another organization's patient therefore reads as "does not exist".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid5

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.adapters.projections import appointments, waitlist as waitlist_rows
from booking.application.availability import minutes_for
from booking.domain import appointment, episode, location, patient, therapist, waitlist
from booking.domain.errors import WaitlistEntryClosedError
from booking.domain.schedule import why_unbookable
from kinetic_contracts.booking.v1.events import AppointmentBooked
from kinetic_infra.event_store.decider import Aggregate, as_new_event, handle, load, load_many
from kinetic_infra.event_store.model import NO_STREAM, EventContext, StreamName
from kinetic_infra.event_store.store import EventStore


# Waiting entries looked at for one freed hour, oldest first: enough to get past those
# booked elsewhere then or waiting for a longer session.
OFFER_CANDIDATES = 50


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


async def episode_facts(conn: AsyncConnection, episode_id: UUID, state: object,
                        moving: UUID | None = None) -> appointment.EpisodeFacts | None:
    """The episode's facts for booking into it, or for moving its session ``moving``."""
    if not isinstance(state, episode.OpenedEpisode):
        return None
    a = appointments.c
    assessment = a.appointment_type == "initial_assessment"
    held = [a.episode_id == episode_id, a.status.in_(appointment.HOLDING_STATUSES)]
    if moving is not None:
        held.append(a.appointment_id != moving)
    first_assessment_at, first_session_at = (await conn.execute(select(
        func.min(a.starts_at).filter(assessment), func.min(a.starts_at).filter(~assessment)
    ).where(*held))).one()
    return appointment.EpisodeFacts(patient_id=state.patient_id, closed=state.closed,
                                    first_assessment_at=first_assessment_at,
                                    first_session_at=first_session_at)


async def moving_facts(conn: AsyncConnection, store: EventStore, episode_id: UUID,
                       appointment_id: UUID, tenant_id: UUID) -> appointment.EpisodeFacts | None:
    """The episode's facts for moving its session ``appointment_id``."""
    state, _version = await load(conn, store, episode_stream(episode_id), episode,
                                 tenant_id=tenant_id)
    return await episode_facts(conn, episode_id, state, moving=appointment_id)


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
        episode=None if episode_id is None else await episode_facts(
            conn, episode_id, loaded[episode_stream(episode_id)][0]))


async def offer_freed_hour(conn: AsyncConnection, store: EventStore, freed: AppointmentBooked,
                           now: datetime, context: EventContext) -> UUID | None:
    """Offer a cancelled session's hour to the first waiting entry that can take it (first
    come, first served), in the cancelling transaction. Returns the entry offered it, if any.
    An hour the therapist cannot work any more (time off, a closure: the usual reason a
    day's sessions are cancelled) is offered to no one."""
    if freed.starts_at <= now:
        return None
    tenant = context.tenant_id
    loaded = await load_many(conn, store, {location_stream(freed.location_id): location,
                                           therapist_stream(freed.therapist_id): therapist},
                             tenant_id=tenant)  # one round trip, as booking_facts reads them
    place = loaded[location_stream(freed.location_id)][0]
    person = loaded[therapist_stream(freed.therapist_id)][0]
    if not isinstance(place, location.Location) or not isinstance(
            person, therapist.Therapist) or why_unbookable(
            freed.starts_at, freed.ends_at, place.calendar(),
            person.calendar(freed.location_id)) is not None:
        return None
    w, a = waitlist_rows.c, appointments.c
    patient_busy = exists().where(
        a.patient_id == w.patient_id, a.status.in_(appointment.HOLDING_STATUSES),
        a.starts_at < freed.ends_at, a.ends_at > freed.starts_at)
    rows = (await conn.execute(
        select(w.entry_id, w.appointment_type, patient_busy.label("busy")).where(
            or_(w.status == "waiting", and_(w.status == "offered", w.offered_starts_at <= now)),
            w.location_id == freed.location_id, w.patient_id != freed.patient_id,
            or_(w.therapist_id.is_(None), w.therapist_id == freed.therapist_id),
            or_(w.wants_before.is_(None), w.wants_before > freed.starts_at))
        .order_by(w.joined_at, w.entry_id).limit(OFFER_CANDIDATES))).all()
    minutes = {t: await minutes_for(conn, t) for t in {r.appointment_type for r in rows}}
    candidates = [waitlist.Candidate(r.entry_id, r.busy, minutes[r.appointment_type])
                  for r in rows]
    while (entry_id := waitlist.first_to_offer(candidates, freed.ends_at - freed.starts_at)
           ) is not None:
        try:
            await handle(conn, store, waitlist_stream(entry_id), waitlist, waitlist.OfferSlot(
                entry_id=entry_id, therapist_id=freed.therapist_id, starts_at=freed.starts_at,
                ends_at=freed.ends_at, freed_by=freed.appointment_id, now=now),
                tenant_id=tenant, context=context)
            return entry_id
        except WaitlistEntryClosedError:
            # Another cancellation offered the entry its hour (or the entry left) and
            # committed between our reading the rows and its stream: the hour goes to the
            # next in line, rather than failing this cancellation with an unrelated 409.
            # Nothing was appended, so the transaction goes on. (Had both read the stream
            # first, the loser's append meets the other's version and the whole command is
            # retried, reading the rows afresh.)
            candidates = [c for c in candidates if c.entry_id != entry_id]
    return None


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


def replacement_id(no_show_id: UUID) -> UUID:
    """The appointment an arrival after a no-show books: one per no-show, so a retry finds it."""
    return uuid5(no_show_id, "arrived-after-no-show")


async def arrive_after_no_show(conn: AsyncConnection, store: EventStore, no_show_id: UUID,
                               now: datetime, context: EventContext) -> UUID:
    """The no-show is reversed as recorded in error, and its hour is booked again for the
    patient, checked in; the exclusion constraints refuse it if the hour went to someone
    else meanwhile. Returns the replacement's id."""
    tenant = context.tenant_id
    missed, _version = await load(conn, store, appointment_stream(no_show_id), appointment,
                                  tenant_id=tenant)
    appointment.recorded_no_show(missed)  # before anything is reversed
    if isinstance(missed, appointment.Finished):
        await reverse_outcome(conn, store, appointment.ReverseOutcome(
            appointment_id=no_show_id, reason_code="recorded_in_error", now=now), context)
    arrived = replacement_id(no_show_id)
    await handle(conn, store, appointment_stream(arrived), appointment,
                 appointment.ArriveAfterNoShow(appointment_id=arrived, no_show=missed, now=now),
                 tenant_id=tenant, context=context)
    return arrived


async def reverse_outcome(conn: AsyncConnection, store: EventStore,
                          command: appointment.ReverseOutcome, context: EventContext) -> None:
    await handle(conn, store, appointment_stream(command.appointment_id), appointment, command,
                 tenant_id=context.tenant_id, context=context)
