"""Billing charges no late-cancellation fee for a cancellation the clinic made (a discharge
cancelling the sessions booked ahead), however close to the start and whatever its own
window says; a patient's cancellation is judged by billing's window as before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from billing.domain.charge import cancellation_chargeable
from kinetic_contracts.booking.v1.events import AppointmentCancelled

STARTS = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)


def cancelled(*, hours_before: float, late: bool, by_clinic: bool = False
              ) -> AppointmentCancelled:
    return AppointmentCancelled(
        appointment_id=uuid.uuid4(), patient_id=uuid.uuid4(), therapist_id=uuid.uuid4(),
        location_id=uuid.uuid4(), starts_at=STARTS, late=late,
        cancelled_at=STARTS - timedelta(hours=hours_before), by_clinic=by_clinic)


def test_a_discharge_the_evening_before_costs_no_fee_under_a_24_hour_window():
    assert not cancellation_chargeable(cancelled(hours_before=16, late=False, by_clinic=True),
                                       24)


def test_the_clinics_cancellation_costs_no_fee_even_without_a_price_list():
    assert not cancellation_chargeable(cancelled(hours_before=1, late=True, by_clinic=True),
                                       None)


def test_the_patients_cancellation_is_judged_by_billings_window_not_bookings_flag():
    assert cancellation_chargeable(cancelled(hours_before=16, late=False), 24)
    assert not cancellation_chargeable(cancelled(hours_before=30, late=True), 24)


def test_without_a_price_list_bookings_flag_decides():
    assert cancellation_chargeable(cancelled(hours_before=16, late=True), None)
    assert not cancellation_chargeable(cancelled(hours_before=16, late=False), None)
