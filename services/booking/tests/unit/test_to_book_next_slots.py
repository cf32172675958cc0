"""The "to book" list's next free slots are searched from the clinic's own today: a clinic
behind UTC keeps its evening's slots after UTC's date has moved on."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from booking.adapters.http_front_desk import search_days
from booking.application.to_book import HORIZON_DAYS
from booking.domain.schedule import LocationCalendar, TherapistCalendar, free_slots
from kinetic_contracts.booking.v1.events import WEEKDAYS, Hours

LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def test_the_next_slots_start_from_the_clinics_today_not_utcs():
    # Monday 7 June 2027, 17:30 in Los Angeles (UTC-7) is already Tuesday 00:30 in UTC.
    now = datetime(2027, 6, 8, 0, 30, tzinfo=UTC)
    first_day, last_day = search_days(LOS_ANGELES, now)
    assert (first_day, last_day) == (date(2027, 6, 7), date(2027, 6, 7 + HORIZON_DAYS))

    clinic = LocationCalendar("America/Los_Angeles",
                              {d: [Hours(opens="08:00", closes="20:00")] for d in WEEKDAYS[:5]})
    [first, *_] = free_slots(clinic, [TherapistCalendar(uuid.uuid4())], first_day, last_day,
                             60, now)
    assert first.starts_at.astimezone(LOS_ANGELES) == datetime(2027, 6, 7, 18, 0,
                                                               tzinfo=LOS_ANGELES)
