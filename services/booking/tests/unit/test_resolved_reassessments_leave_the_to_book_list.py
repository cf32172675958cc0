"""A reassessment plan resolved (perhaps continuing without a reassessment visit) leaves the
"to book" list when the resolution came at or after the due was raised, in whichever order
booking heard them; a due raised after the resolution is a new one and stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from booking.application.to_book import still_due

RAISED = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def test_an_unresolved_reassessment_is_due():
    assert still_due(RAISED, None)


def test_a_resolution_after_the_due_takes_it_off_the_list():
    assert not still_due(RAISED, RAISED + timedelta(days=2))


def test_a_resolution_at_the_same_instant_answers_the_due():
    assert not still_due(RAISED, RAISED)


def test_a_due_raised_after_the_last_resolution_stays_on_the_list():
    assert still_due(RAISED, RAISED - timedelta(days=10))
