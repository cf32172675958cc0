"""When an invoice falls due and when it becomes overdue, at the clinic's own calendar.

An invoice issued on the clinic's day D with N days' terms is due on D + N: the patient may
pay on any moment of that day, where the clinic is. It is overdue only once that day has
passed there, at the clinic's midnight after it — so terms of 0 days mean "pay today", not
"overdue at once". Reminders fall on whole days after issue, each before the due date.

Time in the workflow runs at ``day_seconds`` per day (86 400 in production; tests shorten it
by configuration): an instant of the real calendar maps onto that clock by its distance from
the issue, so a shortened day keeps the overdue moment where it falls within its day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

SECONDS_PER_DAY = 86_400

FollowUpAction = Literal["remind", "overdue"]


def due_on(issued_at: datetime, zone: ZoneInfo, terms_days: int) -> date:
    """The due date: the clinic's date of issue (not UTC's: in Kiritimati an invoice issued
    at 11:00 UTC is already tomorrow's) plus the terms."""
    return issued_at.astimezone(zone).date() + timedelta(days=terms_days)


def overdue_from(due: date, zone: ZoneInfo) -> datetime:
    """The first instant the invoice is overdue: the clinic's midnight after its due date.

    Where a daylight-saving change skips that midnight (Santiago, Havana) the wall time does
    not exist, and ``fold=0`` reads it with the offset before the change: that is the very
    instant the clocks jump, the first moment of the next day there."""
    return datetime.combine(due + timedelta(days=1), time(), zone).astimezone(UTC)


def on_clock(issued_at: datetime, at: datetime, day_seconds: float) -> datetime:
    """Where a calendar instant falls on a clock whose days last ``day_seconds``."""
    return issued_at + (at - issued_at) * (day_seconds / SECONDS_PER_DAY)


def follow_ups(issued_at: datetime, terms_days: int, overdue_at: datetime,
               reminder_days: list[int], day_seconds: float
               ) -> list[tuple[datetime, FollowUpAction]]:
    """The unpaid invoice's follow-ups in order, on the workflow's clock: a reminder on each
    configured day after issue that comes before the due date, then overdue once the due
    date has passed at the clinic."""
    reminders: list[tuple[datetime, FollowUpAction]] = [
        (issued_at + timedelta(seconds=days * day_seconds), "remind")
        for days in sorted(set(reminder_days)) if 0 < days < terms_days]
    return [*reminders, (on_clock(issued_at, overdue_at, day_seconds), "overdue")]
