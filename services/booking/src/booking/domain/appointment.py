"""Appointment: one therapist with one patient for an hour (by default): booked,
rescheduled, reminded of, cancelled, checked in, completed or missed; and, when what was
recorded was an error or its fee is waived, reversed. That nobody is double-booked is a
cross-appointment invariant: the database enforces it with exclusion constraints on the
appointments read model, written in the same transaction as the events (see
adapters/projections.py), so it holds under any concurrency.
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
    EpisodeClosedError,
    EpisodeNotFoundError,
    EpisodeOfAnotherPatientError,
    FirstSessionIsAssessmentError,
    InThePastError,
    LocationClosedError,
    LocationNotFoundError,
    NotAtLocationError,
    OutsideOpeningHoursError,
    OutsideWorkingHoursError,
    PatientNotFoundError,
    TherapistNotFoundError,
    TherapistTimeOffError,
    WrongAppointmentStateError,
)
from booking.domain.location import Location
from booking.domain.schedule import Unbookable, why_unbookable
from booking.domain.therapist import Therapist
from kinetic_contracts.booking.v1.events import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentCheckedIn,
    AppointmentCompleted,
    AppointmentNoShow,
    AppointmentReminderDue,
    AppointmentRescheduled,
    AppointmentReversed,
    AppointmentType,
)

DEFAULT_MINUTES = 60
# Sessions in these states hold their hour (the exclusion constraints' WHERE clause).
HOLDING_STATUSES = ("booked", "checked_in", "completed")
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
    location: Location | None
    therapist: Therapist | None
    episode: EpisodeFacts | None = None  # None: no such episode (or none named)


class EpisodeFacts(BaseModel):
    """What booking into an episode depends on, read from the episode's stream and the
    appointments read model in the command's transaction."""

    model_config = ConfigDict(frozen=True)
    patient_id: UUID
    closed: bool
    # The earliest start of the episode's sessions that hold their hour (booked, checked in
    # or completed), the session being moved left out: initial assessments, and the others.
    first_assessment_at: datetime | None = None
    first_session_at: datetime | None = None


class RescheduleAppointment(BaseModel):
    model_config = ConfigDict(frozen=True)
    appointment_id: UUID
    starts_at: datetime
    now: datetime
    location: Location | None
    therapist: Therapist | None  # the therapist from now on (the same one, unless changed)
    episode: EpisodeFacts | None = None  # the session's episode of care, if it has one


class EmitReminder(BaseModel):
    """From the reminder workflow: the session starting at ``for_starts_at`` is due a
    reminder. Stale (moved, cancelled) or repeated reminders decide nothing."""

    model_config = ConfigDict(frozen=True)
    appointment_id: UUID
    for_starts_at: datetime
    lead_minutes: int
    now: datetime


class CancelAppointment(BaseModel):
    model_config = ConfigDict(frozen=True)
    appointment_id: UUID
    now: datetime
    late_cancel_hours: int
    # The clinic's own cancellation (a discharge) is never late, whatever the window: the
    # patient did nothing to owe a fee, and billing charges none for it.
    by_clinic: bool = False


class RecordArrival(BaseModel):
    """Check-in, completion or no-show, as the front desk or therapist records it."""

    model_config = ConfigDict(frozen=True)
    appointment_id: UUID
    outcome: Literal["checked_in", "completed", "no_show"]
    now: datetime


class ReverseOutcome(BaseModel):
    """Undo a completion or no-show recorded in error, or waive a late cancellation's fee."""

    model_config = ConfigDict(frozen=True)
    appointment_id: UUID
    reason_code: Literal["recorded_in_error", "fee_waived"]
    now: datetime


class NoAppointment(BaseModel):
    model_config = ConfigDict(frozen=True)


class Booked(BaseModel):
    model_config = ConfigDict(frozen=True)
    booked: AppointmentBooked  # as it stands now: rescheduling updates the time and therapist
    reminded_for: datetime | None = None


class Cancelled(BaseModel):
    model_config = ConfigDict(frozen=True)
    booked: AppointmentBooked
    late: bool  # only a late cancellation carries a fee that a reversal waives


class CheckedIn(BaseModel):
    model_config = ConfigDict(frozen=True)
    booked: AppointmentBooked


