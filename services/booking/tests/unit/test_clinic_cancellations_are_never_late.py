"""A discharge cancels the sessions booked ahead as the clinic's own cancellation: never late,
whatever the location's window, and marked so billing charges no fee for it (a fee the front
desk could not waive, since only a late cancellation can be reversed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from booking.domain import appointment
from booking.domain.errors import WrongAppointmentStateError
from booking.domain.location import Location
from booking.domain.therapist import Therapist
from kinetic_contracts.booking.v1.events import AppointmentCancelled

NOW = datetime(2027, 3, 1, 17, 0, tzinfo=UTC)
LOCATION, THERAPIST = uuid.uuid4(), uuid.uuid4()


def booked_for(starts_at: datetime) -> appointment.AppointmentState:
    [event] = appointment.decide(appointment.BookAppointment(
        appointment_id=uuid.uuid4(), patient_id=uuid.uuid4(), therapist_id=THERAPIST,
        location_id=LOCATION, appointment_type="initial_assessment", starts_at=starts_at,
        now=NOW - timedelta(days=7), patient_exists=True,
        location=Location(location_id=LOCATION, name="Riverside", timezone="Europe/Berlin"),
        therapist=Therapist(therapist_id=THERAPIST, location_ids=frozenset({LOCATION}))),
        appointment.INITIAL)
    return appointment.evolve(appointment.INITIAL, event)


def cancel(state: appointment.AppointmentState, *, by_clinic: bool
           ) -> AppointmentCancelled:
    [event] = appointment.decide(appointment.CancelAppointment(
        appointment_id=state.booked.appointment_id, now=NOW, late_cancel_hours=24,
        by_clinic=by_clinic), state)
    assert isinstance(event, AppointmentCancelled)
    return event


def test_the_clinics_cancellation_inside_the_window_is_not_late_and_says_by_clinic():
    tomorrow_morning = booked_for(NOW + timedelta(hours=16))
    event = cancel(tomorrow_morning, by_clinic=True)
    assert (event.late, event.by_clinic) == (False, True)


def test_the_patients_cancellation_inside_the_window_stays_late_and_not_by_clinic():
    event = cancel(booked_for(NOW + timedelta(hours=16)), by_clinic=False)
    assert (event.late, event.by_clinic) == (True, False)


def test_the_clinics_cancellation_has_no_fee_to_waive():
    state = booked_for(NOW + timedelta(hours=16))
    cancelled = appointment.evolve(state, cancel(state, by_clinic=True))
    with pytest.raises(WrongAppointmentStateError):
        appointment.decide(appointment.ReverseOutcome(
            appointment_id=state.booked.appointment_id, reason_code="fee_waived",
            now=NOW + timedelta(hours=1)), cancelled)


def test_a_cancellation_recorded_before_by_clinic_existed_reads_as_the_patients():
    old = cancel(booked_for(NOW + timedelta(hours=16)), by_clinic=False).model_dump(
        mode="json", exclude={"by_clinic"})
    assert AppointmentCancelled.model_validate(old).by_clinic is False
