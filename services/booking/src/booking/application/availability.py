"""Availability search over the read models: free slots at a location by appointment
type, date range and (optionally) therapist. Four indexed queries, then the pure slot
computation (domain/schedule.py). Runs on a connection that already carries the caller's
tenant, so row-level security keeps other organizations out."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.adapters.projections import (
    location_closures,
    locations,
    therapist_hours,
    therapists,
)
from booking.domain.appointment import DEFAULT_MINUTES, HOLDING_STATUSES
from booking.domain.schedule import (
    Closure,
    Interval,
    LocationCalendar,
    Slot,
    TherapistCalendar,
    free_slots,
)
from kinetic_contracts.booking.v1.events import WeeklyHours
from kinetic_infra.event_store.sql import raw_driver

_HOURS = TypeAdapter(WeeklyHours)


def weekly_hours(value: object) -> WeeklyHours | None:
    return None if value is None else _HOURS.validate_python(value)


_MINUTES_SQL = "SELECT minutes FROM appointment_types WHERE appointment_type = $1"


async def minutes_for(conn: AsyncConnection, appointment_type: str) -> int:
    """The organization's length for the type (60 minutes unless configured). Through the
    driver: every booking and every search asks."""
    minutes = await (await raw_driver(conn)).fetchval(_MINUTES_SQL, appointment_type)
    return int(minutes) if minutes is not None else DEFAULT_MINUTES


async def location_calendar(conn: AsyncConnection, location_id: UUID) -> LocationCalendar | None:
    row = (await conn.execute(select(locations.c.timezone, locations.c.opening_hours)
                              .where(locations.c.location_id == location_id))).first()
    if row is None:
        return None
    closures = (await conn.execute(
        select(location_closures.c.first_day, location_closures.c.last_day)
        .where(location_closures.c.location_id == location_id))).all()
    return LocationCalendar(row.timezone, weekly_hours(row.opening_hours),
                            tuple(Closure(c.first_day, c.last_day) for c in closures))


def local_range(calendar: LocationCalendar, first_day: date, last_day: date) -> Interval:
    zone = ZoneInfo(calendar.timezone)
    return (datetime.combine(first_day, time(), tzinfo=zone).astimezone(UTC),
            datetime.combine(last_day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC))


# Everything that keeps the therapists busy in the range, appointments (at any location) and
# time off alike, merged per therapist into stretches by PostgreSQL (range_agg): a busy
# location's four weeks are a thousand bookings but a few hundred stretches, and turning
# rows into datetimes was a third of a search's CPU.
_BUSY_SQL = """
SELECT therapist_id, lower(busy), upper(busy) FROM (
    SELECT therapist_id, unnest(range_agg(tstzrange(starts_at, ends_at))) AS busy FROM (
        SELECT therapist_id, starts_at, ends_at FROM appointments
        WHERE therapist_id = ANY($1) AND starts_at < $2 AND ends_at > $3 AND status = ANY($4)
        UNION ALL
        SELECT therapist_id, starts_at, ends_at FROM therapist_time_off
        WHERE therapist_id = ANY($1) AND starts_at < $2 AND ends_at > $3
    ) AS held GROUP BY therapist_id
) AS stretches"""


async def therapist_calendars(conn: AsyncConnection, location_id: UUID, span: Interval,
                              therapist_id: UUID | None = None) -> list[TherapistCalendar]:
    """The location's therapists with their hours there, and everything that keeps them
    busy in ``span``: appointments at any location, and time off."""
    start, end = span
    query = (select(therapists.c.therapist_id, therapist_hours.c.working_hours)
             .outerjoin(therapist_hours, and_(
                 therapist_hours.c.therapist_id == therapists.c.therapist_id,
                 therapist_hours.c.location_id == location_id))
             .where(therapists.c.location_ids.any(location_id))
             .order_by(therapists.c.display_name, therapists.c.therapist_id))
    if therapist_id is not None:
        query = query.where(therapists.c.therapist_id == therapist_id)
    staff = (await conn.execute(query)).all()
    ids = [row.therapist_id for row in staff]
    busy: dict[UUID, list[Interval]] = defaultdict(list)
    if ids:
        # Through the driver: SQLAlchemy's row handling cost more than the query.
        driver = await raw_driver(conn)
        for therapist, starts_at, ends_at in await driver.fetch(
                _BUSY_SQL, ids, end, start, list(HOLDING_STATUSES)):
            busy[therapist].append((starts_at, ends_at))
    return [TherapistCalendar(row.therapist_id, weekly_hours(row.working_hours),
                              tuple(busy[row.therapist_id])) for row in staff]


async def search(conn: AsyncConnection, location_id: UUID, first_day: date, last_day: date,
                 minutes: int, now: datetime, therapist_id: UUID | None = None
                 ) -> tuple[LocationCalendar, list[Slot]] | None:
    """None if the location does not exist (for this organization)."""
    calendar = await location_calendar(conn, location_id)
    if calendar is None:
        return None
    staff = await therapist_calendars(conn, location_id, local_range(calendar, first_day,
                                                                     last_day), therapist_id)
    return calendar, free_slots(calendar, staff, first_day, last_day, minutes, now)