class Finished(BaseModel):
    """Completed or no-show: nothing more happens to it."""

    model_config = ConfigDict(frozen=True)
    booked: AppointmentBooked
    outcome: Literal["completed", "no_show"]


class Reversed(BaseModel):
    """What was recorded (``outcome``) is undone: nothing more happens to it."""

    model_config = ConfigDict(frozen=True)
    booked: AppointmentBooked
    outcome: Literal["completed", "no_show", "cancelled"]


AppointmentState = NoAppointment | Booked | Cancelled | CheckedIn | Finished | Reversed


class ArriveAfterNoShow(BaseModel):
    """The patient recorded as a no-show did come (late, or the no-show was recorded in
    error): a replacement appointment takes the no-show's hour, checked in. It is a new
    appointment, not the no-show brought back, because an appointment's outcome is charged
    once, ever: billing credits the no-show's fee on its reversal and charges the replacement
    as the session it is."""

    model_config = ConfigDict(frozen=True)
    appointment_id: UUID  # the replacement's
    no_show: AppointmentState  # the appointment recorded as a no-show, as it stands
    now: datetime


AppointmentEvent = (AppointmentBooked | AppointmentRescheduled | AppointmentReminderDue
                    | AppointmentCancelled | AppointmentCheckedIn | AppointmentCompleted
                    | AppointmentNoShow | AppointmentReversed)
AppointmentCommand = (BookAppointment | RescheduleAppointment | EmitReminder | CancelAppointment
                      | RecordArrival | ReverseOutcome | ArriveAfterNoShow)
INITIAL: AppointmentState = NoAppointment()
EVENT_TYPES: dict[str, type[AppointmentEvent]] = {
    e.event_type: e for e in (AppointmentBooked, AppointmentRescheduled, AppointmentReminderDue,
                              AppointmentCancelled, AppointmentCheckedIn, AppointmentCompleted,
                              AppointmentNoShow, AppointmentReversed)
}


def evolve(state: AppointmentState, event: AppointmentEvent) -> AppointmentState:
    match event:
        case AppointmentBooked():
            return Booked(booked=event)
        case AppointmentRescheduled():
            assert isinstance(state, Booked)
            return Booked(booked=state.booked.model_copy(update={
                "therapist_id": event.therapist_id, "starts_at": event.starts_at,
                "ends_at": event.ends_at}))
        case AppointmentReminderDue():
            assert isinstance(state, Booked)
            return state.model_copy(update={"reminded_for": event.starts_at})
        case AppointmentCancelled():
            assert not isinstance(state, NoAppointment)
            return Cancelled(booked=state.booked, late=event.late)
        case AppointmentCheckedIn():
            assert not isinstance(state, NoAppointment)
            return CheckedIn(booked=state.booked)
        case AppointmentCompleted():
            assert not isinstance(state, NoAppointment)
            return Finished(booked=state.booked, outcome="completed")
        case AppointmentNoShow():
            assert not isinstance(state, NoAppointment)
            return Finished(booked=state.booked, outcome="no_show")
        case AppointmentReversed():
            assert not isinstance(state, NoAppointment)
            return Reversed(booked=state.booked, outcome=event.reversed_outcome)
        case _:
            assert_never(event)


def decide(command: AppointmentCommand, state: AppointmentState) -> list[AppointmentEvent]:
    match command:
        case BookAppointment():
            return _book(command, state)
        case RescheduleAppointment():
            return _reschedule(command, state)
        case EmitReminder():
            return _remind(command, state)
        case CancelAppointment():
            return _cancel(command, state)
        case RecordArrival():
            return _arrival(command, state)
        case ReverseOutcome():
            return _reverse(command, state)
        case ArriveAfterNoShow():
            return _arrive_after_no_show(command, state)
        case _:
            assert_never(command)


def _book(c: BookAppointment, state: AppointmentState) -> list[AppointmentEvent]:
    if not isinstance(state, NoAppointment):
        raise AlreadyExistsError(f"appointment {c.appointment_id} already exists")
    if not c.patient_exists:
        raise PatientNotFoundError(f"patient {c.patient_id} does not exist")
    if c.episode_id is not None:
        _check_episode(c)
    ends_at = c.starts_at + timedelta(minutes=c.minutes)
    _check_bookable(c.location_id, c.therapist_id, c.location, c.therapist, c.starts_at,
                    ends_at, c.now)
    return [AppointmentBooked(
        appointment_id=c.appointment_id, patient_id=c.patient_id, therapist_id=c.therapist_id,
        location_id=c.location_id, episode_id=c.episode_id, appointment_type=c.appointment_type,
        starts_at=c.starts_at, ends_at=ends_at, booked_at=c.now)]


