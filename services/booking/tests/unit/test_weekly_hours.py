"""A day's opening or working hours are set as stretches that do not overlap; hours recorded
before that rule stay readable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from kinetic_contracts.booking.v1.events import LocationHoursSet, TherapistHoursSet, WeeklyHoursIn

SET = TypeAdapter(WeeklyHoursIn)
OVERLAPPING = {"mon": [{"opens": "08:00", "closes": "12:00"},
                       {"opens": "08:30", "closes": "11:00"}]}


@pytest.mark.parametrize("spans", [
    [("08:00", "12:00"), ("08:30", "11:00")],  # one inside the other
    [("13:00", "18:00"), ("08:00", "13:30")],  # out of order, overlapping by half an hour
    [("08:00", "24:00"), ("23:00", "24:00")],
])
def test_overlapping_stretches_of_a_day_are_refused(spans):
    with pytest.raises(ValidationError, match="overlap"):
        SET.validate_python({"tue": [{"opens": o, "closes": c} for o, c in spans]})


def test_stretches_that_touch_or_fall_on_other_days_are_set():
    hours = {"mon": [{"opens": "13:00", "closes": "18:00"}, {"opens": "08:00", "closes": "13:00"}],
             "tue": [{"opens": "08:00", "closes": "12:00"}]}
    assert [h.opens for h in SET.validate_python(hours)["mon"]] == ["13:00", "08:00"]


def test_overlapping_hours_recorded_before_the_rule_are_still_read():
    at = datetime(2026, 1, 5, tzinfo=UTC).isoformat()
    location = LocationHoursSet.model_validate(
        {"location_id": str(uuid.uuid4()), "opening_hours": OVERLAPPING, "set_at": at})
    therapist = TherapistHoursSet.model_validate(
        {"therapist_id": str(uuid.uuid4()), "location_id": str(uuid.uuid4()),
         "working_hours": OVERLAPPING, "set_at": at})
    assert len(location.opening_hours["mon"]) == len(therapist.working_hours["mon"]) == 2
