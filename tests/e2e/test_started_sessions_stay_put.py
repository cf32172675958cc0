"""From its start on, a session is checked in or recorded as a no-show: it is not moved
away (which would drop the no-show and its fee), over HTTP as in the decider."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.test_appointments import booking, booking_events

pytestmark = pytest.mark.platform


async def test_a_session_that_has_started_cannot_be_moved_and_stays_a_no_show_to_record(
        platform, api, clinic, tenant):
    starts_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    session = await api("booking", "POST", "/appointments", json=booking(clinic, starts_at))
    assert session.status_code == 201, session.text
    appointment_id = session.json()["id"]
    await asyncio.sleep((starts_at - datetime.now(UTC)).total_seconds() + 0.2)

    moved = await api("booking", "POST", f"/appointments/{appointment_id}/reschedule",
                      json={"starts_at": (starts_at + timedelta(days=7)).isoformat()})
    assert moved.status_code == 409, moved.text
    assert moved.headers["content-type"] == "application/problem+json"
    assert moved.json()["type"] == "/problems/appointment-state"
    assert await booking_events(platform, tenant,
                                "kinetic.booking.appointment.rescheduled.v1") == []
    missed = await api("booking", "POST", f"/appointments/{appointment_id}/no-show")
    assert missed.status_code == 200, missed.text
    assert missed.json()["status"] == "no_show"
    assert datetime.fromisoformat(missed.json()["starts_at"]) == starts_at