def _check_episode(c: BookAppointment) -> None:
    if c.episode is None:
        raise EpisodeNotFoundError(f"episode {c.episode_id} does not exist")
    if c.episode.patient_id != c.patient_id:
        raise EpisodeOfAnotherPatientError("the episode of care belongs to another patient")
    if c.episode.closed:
        raise EpisodeClosedError("the episode of care is closed: open a new one")
    _check_assessment_first(c.episode, c.appointment_type, c.starts_at)


def _check_assessment_first(episode: EpisodeFacts, appointment_type: AppointmentType,
                            starts_at: datetime) -> None:
    """An episode of care starts with its initial assessment: every other session of it
    starts after one, whichever is booked or moved first."""
    if appointment_type == "initial_assessment":
        first_assessment = min(t for t in (episode.first_assessment_at, starts_at) if t)
        if episode.first_session_at is not None and episode.first_session_at <= first_assessment:
            raise FirstSessionIsAssessmentError(
                "a session of this episode is booked before that time: the initial "
                "assessment comes first")
    elif episode.first_assessment_at is None or episode.first_assessment_at >= starts_at:
        raise FirstSessionIsAssessmentError(
            "an episode of care starts with an initial assessment: book one before this "
            "session")


_UNBOOKABLE = {
    Unbookable.LOCATION_CLOSED: LocationClosedError,
    Unbookable.OUTSIDE_OPENING_HOURS: OutsideOpeningHoursError,
    Unbookable.OUTSIDE_WORKING_HOURS: OutsideWorkingHoursError,
    Unbookable.TIME_OFF: TherapistTimeOffError,
}


def _check_bookable(location_id: UUID, therapist_id: UUID, location: Location | None,
                    therapist: Therapist | None, starts_at: datetime, ends_at: datetime,
                    now: datetime) -> None:
    if location is None:
        raise LocationNotFoundError(f"location {location_id} does not exist")
    if therapist is None:
        raise TherapistNotFoundError(f"therapist {therapist_id} does not exist")
    if location_id not in therapist.location_ids:
        raise NotAtLocationError("the therapist does not work at that location")
    if starts_at <= now:
        raise InThePastError("the appointment would start in the past")
    reason = why_unbookable(starts_at, ends_at, location.calendar(),
                            therapist.calendar(location_id))
    if reason is not None:
        raise _UNBOOKABLE[reason](reason.value, starts_at=starts_at.isoformat())


def _reschedule(c: RescheduleAppointment, state: AppointmentState) -> list[AppointmentEvent]:
    if isinstance(state, NoAppointment):
        raise AppointmentNotFoundError(f"appointment {c.appointment_id} not found")
    if not isinstance(state, Booked):
        raise WrongAppointmentStateError("only a booked appointment can be moved")
    b = state.booked
    therapist_id = c.therapist.therapist_id if c.therapist else b.therapist_id
    if therapist_id == b.therapist_id and c.starts_at == b.starts_at:
        return []
    if c.now >= b.starts_at:
        # As for a cancellation: from its start on, a session is checked in or a no-show, and
        # moving it away would drop the no-show (and its fee) the rules ask for.
        raise WrongAppointmentStateError(
            "a session that has started or ended cannot be moved: record it as a no-show or "
            "check the patient in")
    ends_at = c.starts_at + (b.ends_at - b.starts_at)
    _check_bookable(b.location_id, therapist_id, c.location, c.therapist, c.starts_at, ends_at,
                    c.now)
    if c.episode is not None:
        if c.episode.closed:
            raise EpisodeClosedError("the episode of care is closed: its sessions stay where "
                                     "they are")
        _check_assessment_first(c.episode, b.appointment_type, c.starts_at)
    return [AppointmentRescheduled(
        **{**_who_and_where(b), "therapist_id": therapist_id}, episode_id=b.episode_id,
        appointment_type=b.appointment_type, previous_therapist_id=b.therapist_id,
        previous_starts_at=b.starts_at, starts_at=c.starts_at, ends_at=ends_at,
        rescheduled_at=c.now)]


