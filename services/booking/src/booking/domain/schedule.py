"""Bookable time. Weekly hours are wall-clock times in a location's timezone; everything
else is UTC instants. A local day's hours are turned into instants through the timezone
database, so a week that crosses a daylight-saving change keeps its 08:00 openings at 08:00
local time (and its hours one hour shorter or longer in UTC). Pure: no clock, no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from functools import lru_cache
from typing import NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo

from kinetic_contracts.booking.v1.events import WEEKDAYS, Hours, WeeklyHours

Interval = tuple[datetime, datetime]  # half-open [start, end), UTC


@dataclass(frozen=True)
class Closure:
    first_day: date
    last_day: date

    def covers(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day


@dataclass(frozen=True)
class LocationCalendar:
    timezone: str
    opening_hours: WeeklyHours | None = None  # None: hours not set, open around the clock
    closures: Sequence[Closure] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def closed_on(self, day: date) -> bool:
        return any(c.covers(day) for c in self.closures)


@dataclass(frozen=True)
class TherapistCalendar:
    therapist_id: UUID
    working_hours: WeeklyHours | None = None  # None: whenever the location is open
    busy: Sequence[Interval] = field(default_factory=tuple)  # appointments and time off


class Slot(NamedTuple):
    # A tuple, not a dataclass: a four-week search makes hundreds, and a frozen
    # dataclass's constructor cost more than computing where the slot goes.
    therapist_id: UUID
    starts_at: datetime
    ends_at: datetime


class Unbookable(Enum):
    """Why an hour cannot be booked (each maps to its own problem type)."""

    LOCATION_CLOSED = "the location is closed that day"
    OUTSIDE_OPENING_HOURS = "the location is not open then"
    OUTSIDE_WORKING_HOURS = "the therapist does not work then"
    TIME_OFF = "the therapist is off then"


_AROUND_THE_CLOCK: WeeklyHours = {day: [Hours(opens="00:00", closes="24:00")] for day in WEEKDAYS}


@lru_cache(maxsize=4096)
def _instant(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    # Cached: a four-week search asks for the same local times once per therapist.
    if hhmm == "24:00":
        return _instant(day + timedelta(days=1), "00:00", zone)
    hour, minute = map(int, hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


def day_hours(day: date, weekly: WeeklyHours | None, zone: ZoneInfo) -> list[Interval]:
    """One local day's hours as UTC intervals, in order and apart."""
    hours = (weekly if weekly is not None else _AROUND_THE_CLOCK).get(WEEKDAYS[day.weekday()], [])
    spans = [(_instant(day, h.opens, zone), _instant(day, h.closes, zone)) for h in hours]
    # Hours set before overlapping spans were refused may still overlap (recorded events are
    # facts, read as they are): joined here, or each span would be packed with slots of its
    # own and the same hour offered twice.
    return _joined(spans) if len(spans) > 1 else spans


def _joined(spans: list[Interval]) -> list[Interval]:
    """Overlapping spans joined; touching ones stay apart, as they were set, so that slots
    are packed from each span's start just as before."""
    out: list[Interval] = []
    for start, end in sorted(spans):
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    out = [(max(s1, s2), min(e1, e2)) for s1, e1 in a for s2, e2 in b]
    return sorted((s, e) for s, e in out if s < e)


class BusyTime:
    """Busy intervals sorted by start once, so that the ones reaching into a stretch of
    time are found by bisection: a day of a four-week calendar does not walk the other
    twenty-seven, and a search does not sort a therapist's calendar once per day."""

    __slots__ = ("_intervals", "_starts", "_longest")

    def __init__(self, intervals: Iterable[Interval]) -> None:
        self._intervals = sorted(intervals)
        self._starts = [start for start, _ in self._intervals]
        self._longest = max((e - s for s, e in self._intervals), default=timedelta(0))

    def reaching(self, start: datetime, end: datetime) -> list[Interval]:
        """Every interval that may overlap ``[start, end)``, in order (a superset: the
        ones that start early enough to reach ``start`` if they were the longest)."""
        return self._intervals[bisect_left(self._starts, start - self._longest):
                               bisect_left(self._starts, end)]


