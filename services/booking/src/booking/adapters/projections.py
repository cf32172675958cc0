"""Booking's read models, kept inline with the events (same transaction)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.dialects.postgresql import UUID, insert
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
    TherapistRegistered,
)
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
)

therapists = Table(
    "therapists", metadata,
    Column("therapist_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("location_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
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
)

front_desk = Projection("front-desk", [locations, patients, episodes, therapists, appointments])
ONE_AT_A_TIME = ("appointments_therapist_one_at_a_time", "appointments_patient_one_at_a_time")


async def _upsert(conn: AsyncConnection, table: Table, key: str, row: dict) -> None:
    # Upsert keeps a rebuild and a live apply identical.
    await conn.execute(insert(table).values(**row)
                       .on_conflict_do_update(index_elements=[key], set_=row))


@front_desk.on(LocationRegistered.event_type)
async def _location(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = LocationRegistered.model_validate(event.data)
    await _upsert(conn, locations, "location_id", {
        "location_id": e.location_id, "tenant_id": event.tenant_id, "name": e.name,
        "timezone": e.timezone, "registered_at": e.registered_at,
        "late_cancel_hours": e.late_cancel_hours})


@front_desk.on(PatientRegistered.event_type)
async def _patient(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = PatientRegistered.model_validate(event.data)
    await _upsert(conn, patients, "patient_id", {
        **e.model_dump(exclude={"registered_at"}), "tenant_id": event.tenant_id,
        "registered_at": e.registered_at})


@front_desk.on(EpisodeOpened.event_type)
async def _episode(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = EpisodeOpened.model_validate(event.data)
    await _upsert(conn, episodes, "episode_id", {
        **e.model_dump(), "tenant_id": event.tenant_id, "status": "open"})


@front_desk.on(TherapistRegistered.event_type)
async def _therapist(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = TherapistRegistered.model_validate(event.data)
    await _upsert(conn, therapists, "therapist_id", {
        "therapist_id": e.therapist_id, "tenant_id": event.tenant_id,
        "location_ids": e.location_ids, "registered_at": e.registered_at})


@front_desk.on(AppointmentBooked.event_type)
async def _booked(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = AppointmentBooked.model_validate(event.data)
    try:
        await _upsert(conn, appointments, "appointment_id", {
            **e.model_dump(), "tenant_id": event.tenant_id, "status": "booked"})
    except IntegrityError as exc:  # the whole command's transaction rolls back with it
        if any(name in str(exc.orig) for name in ONE_AT_A_TIME):
            raise SlotTakenError("the therapist or the patient is already booked then",
                                 starts_at=e.starts_at.isoformat()) from None
        raise


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
