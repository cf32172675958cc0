"""Booking's public events, version 1.

Payloads carry identifiers and codes. Patient names and contact details live only in
booking's own database: partners learn them through a granted, consent-checked channel.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
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
    late_cancel_hours: int = Field(
        default=24, ge=0, le=168,
        description="A cancellation closer than this to the start is a late cancellation")


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


class TherapistRegistered(EventData):
    event_type: ClassVar[str] = "kinetic.booking.therapist.registered.v1"
    aggregate_id_field: ClassVar[str] = "therapist_id"

    therapist_id: UUID
    location_ids: list[UUID] = Field(min_length=1, description="Where the therapist works")
    registered_at: datetime


AppointmentType = Literal["initial_assessment", "treatment_session", "reassessment"]


class _AppointmentEvent(EventData):
    """Every appointment event names who and where, so a consumer needs no lookup."""

    aggregate_id_field: ClassVar[str] = "appointment_id"

    appointment_id: UUID
    patient_id: UUID
    therapist_id: UUID
    location_id: UUID


class AppointmentBooked(_AppointmentEvent):
    """A one-hour (by default) one-on-one session. Times are UTC instants; show them in the
    location's timezone."""

    event_type: ClassVar[str] = "kinetic.booking.appointment.booked.v1"

    episode_id: UUID | None = None
    appointment_type: AppointmentType
    starts_at: datetime
    ends_at: datetime
    booked_at: datetime


class AppointmentCancelled(_AppointmentEvent):
    event_type: ClassVar[str] = "kinetic.booking.appointment.cancelled.v1"

    starts_at: datetime
    late: bool = Field(description="Inside the location's late-cancellation window")
    cancelled_at: datetime


class _AppointmentOutcome(_AppointmentEvent):
    """What happened at a booked session."""

    episode_id: UUID | None = None
    appointment_type: AppointmentType
    starts_at: datetime
    at: datetime


class AppointmentCheckedIn(_AppointmentOutcome):
    event_type: ClassVar[str] = "kinetic.booking.appointment.checked_in.v1"


class AppointmentCompleted(_AppointmentOutcome):
    event_type: ClassVar[str] = "kinetic.booking.appointment.completed.v1"


class AppointmentNoShow(_AppointmentOutcome):
    event_type: ClassVar[str] = "kinetic.booking.appointment.no_show.v1"


EVENTS: list[type[EventData]] = [LocationRegistered, PatientRegistered, EpisodeOpened,
                                 TherapistRegistered, AppointmentBooked, AppointmentCancelled,
                                 AppointmentCheckedIn, AppointmentCompleted, AppointmentNoShow]