def subtract(free: Iterable[Interval], busy: Iterable[Interval] | BusyTime) -> list[Interval]:
    """``free`` minus ``busy``."""
    index = busy if isinstance(busy, BusyTime) else BusyTime(busy)
    out: list[Interval] = []
    for start, end in sorted(free):
        cursor = start
        for b_start, b_end in index.reaching(start, end):
            if b_end <= cursor or b_start >= end:
                continue
            if b_start > cursor:
                out.append((cursor, b_start))
            cursor = max(cursor, b_end)
        if cursor < end:
            out.append((cursor, end))
    return out


def open_hours(location: LocationCalendar, day: date, zone: ZoneInfo) -> list[Interval]:
    """When the location is open on a local day (never on a closure)."""
    return [] if location.closed_on(day) else day_hours(day, location.opening_hours, zone)


def working_time(day: date, location: LocationCalendar, therapist: TherapistCalendar,
                 opening: list[Interval] | None = None) -> list[Interval]:
    """When the therapist can see patients at the location on a local day (``opening``:
    the location's ``open_hours`` that day, if already known)."""
    zone = location.zone
    if opening is None:
        opening = open_hours(location, day, zone)
    return intersect(opening, day_hours(day, therapist.working_hours, zone)) if opening else []


def coalesce(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted intervals with the touching and overlapping ones joined: a day open until
    24:00 and the next from 00:00 are one stretch of time."""
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def why_unbookable(starts_at: datetime, ends_at: datetime, location: LocationCalendar,
                   therapist: TherapistCalendar) -> Unbookable | None:
    """None if the therapist can see a patient from ``starts_at`` to ``ends_at`` there
    (their other appointments aside: the database's exclusion constraint judges those).
    A session may run past local midnight when both days' hours allow it."""
    zone = location.zone
    # A session ending at midnight does not touch the next day (it may be closed).
    first = starts_at.astimezone(zone).date()
    last = (ends_at - timedelta(microseconds=1)).astimezone(zone).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if any(location.closed_on(day) for day in days):
        return Unbookable.LOCATION_CLOSED

    def inside(intervals: Iterable[Interval]) -> bool:
        return any(s <= starts_at and ends_at <= e for s, e in coalesce(intervals))

    if not inside(i for day in days for i in day_hours(day, location.opening_hours, zone)):
        return Unbookable.OUTSIDE_OPENING_HOURS
    if not inside(i for day in days for i in working_time(day, location, therapist)):
        return Unbookable.OUTSIDE_WORKING_HOURS
    if any(s < ends_at and starts_at < e for s, e in therapist.busy):
        return Unbookable.TIME_OFF
    return None


def free_slots(location: LocationCalendar, therapists: Sequence[TherapistCalendar],
               first_day: date, last_day: date, minutes: int, now: datetime,
               ) -> list[Slot]:
    """Every free ``minutes``-long slot from ``first_day`` to ``last_day`` (local days),
    packed from the start of each free stretch, starting after ``now``; sorted by time."""
    length = timedelta(minutes=minutes)
    slots: list[Slot] = []
    busy = {t.therapist_id: BusyTime(t.busy) for t in therapists}  # indexed once, not per day
    zone = location.zone
    day = first_day
    while day <= last_day:
        opening = open_hours(location, day, zone)  # once a day, not once per therapist
        for therapist in therapists if opening else ():
            for start, end in subtract(working_time(day, location, therapist, opening),
                                       busy[therapist.therapist_id]):
                cursor = start
                while cursor + length <= end:
                    if cursor >= now:
                        slots.append(Slot(therapist.therapist_id, cursor, cursor + length))
                    cursor += length
        day += timedelta(days=1)
    slots.sort(key=lambda s: (s.starts_at, s.therapist_id))  # UUIDs order as their text
    return slots
