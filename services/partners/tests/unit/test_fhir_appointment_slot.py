"""An Appointment has a start and an end or neither (R4 invariant app-2), and only a
proposed, cancelled or waitlisted one may have neither (app-3), whichever event of the
appointment a partner sees first: a partner granted only outcomes, or registered after the
booking, never sees the booked event that carries the end."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kinetic_contracts import EventData
from kinetic_contracts.booking.v1 import events as booking
from kinetic_contracts.registry import schema_uri
from partners.domain.fhir import project

NS = uuid.UUID("0b6f1a52-3d3e-4a59-9a61-2f4c1f0d7e21")
TENANT, PATIENT, THERAPIST, LOCATION, APPOINTMENT, EPISODE = (
    uuid.uuid5(NS, name) for name in ("org", "patient", "therapist", "location",
                                      "appointment", "episode"))
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
END = START + timedelta(minutes=45)
MOVED = START + timedelta(days=1)  # a reschedule the partner did not see
WHO = {"appointment_id": APPOINTMENT, "patient_id": PATIENT, "therapist_id": THERAPIST,
       "location_id": LOCATION}
MAY_LACK_SLOT = {"proposed", "cancelled", "waitlist"}  # app-3


def booked(starts_at: datetime = START, ends_at: datetime = END) -> EventData:
    return booking.AppointmentBooked(**WHO, episode_id=EPISODE,
                                     appointment_type="treatment_session",
                                     starts_at=starts_at, ends_at=ends_at,
                                     booked_at=starts_at - timedelta(days=3))


def rescheduled(starts_at: datetime = START) -> EventData:
    return booking.AppointmentRescheduled(
        **WHO, episode_id=EPISODE, appointment_type="treatment_session",
        previous_therapist_id=THERAPIST, previous_starts_at=starts_at - timedelta(days=2),
        starts_at=starts_at, ends_at=starts_at + timedelta(minutes=45),
        rescheduled_at=starts_at - timedelta(days=2))


def outcome(kind: type, starts_at: datetime = START) -> EventData:
    return kind(**WHO, episode_id=EPISODE, appointment_type="treatment_session",
                starts_at=starts_at, at=starts_at + timedelta(minutes=50))


def cancelled(starts_at: datetime = START) -> EventData:
    return booking.AppointmentCancelled(**WHO, starts_at=starts_at, late=False,
                                        cancelled_at=starts_at - timedelta(days=1))


def reversed_(what: str, starts_at: datetime = START) -> EventData:
    return booking.AppointmentReversed(**WHO, episode_id=EPISODE,
                                       appointment_type="treatment_session",
                                       starts_at=starts_at, reversed_outcome=what,
                                       reason_code="recorded_in_error",
                                       reversed_at=starts_at + timedelta(hours=2))


EVENTS = {
    "booked": lambda at=START: booked(at, at + timedelta(minutes=45)),
    "rescheduled": rescheduled,
    "checked_in": lambda at=START: outcome(booking.AppointmentCheckedIn, at),
    "completed": lambda at=START: outcome(booking.AppointmentCompleted, at),
    "no_show": lambda at=START: outcome(booking.AppointmentNoShow, at),
    "cancelled": cancelled,
    "reversed completion": lambda at=START: reversed_("completed", at),
    "reversed no-show": lambda at=START: reversed_("no_show", at),
}


class Partner:
    """A partner's stored resources, fed the events it receives."""

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], dict[str, Any]] = {}
        self.n = 0

    def receive(self, data: EventData) -> dict[str, Any]:
        self.n += 1
        event = {"specversion": "1.0", "id": str(uuid.uuid5(NS, f"event-{self.n}")),
                 "source": "/kinetic/booking", "type": data.event_type,
                 "subject": str(APPOINTMENT), "time": START.isoformat(),
                 "dataschema": schema_uri(data.event_type),
                 "data": data.model_dump(mode="json"), "tenantid": str(TENANT),
                 "sequence": self.n}
        for resource in project(event, lambda kind, rid: self.store.get((kind, rid))):
            self.store[(resource.resource_type, resource.id)] = resource.body
        return self.store[("Appointment", str(APPOINTMENT))]


def assert_valid_slot(body: dict[str, Any]) -> None:
    has_start = "start" in body
    has_end = "end" in body or "_end" in body  # a value, or data-absent-reason: it exists
    assert has_start == has_end, f"app-2: start and end, both or neither: {body}"
    assert has_start or body["status"] in MAY_LACK_SLOT, f"app-3: {body}"
    if "end" in body:
        assert "_end" not in body
        assert datetime.fromisoformat(body["end"]) > datetime.fromisoformat(body["start"])


def when(body: dict[str, Any]) -> tuple[str | None, str | None]:
    return (body.get("start"), body.get("end"))


@pytest.mark.parametrize("first", sorted(EVENTS))
def test_the_first_event_a_partner_sees_of_an_appointment_makes_a_valid_slot(first):
    body = Partner().receive(EVENTS[first]())
    assert_valid_slot(body)
    assert datetime.fromisoformat(body["start"]) == START  # the start is kept
    if first in ("booked", "rescheduled"):
        assert "_end" not in body
    else:  # the event does not say when it ends, and nothing is guessed
        assert "end" not in body
        assert body["_end"]["extension"][0]["valueCode"] == "unknown"


@pytest.mark.parametrize("then", sorted(EVENTS))
def test_after_the_booking_every_event_keeps_its_known_end(then):
    partner = Partner()
    slot = when(partner.receive(booked()))
    body = partner.receive(EVENTS[then]())
    assert_valid_slot(body)
    assert when(body) == slot


@pytest.mark.parametrize("then", sorted(set(EVENTS) - {"booked", "rescheduled"}))
def test_an_end_stored_for_another_start_is_not_kept(then):
    """Booked, then rescheduled without the partner seeing it: the stored end belongs to the
    old slot, so the new start has an unknown end, not the old one."""
    partner = Partner()
    partner.receive(booked())
    body = partner.receive(EVENTS[then](MOVED))
    assert_valid_slot(body)
    assert datetime.fromisoformat(body["start"]) == MOVED and "end" not in body


def test_an_end_learnt_later_replaces_the_unknown_one():
    partner = Partner()
    assert "_end" in partner.receive(EVENTS["checked_in"]())
    body = partner.receive(rescheduled(MOVED))
    assert_valid_slot(body)
    assert "_end" not in body and datetime.fromisoformat(body["end"]) > MOVED
