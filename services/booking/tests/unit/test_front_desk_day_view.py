"""The front desk's day view offers only what the API allows: a session that has started is
checked in or recorded as a no-show, never moved or cancelled. Rendered with the same
template environment the service uses, without a server."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

import booking.adapters
from kinetic_infra.http.app import TEMPLATES_DIR

BERLIN = ZoneInfo("Europe/Berlin")
THERAPIST = str(uuid.uuid4())


@dataclass
class Cell:
    appointments: list[dict[str, Any]] = field(default_factory=list)
    free: list[dict[str, Any]] = field(default_factory=list)


def day_view(starts_at: datetime) -> str:
    templates = Jinja2Templates(directory=[
        str(Path(booking.adapters.__file__).parent / "templates"), str(TEMPLATES_DIR)])
    session = {"appointment_id": str(uuid.uuid4()), "patient_name": "Ada Lindqvist",
               "status": "booked", "appointment_type": "treatment_session",
               "late_cancel": False, "replaces": None, "local_start": starts_at,
               "local_end": starts_at + timedelta(hours=1)}
    day = starts_at.date()
    return templates.get_template("front_desk.html").render(
        location={"location_id": str(uuid.uuid4()), "name": "Mitte",
                  "timezone": "Europe/Berlin"},
        locations=[], day=day, days=[day], week=False, hours=[starts_at.hour],
        therapists=[{"therapist_id": THERAPIST}], names={THERAPIST: "Tara Nguyen"},
        grid={(day, starts_at.hour, THERAPIST): Cell([session])}, pick={}, here="/here",
        to_book=[], waitlist=[], nav=[], menu=[])


def test_a_session_that_has_started_offers_no_move_or_cancel():
    started = datetime.now(BERLIN).replace(second=0, microsecond=0) - timedelta(minutes=40)
    page = day_view(started)
    assert "Check in" in page and "No-show" in page
    assert "/reschedule" not in page and "/cancel" not in page


def test_a_session_still_ahead_can_be_moved_or_cancelled():
    ahead = datetime.now(BERLIN).replace(second=0, microsecond=0) + timedelta(hours=2)
    page = day_view(ahead)
    assert "/reschedule" in page and "/cancel" in page
