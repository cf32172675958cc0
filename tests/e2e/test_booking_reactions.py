"""Booking reacts: reminders per appointment on the real Temporal dev server (the lead time
shortened to an hour by configuration), and plan's events (reassessment due, plan
frequency, discharge) applied once each even when delivered twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import nats
import pytest

from booking.application.reminders import AppointmentReminderWorkflow, workflow_id
from kinetic_contracts import CloudEvent, nats_subject
from kinetic_contracts.plan.v1.events import (
    EpisodeDischarged,
    PlanCreated,
    ReassessmentDue,
)
from kinetic_infra.temporal import connect_client
from kinetic_infra.stack.temporal import NAMESPACE

pytestmark = pytest.mark.platform

LEAD = timedelta(minutes=60)  # KINETIC_BOOKING_REMINDER_LEAD_MINUTES in the test stack
REMINDER = "kinetic.booking.appointment.reminder_due.v1"


def due_in(seconds: float) -> datetime:
    """A start time whose reminder falls due ``seconds`` from now."""
    return (datetime.now(UTC) + LEAD + timedelta(seconds=seconds)).replace(microsecond=0)


async def book(api, clinic, starts_at: datetime, **extra) -> str:
    response = await api("booking", "POST", "/appointments", json={
        "patient_id": clinic["patient_id"], "therapist_id": clinic["therapist_id"],
        "location_id": clinic["location_id"], "appointment_type": "treatment_session",
        "starts_at": starts_at.isoformat(), **extra})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def reminders_for(published, appointment_id: str) -> list[dict]:
    return [e["data"] for e in await published(REMINDER, settle=0.3)
            if e["data"]["appointment_id"] == appointment_id]


async def workflow_outcome(platform, appointment_id: str) -> dict:
    client = await connect_client(platform.temporal.address, NAMESPACE)
    handle = client.get_workflow_handle_for(AppointmentReminderWorkflow.run,
                                            workflow_id(uuid.UUID(appointment_id)))
    return (await asyncio.wait_for(handle.result(), 60)).model_dump(mode="json")


async def test_the_reminder_is_due_at_the_lead_time_and_published_once(
        platform, api, clinic, published, wait_for):
    starts_at = due_in(4)
    appointment_id = await book(api, clinic, starts_at)
    assert await reminders_for(published, appointment_id) == []
    [reminder] = await wait_for(lambda: reminders_for(published, appointment_id), timeout=40)
    assert datetime.fromisoformat(reminder["starts_at"]) == starts_at
    assert reminder["lead_minutes"] == 60
    assert datetime.fromisoformat(reminder["due_at"]) >= starts_at - LEAD
    assert (await workflow_outcome(platform, appointment_id))["outcome"] == "reminded"
    row = await api("booking", "GET", f"/appointments/{appointment_id}")
    assert row.json()["reminded_at"] is not None


async def test_a_reschedule_moves_the_reminder(platform, api, clinic, published, wait_for):
    first = due_in(3)
    appointment_id = await book(api, clinic, first)
    later = first + timedelta(seconds=9)
    moved = await api("booking", "POST", f"/appointments/{appointment_id}/reschedule",
                      json={"starts_at": later.isoformat()})
    assert moved.status_code == 200, moved.text
    await asyncio.sleep(5)  # past the first time's reminder
    assert await reminders_for(published, appointment_id) == []
    [reminder] = await wait_for(lambda: reminders_for(published, appointment_id), timeout=40)
    assert datetime.fromisoformat(reminder["starts_at"]) == later
    outcome = await workflow_outcome(platform, appointment_id)
    assert outcome["outcome"] == "reminded"
    assert datetime.fromisoformat(outcome["starts_at"]) == later


async def test_a_cancellation_stops_the_reminder(platform, api, clinic, published):
    # Due in 12 s: the cancellation's event reaches the workflow well before, even on a busy
    # machine (were it later, the workflow would find the session cancelled when due and
    # end "stale", emitting nothing all the same).
    starts_at = due_in(12)
    appointment_id = await book(api, clinic, starts_at)
    cancelled = await api("booking", "POST", f"/appointments/{appointment_id}/cancel")
    assert cancelled.status_code == 200
    assert (await workflow_outcome(platform, appointment_id))["outcome"] == "cancelled"
    await asyncio.sleep((starts_at - LEAD - datetime.now(UTC)).total_seconds() + 2)
    assert await reminders_for(published, appointment_id) == []


async def deliver_twice(platform, tenant: uuid.UUID, event) -> None:
    """Publish one plan event twice with different NATS message ids, as a relay re-publish
    after its duplicate window would: only the consumer's inbox stands between it and a
    second effect."""
    envelope = CloudEvent(id=uuid.uuid4(), source="/kinetic/plan", type=event.event_type,
                          subject=str(event.aggregate_id()), time=datetime.now(UTC),
                          data=event.model_dump(mode="json"), tenantid=tenant, sequence=1)
    nc = await nats.connect(platform.nats.url)
    try:
        js = nc.jetstream()
        for attempt in range(2):
            await js.publish(nats_subject(tenant, envelope.type),
                             envelope.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": f"{envelope.id}-{attempt}"})
    finally:
        await nc.close()


async def open_episode(api, clinic) -> str:
    episode = await api("booking", "POST", "/episodes", json={
        "patient_id": clinic["patient_id"], "location_id": clinic["location_id"],
        "reason": "Knee pain when running", "symptom_site": "knee_anterior"})
    assert episode.status_code == 201, episode.text
    return episode.json()["id"]


async def test_a_reassessment_due_puts_the_episode_on_the_to_book_list_once(
        platform, api, clinic, tenant, wait_for):
    episode_id = await open_episode(api, clinic)
    await deliver_twice(platform, tenant, ReassessmentDue(
        episode_id=uuid.UUID(episode_id), patient_id=uuid.UUID(clinic["patient_id"]),
        location_id=uuid.UUID(clinic["location_id"]), reason="progress_stalled",
        due_by=date.today() + timedelta(days=7), raised_at=datetime.now(UTC)))
    path = f"/to-book?location_id={clinic['location_id']}"

    async def listed():
        return [e for e in (await api("booking", "GET", path)).json()
                if e["reason"] == "reassessment_due"]

    [entry] = await wait_for(listed)
    assert entry["episode_id"] == episode_id
    assert entry["detail"] == "Reassessment due: progress stalled"
    assert len(entry["next_slots"]) == 3
    await asyncio.sleep(1)
    assert len(await listed()) == 1
    slot = entry["next_slots"][0]
    await book(api, clinic, datetime.fromisoformat(slot["starts_at"]), episode_id=episode_id,
               therapist_id=slot["therapist_id"], appointment_type="initial_assessment")
    await book(api, clinic, datetime.fromisoformat(slot["starts_at"]) + timedelta(days=1),
               episode_id=episode_id, therapist_id=slot["therapist_id"],
               appointment_type="reassessment")
    assert await listed() == []


async def test_a_plan_not_booked_to_its_frequency_is_on_the_to_book_list(
        platform, api, clinic, tenant, wait_for):
    episode_id = await open_episode(api, clinic)
    await deliver_twice(platform, tenant, PlanCreated(
        plan_id=uuid.uuid4(), episode_id=uuid.UUID(episode_id),
        patient_id=uuid.UUID(clinic["patient_id"]), location_id=uuid.UUID(clinic["location_id"]),
        sessions_per_week=1, expected_sessions=6, target_date=date.today() + timedelta(days=60),
        created_at=datetime.now(UTC)))
    path = f"/to-book?location_id={clinic['location_id']}"

    async def under_booked():
        return [e for e in (await api("booking", "GET", path)).json()
                if e["reason"] == "under_booked"]

    [entry] = await wait_for(under_booked)
    assert entry["detail"].startswith("0 of 2 sessions booked in the next 14 days")
    # The next free treatment slots come with it, to book from the list.
    assert len(entry["next_slots"]) == 3
    assert all(datetime.fromisoformat(s["starts_at"]) > datetime.now(UTC)
               for s in entry["next_slots"])
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    await book(api, clinic, start, episode_id=episode_id, appointment_type="initial_assessment")
    assert (await under_booked())[0]["detail"].startswith("1 of 2")
    await book(api, clinic, start + timedelta(days=4), episode_id=episode_id)
    assert await under_booked() == []


async def test_a_discharge_closes_the_episode_once(platform, api, clinic, tenant, wait_for,
                                                   published):
    episode_id = await open_episode(api, clinic)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    ahead = [await book(api, clinic, start, episode_id=episode_id,
                        appointment_type="initial_assessment"),
             await book(api, clinic, start + timedelta(days=3), episode_id=episode_id)]
    await deliver_twice(platform, tenant, EpisodeDischarged(
        episode_id=uuid.UUID(episode_id), patient_id=uuid.UUID(clinic["patient_id"]),
        location_id=uuid.UUID(clinic["location_id"]), discharged_at=datetime.now(UTC)))

    async def closed():
        return (await api("booking", "GET", f"/episodes/{episode_id}")).json()["status"] \
            == "closed"

    await wait_for(closed)
    closings = await wait_for(lambda: published("kinetic.booking.episode.closed.v1"))
    await asyncio.sleep(1)
    closings = await published("kinetic.booking.episode.closed.v1")
    assert [c["data"]["episode_id"] for c in closings] == [episode_id]
    refused = await api("booking", "POST", "/appointments", json={
        "patient_id": clinic["patient_id"], "therapist_id": clinic["therapist_id"],
        "location_id": clinic["location_id"], "appointment_type": "treatment_session",
        "episode_id": episode_id,
        "starts_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()})
    assert refused.status_code == 422
    assert refused.json()["type"] == "/problems/episode-closed"
    # Its sessions booked ahead are cancelled, in good time (no fee), once each.
    for appointment_id in ahead:
        got = (await api("booking", "GET", f"/appointments/{appointment_id}")).json()
        assert got["status"] == "cancelled" and got["late_cancel"] is False, got
    cancellations = await published("kinetic.booking.appointment.cancelled.v1")
    assert sorted(c["data"]["appointment_id"] for c in cancellations) == sorted(ahead)
    assert {c["data"]["late"] for c in cancellations} == {False}
