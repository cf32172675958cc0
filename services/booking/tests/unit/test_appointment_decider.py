"""The appointment decider as given/when/then: pure, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from booking.domain import appointment
from booking.domain.errors import (
    AlreadyCancelledError,
    InThePastError,
    NotAtLocationError,
    TherapistNotFoundError,
    WrongAppointmentStateError,
)

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
LOCATION = uuid.uuid4()


def book(**overrides) -> appointment.BookAppointment:
    values = dict(appointment_id=uuid.uuid4(), patient_id=uuid.uuid4(),
                  therapist_id=uuid.uuid4(), location_id=LOCATION,
                  appointment_type="initial_assessment", starts_at=NOW + timedelta(days=1),
                  now=NOW, patient_exists=True, therapist_locations=frozenset({LOCATION}))
    return appointment.BookAppointment(**(values | overrides))


def booked(**overrides) -> appointment.AppointmentState:
    [event] = appointment.decide(book(**overrides), appointment.INITIAL)
    return appointment.evolve(appointment.INITIAL, event)


def cancel(state, *, hours_before: float, window: int = 24):
    starts_at = state.booked.starts_at
    return appointment.decide(appointment.CancelAppointment(
        appointment_id=state.booked.appointment_id, now=starts_at - timedelta(hours=hours_before),
        late_cancel_hours=window), state)


def test_given_free_therapist_when_booked_then_one_hour_session_by_default():
    [event] = appointment.decide(book(), appointment.INITIAL)
    assert event.ends_at - event.starts_at == timedelta(minutes=60)


def test_given_start_in_the_past_when_booked_then_refused():
    with pytest.raises(InThePastError):
        appointment.decide(book(starts_at=NOW - timedelta(minutes=1)), appointment.INITIAL)


def test_given_unknown_therapist_when_booked_then_not_found():
    with pytest.raises(TherapistNotFoundError):
        appointment.decide(book(therapist_locations=None), appointment.INITIAL)


def test_given_therapist_elsewhere_when_booked_then_refused():
    with pytest.raises(NotAtLocationError):
        appointment.decide(book(therapist_locations=frozenset({uuid.uuid4()})),
                           appointment.INITIAL)


def test_given_booked_appointment_when_cancelled_within_24h_then_late_cancel_recorded():
    [event] = cancel(booked(), hours_before=23)
    assert event.late is True


def test_given_booked_appointment_when_cancelled_earlier_than_the_window_then_not_late():
    [event] = cancel(booked(), hours_before=25)
    assert event.late is False


def test_given_a_location_without_late_window_when_cancelled_an_hour_before_then_not_late():
    [event] = cancel(booked(), hours_before=1, window=0)
    assert event.late is False


def test_given_cancelled_appointment_when_cancelled_again_then_conflict():
    state = booked()
    state = appointment.evolve(state, cancel(state, hours_before=48)[0])
    with pytest.raises(AlreadyCancelledError):
        cancel(state, hours_before=47)


def arrive(state, outcome: str, *, minutes_after_start: float):
    now = state.booked.starts_at + timedelta(minutes=minutes_after_start)
    return appointment.decide(appointment.RecordArrival(
        appointment_id=state.booked.appointment_id, outcome=outcome, now=now), state)


def test_given_booked_session_when_checked_in_and_completed_then_both_recorded():
    state = booked()
    state = appointment.evolve(state, arrive(state, "checked_in", minutes_after_start=-10)[0])
    [done] = arrive(state, "completed", minutes_after_start=60)
    assert done.event_type == "kinetic.booking.appointment.completed.v1"


def test_given_booked_session_when_checked_in_two_hours_early_then_refused():
    with pytest.raises(WrongAppointmentStateError):
        arrive(booked(), "checked_in", minutes_after_start=-120)


def test_given_booked_session_when_no_show_after_the_start_then_recorded():
    [event] = arrive(booked(), "no_show", minutes_after_start=15)
    assert event.event_type == "kinetic.booking.appointment.no_show.v1"


def test_given_booked_session_when_no_show_before_the_start_then_refused():
    with pytest.raises(WrongAppointmentStateError):
        arrive(booked(), "no_show", minutes_after_start=-5)


def test_given_checked_in_session_when_cancelled_then_refused():
    state = booked()
    state = appointment.evolve(state, arrive(state, "checked_in", minutes_after_start=-5)[0])
    with pytest.raises(WrongAppointmentStateError):
        cancel(state, hours_before=0.05)
