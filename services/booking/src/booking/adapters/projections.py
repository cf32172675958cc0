"""Booking's read models, kept inline with the events (same transaction)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.domain.episode import EpisodeOpened
from booking.domain.errors import SlotTakenError
from booking.domain.location import LocationRegistered
from booking.domain.patient import PatientRegistered
from kinetic_contracts.booking.v1.events import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentCheckedIn,
    AppointmentCompleted,
    AppointmentNoShow,
    AppointmentReminderDue,
    AppointmentRescheduled,
    AppointmentReversed,
    AppointmentTypeConfigured,
    EpisodeClosed,
    LocationClosureAdded,
    LocationHoursSet,
    PatientConsentRecorded,
    TherapistHoursSet,
    TherapistRegistered,
    TherapistTimeOffAdded,
    WaitlistJoined,
    WaitlistLeft,
    WaitlistSlotOffered,
)
from kinetic_infra.db.upsert import upsert
from kinetic_infra.event_store.model import RecordedEvent
from kinetic_infra.projections import Projection

metadata = MetaData()

locations = Table(
    "locations", metadata,
    Column("location_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("late_cancel_hours", Integer, nullable=False),
    Column("opening_hours", JSONB),
)

location_closures = Table(
    "location_closures", metadata,
    Column("closure_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("first_day", Date, nullable=False),
    Column("last_day", Date, nullable=False),
    Column("reason", Text, nullable=False),
)

patients = Table(
    "patients", metadata,
    Column("patient_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("home_location_id", UUID(as_uuid=True), nullable=False),
    Column("given_name", Text, nullable=False),
    Column("family_name", Text, nullable=False),
    Column("date_of_birth", Date, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("preferred_language", Text),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

episodes = Table(
    "episodes", metadata,
    Column("episode_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("patient_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("symptom_site", Text, nullable=False),
    Column("goal", Text),
    Column("goal_target_date", Date),
    Column("referral", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
)

patient_consents = Table(
    "patient_consents", metadata,
    Column("patient_id", UUID(as_uuid=True), primary_key=True),
    Column("consent", Text, primary_key=True),
    Column("partner", Text, primary_key=True),  # '' when the consent names no partner
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("version", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

therapists = Table(
    "therapists", metadata,
    Column("therapist_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("location_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("display_name", Text),
)

therapist_hours = Table(
    "therapist_hours", metadata,
    Column("therapist_id", UUID(as_uuid=True), primary_key=True),
    Column("location_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("working_hours", JSONB, nullable=False),
)

therapist_time_off = Table(
    "therapist_time_off", metadata,
    Column("time_off_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("therapist_id", UUID(as_uuid=True), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
)

appointment_types = Table(
    "appointment_types", metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("appointment_type", Text, primary_key=True),
    Column("minutes", Integer, nullable=False),
)

appointments = Table(
    "appointments", metadata,
    Column("appointment_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("therapist_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("episode_id", UUID(as_uuid=True)),
    Column("appointment_type", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("late_cancel", Boolean),
    Column("booked_at", DateTime(timezone=True), nullable=False),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("checked_in_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("reminded_at", DateTime(timezone=True)),
    Column("replaces", UUID(as_uuid=True)),  # the no-show recorded in error it stands for
)

waitlist = Table(
    "waitlist", metadata,
    Column("entry_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("therapist_id", UUID(as_uuid=True)),
    Column("appointment_type", Text, nullable=False),
    Column("wants_before", DateTime(timezone=True)),
    Column("joined_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("offered_therapist_id", UUID(as_uuid=True)),
    Column("offered_starts_at", DateTime(timezone=True)),
    Column("offered_at", DateTime(timezone=True)),
    Column("left_at", DateTime(timezone=True)),
)

# Kept by booking's consumer from plan's events: not rebuilt from booking's own streams.
episode_plans = Table(
    "episode_plans", metadata,
    Column("episode_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("plan_id", UUID(as_uuid=True), nullable=False),
    Column("sessions_per_week", Float, nullable=False),
    Column("expected_sessions", Integer, nullable=False),
    Column("target_date", Date, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

reassessments_due = Table(
    "reassessments_due", metadata,
    Column("episode_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("due_by", Date, nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False),
)

# The clinician's newest decision on a due reassessment (which may be to go on without one):
# it answers every due raised at or before it.
reassessments_resolved = Table(
    "reassessments_resolved", metadata,
    Column("episode_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=False),
)

front_desk = Projection("front-desk", [
    locations, location_closures, patients, patient_consents, episodes, therapists,
    therapist_hours, therapist_time_off, appointment_types, appointments, waitlist])
ONE_AT_A_TIME = ("appointments_therapist_one_at_a_time", "appointments_patient_one_at_a_time")


@front_desk.on(LocationRegistered.event_type)
async def _location(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = LocationRegistered.model_validate(event.data)
    await upsert(conn, locations, "location_id", {
        "location_id": e.location_id, "tenant_id": event.tenant_id, "name": e.name,
        "timezone": e.timezone, "registered_at": e.registered_at,
        "late_cancel_hours": e.late_cancel_hours})


@front_desk.on(PatientRegistered.event_type)
async def _patient(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = PatientRegistered.model_validate(event.data)
    await upsert(conn, patients, "patient_id", {
        **e.model_dump(exclude={"registered_at"}), "tenant_id": event.tenant_id,
        "registered_at": e.registered_at})


@front_desk.on(EpisodeOpened.event_type)
async def _episode(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = EpisodeOpened.model_validate(event.data)
    await upsert(conn, episodes, "episode_id", {
        **e.model_dump(), "tenant_id": event.tenant_id, "status": "open"})


@front_desk.on(TherapistRegistered.event_type)
async def _therapist(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = TherapistRegistered.model_validate(event.data)
    await upsert(conn, therapists, "therapist_id", {
        "therapist_id": e.therapist_id, "tenant_id": event.tenant_id,
        "location_ids": e.location_ids, "registered_at": e.registered_at,
        "display_name": e.display_name})


@front_desk.on(AppointmentBooked.event_type)
async def _booked(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = AppointmentBooked.model_validate(event.data)
    async with _one_at_a_time(e.starts_at):
        await upsert(conn, appointments, "appointment_id", {
            **e.model_dump(), "tenant_id": event.tenant_id, "status": "booked"})


@front_desk.on(AppointmentRescheduled.event_type)
async def _rescheduled(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = AppointmentRescheduled.model_validate(event.data)
    async with _one_at_a_time(e.starts_at):
        await _set_status(conn, e.appointment_id, therapist_id=e.therapist_id,
                          starts_at=e.starts_at, ends_at=e.ends_at, reminded_at=None)


@asynccontextmanager
async def _one_at_a_time(starts_at: datetime) -> AsyncIterator[None]:
    """The exclusion constraints' verdict as a 409; the command's transaction (events and
    outbox included) rolls back with it."""
    try:
        yield
    except (IntegrityError, asyncpg.ExclusionViolationError) as exc:
        # From SQLAlchemy's statements wrapped, from the driver's as they are.
        if any(name in str(getattr(exc, "orig", exc)) for name in ONE_AT_A_TIME):
            raise SlotTakenError("the therapist or the patient is already booked then",
                                 starts_at=starts_at.isoformat()) from None
        raise


@front_desk.on(AppointmentReminderDue.event_type)
async def _reminded(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = AppointmentReminderDue.model_validate(event.data)
    await _set_status(conn, e.appointment_id, reminded_at=e.due_at)


@front_desk.on(LocationHoursSet.event_type)
async def _opening_hours(conn: AsyncConnection, event: RecordedEvent) -> None:
    await conn.execute(locations.update()
                       .where(locations.c.location_id == event.data["location_id"])
                       .values(opening_hours=event.data["opening_hours"]))


@front_desk.on(LocationClosureAdded.event_type)
async def _closure(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = LocationClosureAdded.model_validate(event.data)
    await upsert(conn, location_closures, "closure_id", {
        **e.model_dump(exclude={"added_at"}), "tenant_id": event.tenant_id})


@front_desk.on(TherapistHoursSet.event_type)
async def _working_hours(conn: AsyncConnection, event: RecordedEvent) -> None:
    row = {"therapist_id": event.data["therapist_id"], "location_id": event.data["location_id"],
           "tenant_id": event.tenant_id, "working_hours": event.data["working_hours"]}
    await upsert(conn, therapist_hours, ("therapist_id", "location_id"), row)


@front_desk.on(TherapistTimeOffAdded.event_type)
async def _time_off(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = TherapistTimeOffAdded.model_validate(event.data)
    await upsert(conn, therapist_time_off, "time_off_id", {
        **e.model_dump(exclude={"added_at"}), "tenant_id": event.tenant_id})


@front_desk.on(AppointmentTypeConfigured.event_type)
async def _appointment_type(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = AppointmentTypeConfigured.model_validate(event.data)
    row = {"tenant_id": event.tenant_id, "appointment_type": e.appointment_type,
           "minutes": e.minutes}
    await upsert(conn, appointment_types, ("tenant_id", "appointment_type"), row)


@front_desk.on(PatientConsentRecorded.event_type)
async def _consent(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = PatientConsentRecorded.model_validate(event.data)
    row = {**e.model_dump(), "partner": e.partner or "", "tenant_id": event.tenant_id}
    await upsert(conn, patient_consents, ("patient_id", "consent", "partner"), row)


@front_desk.on(EpisodeClosed.event_type)
async def _episode_closed(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = EpisodeClosed.model_validate(event.data)
    await conn.execute(episodes.update().where(episodes.c.episode_id == e.episode_id)
                       .values(status="closed", closed_at=e.closed_at))


@front_desk.on(WaitlistJoined.event_type)
async def _waitlist_joined(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = WaitlistJoined.model_validate(event.data)
    await upsert(conn, waitlist, "entry_id", {**e.model_dump(), "tenant_id": event.tenant_id,
                                               "status": "waiting"})


@front_desk.on(WaitlistSlotOffered.event_type)
async def _waitlist_offered(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = WaitlistSlotOffered.model_validate(event.data)
    await conn.execute(waitlist.update().where(waitlist.c.entry_id == e.entry_id).values(
        status="offered", offered_therapist_id=e.therapist_id, offered_starts_at=e.starts_at,
        offered_at=e.offered_at))


@front_desk.on(WaitlistLeft.event_type)
async def _waitlist_left(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = WaitlistLeft.model_validate(event.data)
    await conn.execute(waitlist.update().where(waitlist.c.entry_id == e.entry_id)
                       .values(status=e.reason, left_at=e.left_at))


@front_desk.on(AppointmentCancelled.event_type)
async def _cancelled(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = AppointmentCancelled.model_validate(event.data)
    await _set_status(conn, e.appointment_id, status="cancelled", late_cancel=e.late,
                      cancelled_at=e.cancelled_at)


async def _set_status(conn: AsyncConnection, appointment_id: object, **values: object) -> None:
    await conn.execute(appointments.update()
                       .where(appointments.c.appointment_id == appointment_id).values(**values))


@front_desk.on(AppointmentCheckedIn.event_type)
async def _checked_in(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = AppointmentCheckedIn.model_validate(event.data)
    await _set_status(conn, e.appointment_id, status="checked_in", checked_in_at=e.at)


@front_desk.on(AppointmentCompleted.event_type)
async def _completed(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = AppointmentCompleted.model_validate(event.data)
    await _set_status(conn, e.appointment_id, status="completed", finished_at=e.at)


@front_desk.on(AppointmentNoShow.event_type)
async def _no_show(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = AppointmentNoShow.model_validate(event.data)
    await _set_status(conn, e.appointment_id, status="no_show", finished_at=e.at)


@front_desk.on(AppointmentReversed.event_type)
async def _reversed(conn: AsyncConnection, event: RecordedEvent) -> None:
    # Not a holding status: a completion recorded in error is no session, so its hour is free.
    e = AppointmentReversed.model_validate(event.data)
    await _set_status(conn, e.appointment_id, status="reversed")
