"""The clinic's own cancellations cost the patient nothing: a discharge cancels the episode's
sessions booked ahead as the clinic's cancellation, and the front desk cancels so when a
therapist is off sick. Even a session a few hours away, inside billing's 24-hour window, costs
nothing: booking marks it ``by_clinic`` (and not late, so there is no fee for the front desk
to waive), and billing starts no charge for it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.service import RPCError, RPCStatusCode

from billing.application.workflows import workflow_id
from kinetic_contracts.plan.v1.events import EpisodeDischarged
from kinetic_infra.stack.temporal import NAMESPACE
from kinetic_infra.temporal import connect_client
from tests.e2e.test_billing import (  # noqa: F401  (priced is a fixture)
    _handled_by_billing,
    charge_of,
    invoices_for,
    priced,
)
from tests.e2e.test_booking_reactions import deliver_twice, open_episode

pytestmark = pytest.mark.platform


async def charge_workflow_started(platform, appointment_id: uuid.UUID) -> bool:
    client = await connect_client(platform.temporal.address, NAMESPACE)
    try:
        await client.get_workflow_handle(workflow_id(appointment_id)).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_a_discharge_the_evening_before_cancels_tomorrows_session_without_a_fee(
        platform, api, priced, tenant, wait_for, published):  # noqa: F811
    episode_id = await open_episode(api, priced)
    soon = (datetime.now(UTC) + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    ahead = []
    for starts_at, kind in ((soon, "initial_assessment"),
                            (soon + timedelta(hours=13), "treatment_session")):
        booked = await api("booking", "POST", "/appointments", json={
            "patient_id": priced["patient_id"], "therapist_id": priced["therapist_id"],
            "location_id": priced["location_id"], "appointment_type": kind,
            "episode_id": episode_id, "starts_at": starts_at.isoformat()})
        assert booked.status_code == 201, booked.text
        ahead.append(booked.json()["id"])

    await deliver_twice(platform, tenant, EpisodeDischarged(
        episode_id=uuid.UUID(episode_id), patient_id=uuid.UUID(priced["patient_id"]),
        location_id=uuid.UUID(priced["location_id"]), discharged_at=datetime.now(UTC)))

    async def cancellations() -> list[dict]:
        found = [c["data"] for c in await published("kinetic.booking.appointment.cancelled.v1")]
        return found if len(found) == len(ahead) else []

    cancelled = await wait_for(cancellations)
    assert sorted(c["appointment_id"] for c in cancelled) == sorted(ahead)
    assert {(c["late"], c["by_clinic"]) for c in cancelled} == {(False, True)}

    # Billing's consumer has handled both cancellations (a marker after them is charged):
    # it started no charge, so no invoice is issued, reminded or marked overdue.
    await _handled_by_billing(platform, tenant, priced, wait_for)
    for appointment_id in map(uuid.UUID, ahead):
        assert not await charge_workflow_started(platform, appointment_id)
        assert await charge_of(platform, appointment_id) is None
        assert await invoices_for(platform, appointment_id) == []


async def test_a_session_the_clinic_cancels_inside_the_window_is_not_late_and_costs_nothing(
        platform, api, urls, session_of, priced, tenant, wait_for, published):  # noqa: F811
    """A therapist off sick: the front desk cancels this afternoon's sessions as the clinic's
    cancellations, by the API and by the day view's "Clinic cancels" button. Inside the
    24-hour window, yet neither is late, and billing charges neither."""
    import httpx

    soon = (datetime.now(UTC) + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    sessions = []
    for starts_at in (soon, soon + timedelta(hours=1)):
        booked = await api("booking", "POST", "/appointments", json={
            "patient_id": priced["patient_id"], "therapist_id": priced["therapist_id"],
            "location_id": priced["location_id"], "appointment_type": "treatment_session",
            "starts_at": starts_at.isoformat()})
        assert booked.status_code == 201, booked.text
        sessions.append(booked.json()["id"])
    by_api, by_page = sessions

    cancelled = await api("booking", "POST", f"/appointments/{by_api}/cancel",
                          json={"by_clinic": True})
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["late"], cancelled.json()["by_clinic"]) == (False, True)
    async with httpx.AsyncClient(base_url=urls["booking"], cookies=session_of(tenant),
                                 timeout=30) as desk:
        done = await desk.post(f"/admin/front-desk/appointments/{by_page}/cancel",
                               data={"back": "/admin/front-desk", "by_clinic": "1"})
    assert done.status_code == 303, done.text
    assert "Cancelled+by+the+clinic%3A+no+fee." in done.headers["location"]

    async def cancellations() -> list[dict]:
        found = [c["data"] for c in await published("kinetic.booking.appointment.cancelled.v1")]
        return found if len(found) == len(sessions) else []

    assert {(c["appointment_id"], c["late"], c["by_clinic"]) for c in await wait_for(
        cancellations)} == {(by_api, False, True), (by_page, False, True)}
    await _handled_by_billing(platform, tenant, priced, wait_for)
    for appointment_id in map(uuid.UUID, sessions):
        assert not await charge_workflow_started(platform, appointment_id)
        assert await charge_of(platform, appointment_id) is None
