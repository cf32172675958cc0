"""Booking's public events, version 1.

Payloads carry identifiers and codes. Patient names and contact details live only in
booking's own database: partners learn them through a granted, consent-checked channel.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from kinetic_contracts.envelope import EventData


class LocationRegistered(EventData):
    event_type: ClassVar[str] = "kinetic.booking.location.registered.v1"
    aggregate_id_field: ClassVar[str] = "location_id"

    location_id: UUID
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(description="IANA timezone name, e.g. Europe/Berlin")
    registered_at: datetime


class PatientRegistered(EventData):
    event_type: ClassVar[str] = "kinetic.booking.patient.registered.v1"
    aggregate_id_field: ClassVar[str] = "patient_id"

    patient_id: UUID
    home_location_id: UUID
    birth_year: int = Field(ge=1900, le=2200, description="Year only: enough for age bands")
    registered_at: datetime


class EpisodeOpened(EventData):
    event_type: ClassVar[str] = "kinetic.booking.episode.opened.v1"
    aggregate_id_field: ClassVar[str] = "episode_id"

    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    symptom_site: str = Field(min_length=1, max_length=100,
                              description="Where it hurts, as a short code, e.g. knee_anterior")
    referral: bool = False
    goal_target_date: date | None = None
    opened_at: datetime


EVENTS: list[type[EventData]] = [LocationRegistered, PatientRegistered, EpisodeOpened]
