"""When an invoice is due and when it becomes overdue: at the clinic's own calendar, once its
due date has passed there."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from billing.domain.due_dates import due_on, follow_ups, on_clock, overdue_from

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")
SANTIAGO = ZoneInfo("America/Santiago")
DAY = 86_400

# 14:00 in Berlin (CET, UTC+1) on Monday 23 November 2026.
ISSUED = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


def overdue_step(issued_at: datetime, zone: ZoneInfo, terms: int, day_seconds: float = DAY,
                 reminders: list[int] | None = None) -> datetime:
    steps = follow_ups(issued_at, terms, overdue_from(due_on(issued_at, zone, terms), zone),
                       reminders or [], day_seconds)
    at, action = steps[-1]
    assert action == "overdue"
    return at


def test_given_zero_day_terms_when_issued_then_it_is_due_today_and_not_overdue_at_once() -> None:
    assert due_on(ISSUED, BERLIN, 0) == date(2026, 11, 23)
    at = overdue_step(ISSUED, BERLIN, 0)
    assert at > ISSUED
    # Berlin's midnight ending the 23rd: 23:00 UTC, ten hours after the issue.
    assert at == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)


def test_given_n_day_terms_then_overdue_at_the_clinics_midnight_after_the_due_date() -> None:
    at = overdue_step(ISSUED, BERLIN, 14)
    assert due_on(ISSUED, BERLIN, 14) == date(2026, 12, 7)
    # Not at the start of the due date (00:00 on the 7th, 6 December 23:00 UTC) nor 14 × 24 h
    # after the issue, but when the 7th has passed in Berlin.
    assert at == datetime(2026, 12, 7, 23, 0, tzinfo=UTC)


def test_given_a_clinic_west_of_utc_then_its_own_midnight_makes_the_invoice_overdue() -> None:
    # 20:00 in New York on the 23rd is already the 24th in UTC: the due date is New York's.
    evening = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    assert due_on(evening, NEW_YORK, 0) == date(2026, 11, 23)
    assert overdue_step(evening, NEW_YORK, 0) == datetime(2026, 11, 24, 5, 0, tzinfo=UTC)


def test_given_a_clinic_east_of_utc_then_the_due_date_counts_from_its_local_date() -> None:
    # 11:00 UTC on the 23rd is 01:00 on the 24th in Kiritimati (UTC+14).
    assert due_on(ISSUED - timedelta(hours=2), KIRITIMATI, 1) == date(2026, 11, 25)


def test_given_a_daylight_saving_change_then_overdue_at_the_first_instant_of_the_next_day(
        ) -> None:
    # Berlin leaves summer time in the night to Sunday 25 October 2026: midnight is still
    # CEST (UTC+2) before it.
    assert overdue_from(date(2026, 10, 24), BERLIN) == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    # Santiago's clocks jump from midnight to 01:00 on 6 September 2026: that midnight never
    # shows, and the day after the 5th begins at the jump (04:00 UTC).
    assert overdue_from(date(2026, 9, 5), SANTIAGO) == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)


def test_given_reminder_days_then_reminders_come_on_those_days_before_the_due_date_only() -> None:
    steps = follow_ups(ISSUED, 14, overdue_from(due_on(ISSUED, BERLIN, 14), BERLIN),
                       [12, 7, 14, 20, 0], DAY)
    assert [(at - ISSUED, action) for at, action in steps] == [
        (timedelta(days=7), "remind"), (timedelta(days=12), "remind"),
        (timedelta(days=14, hours=10), "overdue")]


def test_given_shortened_days_then_the_overdue_moment_keeps_its_place_in_the_day() -> None:
    # Days of 2.4 s (a test's configuration): ten hours to midnight are a second.
    assert overdue_step(ISSUED, BERLIN, 0, day_seconds=2.4) == ISSUED + timedelta(seconds=1)
    assert overdue_step(ISSUED, BERLIN, 1, day_seconds=2.4) == ISSUED + timedelta(seconds=3.4)
    assert on_clock(ISSUED, ISSUED + timedelta(days=3), 1.0) == ISSUED + timedelta(seconds=3)
