"""Bookable time and free slots: wall-clock hours in the location's timezone, across
daylight-saving changes, closures, working hours, time off and existing appointments."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.domain.schedule import (
    BusyTime,
    Closure,
    LocationCalendar,
    TherapistCalendar,
    Unbookable,
    free_slots,
    subtract,
    why_unbookable,
)
from kinetic_contracts.booking.v1.events import WEEKDAYS, Hours

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_8_TO_12 = {day: [Hours(opens="08:00", closes="12:00")] for day in WEEKDAYS[:5]}
EVERY_DAY_8_TO_10 = {day: [Hours(opens="08:00", closes="10:00")] for day in WEEKDAYS}
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
T = uuid.uuid4()


def local(y: int, m: int, d: int, h: int, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=BERLIN)


def test_a_week_across_the_spring_change_keeps_local_opening_times():
    # Europe/Berlin moves from UTC+1 to UTC+2 on Sunday 2027-03-28.
    clinic = LocationCalendar("Europe/Berlin", EVERY_DAY_8_TO_10)
    slots = free_slots(clinic, [TherapistCalendar(T)], date(2027, 3, 25), date(2027, 3, 31),
                       60, LONG_AGO)
    assert len(slots) == 14
    assert {s.starts_at.astimezone(BERLIN).strftime("%H:%M") for s in slots} == {"08:00", "09:00"}
    before, after = slots[0], slots[-1]
    assert before.starts_at == datetime(2027, 3, 25, 7, tzinfo=UTC)  # 08:00 at UTC+1
    assert after.starts_at == datetime(2027, 3, 31, 7, tzinfo=UTC)  # 09:00 at UTC+2
    assert all(s.ends_at - s.starts_at == timedelta(hours=1) for s in slots)


def test_a_week_across_the_autumn_change_keeps_local_opening_times():
    # Back from UTC+2 to UTC+1 on Sunday 2027-10-31; a 00:00-04:00 opening is 5 real hours.
    night = {"sun": [Hours(opens="00:00", closes="04:00")]}
    clinic = LocationCalendar("Europe/Berlin", night)
    slots = free_slots(clinic, [TherapistCalendar(T)], date(2027, 10, 31), date(2027, 10, 31),
                       60, LONG_AGO)
    assert len(slots) == 5
    day = LocationCalendar("Europe/Berlin", EVERY_DAY_8_TO_10)
    week = free_slots(day, [TherapistCalendar(T)], date(2027, 10, 28), date(2027, 11, 3), 60,
                      LONG_AGO)
    assert [s.starts_at.astimezone(BERLIN).hour for s in week] == [8, 9] * 7
    assert week[0].starts_at.utcoffset() == timedelta(0)
    assert week[0].starts_at.hour == 6 and week[-1].starts_at.hour == 8


def test_closures_weekends_working_hours_time_off_and_bookings_leave_no_slots():
    clinic = LocationCalendar("Europe/Berlin", WEEKDAYS_8_TO_12,
                              (Closure(date(2027, 3, 2), date(2027, 3, 2)),))
    therapist = TherapistCalendar(
        T, {"mon": [Hours(opens="09:00", closes="18:00")], "wed": [Hours(opens="08:00",
                                                                        closes="12:00")]},
        busy=[(local(2027, 3, 3, 9), local(2027, 3, 3, 10, 30))])
    slots = free_slots(clinic, [therapist], date(2027, 3, 1), date(2027, 3, 7), 60, LONG_AGO)
    starts = [s.starts_at.astimezone(BERLIN) for s in slots]
    assert starts == [local(2027, 3, 1, 9), local(2027, 3, 1, 10), local(2027, 3, 1, 11),
                      local(2027, 3, 3, 8), local(2027, 3, 3, 10, 30)]


def test_slots_before_now_are_not_offered():
    clinic = LocationCalendar("Europe/Berlin", WEEKDAYS_8_TO_12)
    now = local(2027, 3, 1, 9, 30)
    slots = free_slots(clinic, [TherapistCalendar(T)], date(2027, 3, 1), date(2027, 3, 1),
                       60, now)
    assert [s.starts_at for s in slots] == [local(2027, 3, 1, 10), local(2027, 3, 1, 11)]


def test_why_unbookable_names_the_rule():
    clinic = LocationCalendar("Europe/Berlin", WEEKDAYS_8_TO_12,
                              (Closure(date(2027, 3, 2), date(2027, 3, 4)),))
    therapist = TherapistCalendar(T, {"mon": [Hours(opens="10:00", closes="12:00")],
                                      "fri": [Hours(opens="08:00", closes="12:00")]},
                                  busy=[(local(2027, 3, 5, 8), local(2027, 3, 5, 9))])

    def check(start: datetime) -> Unbookable | None:
        return why_unbookable(start, start + timedelta(hours=1), clinic, therapist)

    assert check(local(2027, 3, 1, 10)) is None
    assert check(local(2027, 3, 1, 11, 30)) is Unbookable.OUTSIDE_OPENING_HOURS
    assert check(local(2027, 3, 1, 8)) is Unbookable.OUTSIDE_WORKING_HOURS
    assert check(local(2027, 3, 3, 9)) is Unbookable.LOCATION_CLOSED
    assert check(local(2027, 3, 5, 8, 30)) is Unbookable.TIME_OFF
    assert check(local(2027, 3, 6, 9)) is Unbookable.OUTSIDE_OPENING_HOURS


def test_without_hours_a_location_is_bookable_around_the_clock():
    clinic = LocationCalendar("America/New_York")
    start = datetime(2027, 3, 14, 7, tzinfo=UTC)  # 03:00 local, the morning clocks spring on
    assert why_unbookable(start, start + timedelta(hours=1), clinic, TherapistCalendar(T)) is None


def test_subtract_splits_free_time_around_busy_time():
    a, b = local(2027, 3, 1, 8), local(2027, 3, 1, 12)
    busy = [(local(2027, 3, 1, 9), local(2027, 3, 1, 10)), (local(2027, 3, 1, 11),
                                                             local(2027, 3, 1, 13))]
    assert subtract([(a, b)], busy) == [(a, busy[0][0]), (busy[0][1], busy[1][0])]


def test_subtract_through_the_busy_time_index_agrees_with_minute_by_minute_counting():
    import random

    rng = random.Random(7)
    base = datetime(2027, 3, 1, tzinfo=UTC)
    minute = timedelta(minutes=1)

    def span(lo: int, hi: int) -> tuple[datetime, datetime]:
        a = rng.randrange(lo, hi)
        return base + a * minute, base + (a + rng.randrange(15, 600)) * minute

    def minutes(intervals: list[tuple[datetime, datetime]]) -> set[datetime]:
        return {s + n * minute for s, e in intervals for n in range((e - s) // minute)}

    for _ in range(200):
        free = [span(0, 20_000) for _ in range(rng.randrange(1, 4))]
        busy = [span(0, 20_000) for _ in range(rng.randrange(0, 30))]
        indexed = BusyTime(busy)
        got = subtract(free, indexed)
        assert got == subtract(free, list(reversed(busy)))
        assert minutes(got) == minutes(free) - minutes(busy)


def test_a_session_may_run_past_local_midnight_when_both_days_are_open():
    clinic = LocationCalendar("Europe/Berlin", None)
    late = local(2027, 1, 4, 23, 30)
    assert why_unbookable(late, late + timedelta(hours=1), clinic, TherapistCalendar(T)) is None
    evenings = {"mon": [Hours(opens="18:00", closes="24:00")],
                "tue": [Hours(opens="00:00", closes="01:00")]}
    night = LocationCalendar("Europe/Berlin", evenings)
    assert why_unbookable(late, late + timedelta(hours=1), night, TherapistCalendar(T)) is None
    too_long = late + timedelta(hours=2)
    assert why_unbookable(late, too_long, night, TherapistCalendar(T)) \
        is Unbookable.OUTSIDE_OPENING_HOURS
    closed_tuesday = LocationCalendar("Europe/Berlin", None,
                                      closures=(Closure(date(2027, 1, 5), date(2027, 1, 5)),))
    assert why_unbookable(late, late + timedelta(hours=1), closed_tuesday,
                          TherapistCalendar(T)) is Unbookable.LOCATION_CLOSED
    ends_at_midnight = local(2027, 1, 4, 23)
    assert why_unbookable(ends_at_midnight, ends_at_midnight + timedelta(hours=1),
                          closed_tuesday, TherapistCalendar(T)) is None


def test_overlapping_hours_recorded_earlier_offer_each_hour_once():
    # Stored before overlapping spans were refused: the clinic's Monday and the therapist's
    # Wednesday each read as one stretch, packed with slots from its start.
    overlapping = [Hours(opens="08:00", closes="12:00"), Hours(opens="08:30", closes="11:00")]
    clinic = LocationCalendar("Europe/Berlin", {"mon": overlapping, **{
        d: [Hours(opens="08:00", closes="12:00")] for d in ("tue", "wed")}})
    therapist = TherapistCalendar(T, {"mon": [Hours(opens="00:00", closes="24:00")],
                                      "wed": [Hours(opens="09:00", closes="11:00"),
                                              Hours(opens="08:00", closes="10:00")]})
    slots = free_slots(clinic, [therapist], date(2027, 3, 1), date(2027, 3, 3), 60, LONG_AGO)
    starts = [s.starts_at.astimezone(BERLIN) for s in slots]
    assert starts == [local(2027, 3, 1, h) for h in (8, 9, 10, 11)] + [
        local(2027, 3, 3, h) for h in (8, 9, 10)]
    assert all(a.ends_at <= b.starts_at for a, b in zip(slots, slots[1:]))
