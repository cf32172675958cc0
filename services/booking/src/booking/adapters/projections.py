"""Booking's read models, kept inline with the events (same transaction)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, DateTime, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.domain.episode import EpisodeOpened
from booking.domain.location import LocationRegistered
from booking.domain.patient import PatientRegistered
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

front_desk = Projection("front-desk", [locations, patients, episodes])


async def _upsert(conn: AsyncConnection, table: Table, key: str, row: dict) -> None:
    # Upsert keeps a rebuild and a live apply identical.
    await conn.execute(insert(table).values(**row)
                       .on_conflict_do_update(index_elements=[key], set_=row))


@front_desk.on(LocationRegistered.event_type)
async def _location(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = LocationRegistered.model_validate(event.data)
    await _upsert(conn, locations, "location_id", {
        "location_id": e.location_id, "tenant_id": event.tenant_id, "name": e.name,
        "timezone": e.timezone, "registered_at": e.registered_at})


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
