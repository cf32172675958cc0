"""Appointment: one therapist with one patient for an hour (by default), booked and
cancelled. That nobody is double-booked is a cross-appointment invariant: the database
enforces it with exclusion constraints on the appointments read model, written in the same
transaction as the events (see adapters/projections.py), so it holds under any concurrency.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, assert_never
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from booking.domain.errors import (
    AlreadyCancelledError,
    AlreadyExistsError,
    AppointmentNotFoundError,
    WrongAppointmentStateError,
    InThePastError,
    NotAtLocationError,
    PatientNotFoundError,
    TherapistNotFoundError,
)
from kinetic_contracts.booking.v1.events import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentCheckedIn,
    AppointmentCompleted,
    AppointmentNoShow,
    AppointmentType,
)

DEFAULT_MINUTES = 60
CHECK_IN_OPENS = timedelta(hours=1)  # the front desk checks a patient in from an hour before


class BookAppointment(BaseModel):
    model_config = ConfigDict(frozen=True)
    appointment_id: UUID
    patient_id: UUID
    therapist_id: UUID
    location_id: UUID
    episode_id: UUID | None = None
    appointment_type: AppointmentType
    starts_at: datetime
    minutes: int = Field(default=DEFAULT_MINUTES, ge=15, le=240)
    now: datetime
    patient_exists: bool
    therapist_locations: frozenset[UUID] | None  # None: no such therapist


class CancelAppointment(BaseModel):
    model_config = ConfigDict(frozen=True)
    appointment_id: UUID
    now: datetime
    late_cancel_hours: int


class RecordArrival(BaseModel):
    """Check-in, completion or no-show, as the front desk or therapist records it."""

    model_config = ConfigDict(frozen=True)
    appointment_id: UUID
    outcome: Literal["checked_in", "completed", "no_show"]
    now: datetime


class NoAppointment(BaseModel):
    model_config = ConfigDict(frozen=True)


class Booked(BaseModel):
    model_config = ConfigDict(frozen=True)
    booked: AppointmentBooked


class Cancelled(BaseModel):
    model_config = ConfigDict(frozen=True)
    booked: AppointmentBooked


class CheckedIn(BaseModel):
    model_config = ConfigDict(frozen=True)
    booked: AppointmentBooked


class Finished(BaseModel):
    """Completed or no-show: nothing more happens to it."""

    model_config = ConfigDict(frozen=True)
    booked: AppointmentBooked
    outcome: str


AppointmentState = NoAppointment | Booked | Cancelled | CheckedIn | Finished
AppointmentEvent = (AppointmentBooked | AppointmentCancelled | AppointmentCheckedIn
                    | AppointmentCompleted | AppointmentNoShow)
INITIAL: AppointmentState = NoAppointment()
EVENT_TYPES: dict[str, type[AppointmentEvent]] = {
    e.event_type: e for e in (AppointmentBooked, AppointmentCancelled, AppointmentCheckedIn,
                              AppointmentCompleted, AppointmentNoShow)
}


def evolve(state: AppointmentState, event: AppointmentEvent) -> AppointmentState:
    match event:
        case AppointmentBooked():
            return Booked(booked=event)
        case AppointmentCancelled():
            assert not isinstance(state, NoAppointment)
            return Cancelled(booked=state.booked)
        case AppointmentCheckedIn():
            assert not isinstance(state, NoAppointment)
            return CheckedIn(booked=state.booked)
        case AppointmentCompleted() | AppointmentNoShow():
            assert not isinstance(state, NoAppointment)
            return Finished(booked=state.booked, outcome=event.event_type)
        case _:
            assert_never(event)


def decide(command: BookAppointment | CancelAppointment | RecordArrival,
           state: AppointmentState) -> list[AppointmentEvent]:
    match command:
        case BookAppointment():
            return _book(command, state)
        case CancelAppointment():
            return _cancel(command, state)
        case RecordArrival():
            return _arrival(command, state)
        case _:
            assert_never(command)


def _book(c: BookAppointment, state: AppointmentState) -> list[AppointmentEvent]:
    if not isinstance(state, NoAppointment):
        raise AlreadyExistsError(f"appointment {c.appointment_id} already exists")
    if not c.patient_exists:
        raise PatientNotFoundError(f"patient {c.patient_id} does not exist")
    if c.therapist_locations is None:
        raise TherapistNotFoundError(f"therapist {c.therapist_id} does not exist")
    if c.location_id not in c.therapist_locations:
        raise NotAtLocationError("the therapist does not work at that location")
    if c.starts_at <= c.now:
        raise InThePastError("the appointment would start in the past")
    return [AppointmentBooked(
        appointment_id=c.appointment_id, patient_id=c.patient_id, therapist_id=c.therapist_id,
        location_id=c.location_id, episode_id=c.episode_id, appointment_type=c.appointment_type,
        starts_at=c.starts_at, ends_at=c.starts_at + timedelta(minutes=c.minutes),
        booked_at=c.now)]


def _cancel(c: CancelAppointment, state: AppointmentState) -> list[AppointmentEvent]:
    if isinstance(state, NoAppointment):
        raise AppointmentNotFoundError(f"appointment {c.appointment_id} not found")
    if isinstance(state, Cancelled):
        raise AlreadyCancelledError(f"appointment {c.appointment_id} is already cancelled")
    if not isinstance(state, Booked):
        raise WrongAppointmentStateError("a session that has started or ended cannot be cancelled")
    b = state.booked
    late = b.starts_at - c.now < timedelta(hours=c.late_cancel_hours)
    return [AppointmentCancelled(**_who_and_where(b), starts_at=b.starts_at, late=late,
                                 cancelled_at=c.now)]



_OUTCOMES = {"checked_in": AppointmentCheckedIn, "completed": AppointmentCompleted,
             "no_show": AppointmentNoShow}


def _arrival(c: RecordArrival, state: AppointmentState) -> list[AppointmentEvent]:
    if isinstance(state, NoAppointment):
        raise AppointmentNotFoundError(f"appointment {c.appointment_id} not found")
    b = state.booked
    if c.outcome == "checked_in":
        if not isinstance(state, Booked):
            raise WrongAppointmentStateError("only a booked appointment can be checked in")
        if c.now < b.starts_at - CHECK_IN_OPENS:
            raise WrongAppointmentStateError("check-in opens an hour before the session")
    elif c.outcome == "completed":
        if not isinstance(state, CheckedIn):
            raise WrongAppointmentStateError("a session is completed after check-in")
    elif not isinstance(state, Booked) or c.now < b.starts_at:
        raise WrongAppointmentStateError("a no-show is recorded after the start, without check-in")
    return [_OUTCOMES[c.outcome](**_who_and_where(b), episode_id=b.episode_id,
                                 appointment_type=b.appointment_type, starts_at=b.starts_at,
                                 at=c.now)]


def _who_and_where(b: AppointmentBooked) -> dict[str, UUID]:
    return {"appointment_id": b.appointment_id, "patient_id": b.patient_id,
            "therapist_id": b.therapist_id, "location_id": b.location_id}