def _remind(c: EmitReminder, state: AppointmentState) -> list[AppointmentEvent]:
    if not isinstance(state, Booked) or state.booked.starts_at != c.for_starts_at \
            or state.reminded_for == c.for_starts_at:
        return []
    b = state.booked
    return [AppointmentReminderDue(**_who_and_where(b), appointment_type=b.appointment_type,
                                   starts_at=b.starts_at, lead_minutes=c.lead_minutes,
                                   due_at=c.now)]


def _cancel(c: CancelAppointment, state: AppointmentState) -> list[AppointmentEvent]:
    if isinstance(state, NoAppointment):
        raise AppointmentNotFoundError(f"appointment {c.appointment_id} not found")
    if isinstance(state, Cancelled) or (isinstance(state, Reversed)
                                        and state.outcome == "cancelled"):
        raise AlreadyCancelledError(f"appointment {c.appointment_id} is already cancelled")
    if not isinstance(state, Booked) or c.now >= state.booked.starts_at:
        raise WrongAppointmentStateError(
            "a session that has started or ended cannot be cancelled: record it as a no-show "
            "or check the patient in")
    b = state.booked
    late = not c.by_clinic and b.starts_at - c.now < timedelta(hours=c.late_cancel_hours)
    return [AppointmentCancelled(**_who_and_where(b), starts_at=b.starts_at, late=late,
                                 cancelled_at=c.now, by_clinic=c.by_clinic)]


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


def _reverse(c: ReverseOutcome, state: AppointmentState) -> list[AppointmentEvent]:
    if isinstance(state, NoAppointment):
        raise AppointmentNotFoundError(f"appointment {c.appointment_id} not found")
    if isinstance(state, Reversed):
        return []  # a retried reversal: billing must not credit twice
    reversed_outcome = _reversible(state)
    b = state.booked
    return [AppointmentReversed(**_who_and_where(b), episode_id=b.episode_id,
                                appointment_type=b.appointment_type, starts_at=b.starts_at,
                                reversed_outcome=reversed_outcome, reason_code=c.reason_code,
                                reversed_at=c.now)]


def recorded_no_show(state: AppointmentState) -> AppointmentBooked:
    """The booking of an appointment recorded as a no-show (reversed since or not), which
    an arrival after all may replace; any other appointment is refused."""
    if isinstance(state, NoAppointment):
        raise AppointmentNotFoundError("appointment not found")
    if not isinstance(state, Finished | Reversed) or state.outcome != "no_show":
        raise WrongAppointmentStateError(
            "only a session recorded as a no-show can be replaced by an arrival: check the "
            "patient in instead")
    return state.booked


def _arrive_after_no_show(c: ArriveAfterNoShow, state: AppointmentState
                          ) -> list[AppointmentEvent]:
    missed = recorded_no_show(c.no_show)
    if not isinstance(state, NoAppointment):
        return []  # replaced already: a retried arrival books nothing twice
    b = missed.model_copy(update={"appointment_id": c.appointment_id, "booked_at": c.now,
                                  "replaces": missed.appointment_id})
    return [b, AppointmentCheckedIn(**_who_and_where(b), episode_id=b.episode_id,
                                    appointment_type=b.appointment_type,
                                    starts_at=b.starts_at, at=c.now)]


def _reversible(state: Booked | CheckedIn | Cancelled | Finished
                ) -> Literal["completed", "no_show", "cancelled"]:
    """The recorded outcome a reversal undoes; only those that may carry a charge qualify."""
    if isinstance(state, Finished):
        return state.outcome
    if isinstance(state, Cancelled):
        if not state.late:
            raise WrongAppointmentStateError(
                "only a late cancellation can be reversed: an earlier one carries no fee")
        return "cancelled"
    raise WrongAppointmentStateError(
        "only a completed, no-show or late-cancelled appointment can be reversed: "
        "cancel or record the session instead")


def _who_and_where(b: AppointmentBooked) -> dict[str, UUID]:
    return {"appointment_id": b.appointment_id, "patient_id": b.patient_id,
            "therapist_id": b.therapist_id, "location_id": b.location_id}
