"""One-hour one-on-one sessions that can never be double-booked, and cancellations that the
location's policy calls late or not."""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import urlencode
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from kinetic_infra.auth.principal import Principal, Role

pytestmark = pytest.mark.platform


def hour_from_now(hours: float) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


async def new_patient(api, location_id: str, name: str) -> str:
    response = await api("booking", "POST", "/patients", json={
        "given_name": name, "family_name": "Testperson", "date_of_birth": "1985-05-05",
        "home_location_id": location_id})
    return response.json()["id"]


def booking(clinic: dict[str, str], starts_at: datetime, **overrides) -> dict:
    return {"patient_id": clinic["patient_id"], "therapist_id": clinic["therapist_id"],
            "location_id": clinic["location_id"], "appointment_type": "treatment_session",
            "starts_at": starts_at.isoformat(), **overrides}


async def booked_overlaps(platform, tenant: uuid.UUID) -> int:
    conn = await asyncpg.connect(platform.maintenance_url("booking"))
    try:
        return await conn.fetchval("""
            SELECT count(*) FROM appointments a JOIN appointments b
              ON a.appointment_id < b.appointment_id AND a.tenant_id = b.tenant_id
             AND (a.therapist_id = b.therapist_id OR a.patient_id = b.patient_id)
             AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)
            WHERE a.tenant_id = $1 AND a.status = 'booked' AND b.status = 'booked'""", tenant)
    finally:
        await conn.close()


async def test_fifty_concurrent_bookings_of_one_therapist_hour_let_exactly_one_through(
        platform, api, clinic, tenant):
    start = hour_from_now(48)
    patients = [await new_patient(api, clinic["location_id"], f"P{i}") for i in range(10)]
    requests = [
        booking(clinic, start + timedelta(minutes=(i % 5) * 10), patient_id=patients[i % 10])
        for i in range(50)  # the same hour, and ranges overlapping it by 10–40 minutes
    ]
    responses = await asyncio.gather(*(api("booking", "POST", "/appointments", json=body)
                                       for body in requests))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 49, statuses
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["type"] == "/problems/slot-taken"
    assert await booked_overlaps(platform, tenant) == 0


async def test_a_patient_cannot_be_in_two_sessions_at_once(platform, api, clinic, tenant):
    other = await api("booking", "POST", "/therapists",
                      json={"location_ids": [clinic["location_id"]]})
    start = hour_from_now(30)
    first = await api("booking", "POST", "/appointments", json=booking(clinic, start))
    second = await api("booking", "POST", "/appointments", json=booking(
        clinic, start + timedelta(minutes=30), therapist_id=other.json()["id"]))
    assert (first.status_code, second.status_code) == (201, 409)
    assert await booked_overlaps(platform, tenant) == 0


async def test_bad_bookings_are_refused_and_write_nothing(platform, api, clinic, tenant):
    stranger_patient = await new_patient_elsewhere(api)
    cases = [
        (booking(clinic, hour_from_now(-2)), 422, "/problems/appointment-in-the-past"),
        (booking(clinic, hour_from_now(5), therapist_id=str(uuid.uuid4())), 404,
         "/problems/therapist-not-found"),
        (booking(clinic, hour_from_now(5), patient_id=stranger_patient), 404,
         "/problems/patient-not-found"),
        ({**booking(clinic, hour_from_now(5)), "starts_at": "2027-01-01T09:00:00"}, 422,
         "/problems/request-validation-failed"),  # no UTC offset: ambiguous
    ]
    for body, status, problem in cases:
        response = await api("booking", "POST", "/appointments", json=body)
        assert response.status_code == status, response.text
        assert response.json()["type"] == problem
    conn = await asyncpg.connect(platform.maintenance_url("booking"))
    try:
        assert await conn.fetchval(
            "SELECT count(*) FROM appointments WHERE tenant_id = $1", tenant) == 0
        assert await conn.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1 "
                                   "AND stream_name LIKE 'appointment-%'", tenant) == 0
    finally:
        await conn.close()


async def new_patient_elsewhere(api) -> str:
    other = uuid.uuid4()
    location = await api("booking", "POST", "/locations", as_tenant=other,
                         json={"name": "Elsewhere", "timezone": "Europe/Berlin"})
    patient = await api("booking", "POST", "/patients", as_tenant=other, json={
        "given_name": "Other", "family_name": "Org", "date_of_birth": "1970-01-01",
        "home_location_id": location.json()["id"]})
    return patient.json()["id"]


async def test_the_locations_window_decides_a_late_cancel_and_the_event_says_so(
        platform, api, clinic, tenant):
    soon = await api("booking", "POST", "/appointments", json=booking(clinic, hour_from_now(3)))
    later = await api("booking", "POST", "/appointments",
                      json=booking(clinic, hour_from_now(72)))
    late = await api("booking", "POST", f"/appointments/{soon.json()['id']}/cancel")
    early = await api("booking", "POST", f"/appointments/{later.json()['id']}/cancel")
    assert (late.json()["late"], early.json()["late"]) == (True, False)
    again = await api("booking", "POST", f"/appointments/{soon.json()['id']}/cancel")
    assert again.status_code == 409
    conn = await asyncpg.connect(platform.maintenance_url("booking"))
    try:
        events = await conn.fetch(
            "SELECT data FROM events WHERE tenant_id = $1 AND type = $2 ORDER BY global_position",
            tenant, "kinetic.booking.appointment.cancelled.v1")
    finally:
        await conn.close()
    import json

    assert [json.loads(e["data"])["late"] for e in events] == [True, False]


async def test_a_cancelled_hour_can_be_booked_again(api, clinic):
    start = hour_from_now(26)
    first = await api("booking", "POST", "/appointments", json=booking(clinic, start))
    await api("booking", "POST", f"/appointments/{first.json()['id']}/cancel")
    second = await api("booking", "POST", "/appointments", json=booking(clinic, start))
    assert second.status_code == 201
    day = await api("booking", "GET", f"/appointments?location_id={clinic['location_id']}"
                    f"&start={(start - timedelta(hours=1)).isoformat().replace('+', '%2B')}"
                    f"&end={(start + timedelta(hours=2)).isoformat().replace('+', '%2B')}")
    assert sorted(a["status"] for a in day.json()) == ["booked", "cancelled"]


async def test_the_front_desk_checks_a_patient_in_and_the_session_completes(api, clinic):
    soon = await api("booking", "POST", "/appointments",
                     json=booking(clinic, hour_from_now(0.5)))
    appointment_id = soon.json()["id"]
    too_early = await api("booking", "POST", f"/appointments/{appointment_id}/complete")
    assert too_early.status_code == 409
    assert too_early.json()["type"] == "/problems/appointment-state"
    checked_in = await api("booking", "POST", f"/appointments/{appointment_id}/check-in")
    assert checked_in.status_code == 200 and checked_in.json()["status"] == "checked_in"
    assert (await api("booking", "POST", f"/appointments/{appointment_id}/cancel")
            ).status_code == 409
    done = await api("booking", "POST", f"/appointments/{appointment_id}/complete")
    assert done.json()["status"] == "completed" and done.json()["finished_at"]
    # A completed session still holds its hour.
    again = await api("booking", "POST", "/appointments",
                      json=booking(clinic, hour_from_now(0.5)))
    assert again.status_code == 409


async def test_a_completion_recorded_in_error_is_reversed_and_billing_hears_of_it(
        platform, api, clinic, tenant, published, wait_for):
    session = await api("booking", "POST", "/appointments",
                        json=booking(clinic, hour_from_now(0.5)))
    appointment_id = session.json()["id"]
    reverse = f"/appointments/{appointment_id}/reverse"
    not_yet = await api("booking", "POST", reverse, json={"reason_code": "recorded_in_error"})
    assert not_yet.status_code == 409, not_yet.text
    assert not_yet.headers["content-type"] == "application/problem+json"
    assert not_yet.json()["type"] == "/problems/appointment-state"
    await api("booking", "POST", f"/appointments/{appointment_id}/check-in")
    done = await api("booking", "POST", f"/appointments/{appointment_id}/complete")
    assert done.json()["status"] == "completed"

    therapist = Principal(f"therapist-{uuid.uuid4()}", "Therapist", tenant, location_roles={
        uuid.UUID(clinic["location_id"]): frozenset({Role.THERAPIST})})
    assert (await api("booking", "POST", reverse, json={"reason_code": "recorded_in_error"},
                      as_staff=therapist)).status_code == 403
    for bad in ({}, {"reason_code": "changed_my_mind"},
                {"reason_code": "fee_waived", "note": "extra"}):
        refused = await api("booking", "POST", reverse, json=bad)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"] == "application/problem+json"

    undone = await api("booking", "POST", reverse, json={"reason_code": "recorded_in_error"})
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "reversed"
    assert (await api("booking", "GET", f"/appointments/{appointment_id}")
            ).json()["status"] == "reversed"
    again = await api("booking", "POST", reverse, json={"reason_code": "recorded_in_error"})
    assert again.status_code == 200 and again.json()["status"] == "reversed"
    # Reversing twice credits once: one event recorded, and it reaches the broker.
    conn = await asyncpg.connect(platform.maintenance_url("booking"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1 AND type = $2",
                                   tenant, "kinetic.booking.appointment.reversed.v1") == 1
    finally:
        await conn.close()
    [event] = await wait_for(lambda: published("kinetic.booking.appointment.reversed.v1"))
    assert event["data"]["appointment_id"] == appointment_id
    assert (event["data"]["reversed_outcome"], event["data"]["reason_code"]) == (
        "completed", "recorded_in_error")


async def test_a_reversed_completion_is_no_session_in_plan(platform, api, episode, wait_for):
    therapist = await api("booking", "POST", "/therapists",
                          json={"location_ids": [episode["location_id"]]})
    session = await api("booking", "POST", "/appointments", json={
        "patient_id": episode["patient_id"], "therapist_id": therapist.json()["id"],
        "location_id": episode["location_id"], "episode_id": episode["episode_id"],
        "appointment_type": "initial_assessment", "starts_at": hour_from_now(0.5).isoformat()})
    appointment_id = session.json()["id"]
    await api("booking", "POST", f"/appointments/{appointment_id}/check-in")
    await api("booking", "POST", f"/appointments/{appointment_id}/complete")

    async def sessions_in_plan() -> int:
        conn = await asyncpg.connect(platform.maintenance_url("plan"))
        try:
            return await conn.fetchval("SELECT count(*) FROM sessions WHERE appointment_id = $1",
                                       uuid.UUID(appointment_id))
        finally:
            await conn.close()

    await wait_for(sessions_in_plan)
    undone = await api("booking", "POST", f"/appointments/{appointment_id}/reverse",
                       json={"reason_code": "recorded_in_error"})
    assert undone.json()["status"] == "reversed", undone.text
    await wait_for(lambda: _none(sessions_in_plan))


async def _none(count) -> bool:
    return await count() == 0


async def missed_session(api, clinic: dict[str, str], **overrides) -> str:
    """A session that started a moment ago and was recorded as a no-show."""
    starts_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    session = await api("booking", "POST", "/appointments",
                        json=booking(clinic, starts_at, **overrides))
    assert session.status_code == 201, session.text
    appointment_id = session.json()["id"]
    not_yet = await api("booking", "POST", f"/appointments/{appointment_id}/arrived")
    assert not_yet.status_code == 409, not_yet.text  # booked, not a no-show
    assert not_yet.json()["type"] == "/problems/appointment-state"
    await asyncio.sleep((starts_at - datetime.now(UTC)).total_seconds() + 0.2)
    missed = await api("booking", "POST", f"/appointments/{appointment_id}/no-show")
    assert missed.json()["status"] == "no_show", missed.text
    return str(appointment_id)


async def booking_events(platform, tenant: uuid.UUID, event_type: str) -> list[dict]:
    conn = await asyncpg.connect(platform.maintenance_url("booking"))
    try:
        rows = await conn.fetch("SELECT data FROM events WHERE tenant_id = $1 AND type = $2",
                                tenant, event_type)
        return [json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]
                for r in rows]
    finally:
        await conn.close()


async def test_a_patient_recorded_as_a_no_show_who_came_after_all_is_checked_in_once(
        platform, api, clinic, tenant, published, wait_for):
    missed_id = await missed_session(api, clinic)
    arrived = f"/appointments/{missed_id}/arrived"
    therapist = Principal(f"therapist-{uuid.uuid4()}", "Therapist", tenant, location_roles={
        uuid.UUID(clinic["location_id"]): frozenset({Role.THERAPIST})})
    assert (await api("booking", "POST", arrived, as_staff=therapist)).status_code == 403

    came = await api("booking", "POST", arrived)
    assert came.status_code == 201, came.text
    replacement = came.json()
    missed = (await api("booking", "GET", f"/appointments/{missed_id}")).json()
    assert missed["status"] == "reversed"
    assert replacement["appointment_id"] != missed_id
    assert (replacement["status"], replacement["replaces"]) == ("checked_in", missed_id)
    assert {k: replacement[k] for k in ("patient_id", "therapist_id", "starts_at", "ends_at")} \
        == {k: missed[k] for k in ("patient_id", "therapist_id", "starts_at", "ends_at")}
    # A double click is one replacement; the replacement itself is no no-show to replace.
    again = await api("booking", "POST", arrived)
    assert again.status_code == 201 and again.json()["appointment_id"] == \
        replacement["appointment_id"]
    replaced = f"/appointments/{replacement['appointment_id']}"
    assert (await api("booking", "POST", f"{replaced}/arrived")).status_code == 409
    done = await api("booking", "POST", f"{replaced}/complete")
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text

    [undone] = await booking_events(platform, tenant, "kinetic.booking.appointment.reversed.v1")
    assert (undone["appointment_id"], undone["reversed_outcome"], undone["reason_code"]) == (
        missed_id, "no_show", "recorded_in_error")

    async def rebooking() -> list[dict]:
        return [e for e in await published("kinetic.booking.appointment.booked.v1")
                if e["data"].get("replaces") == missed_id]

    [rebooked] = await wait_for(rebooking)
    assert rebooked["data"]["appointment_id"] == replacement["appointment_id"]
    day = await api("booking", "GET", "/appointments?" + urlencode({
        "location_id": clinic["location_id"], "start": missed["starts_at"],
        "end": missed["ends_at"]}))
    assert {(a["appointment_id"], a["status"]) for a in day.json()} == {
        (missed_id, "reversed"), (replacement["appointment_id"], "completed")}


async def test_an_arrival_after_a_no_show_whose_hour_went_to_a_walk_in_is_refused_unchanged(
        platform, api, clinic, tenant):
    missed_id = await missed_session(api, clinic)
    walk_in = await new_patient(api, clinic["location_id"], "Walkin")
    missed = (await api("booking", "GET", f"/appointments/{missed_id}")).json()
    taken = await api("booking", "POST", "/appointments", json=booking(
        clinic, datetime.fromisoformat(missed["starts_at"]) + timedelta(minutes=30),
        patient_id=walk_in))
    assert taken.status_code == 201, taken.text

    came = await api("booking", "POST", f"/appointments/{missed_id}/arrived")
    assert came.status_code == 409, came.text
    assert came.headers["content-type"] == "application/problem+json"
    assert came.json()["type"] == "/problems/slot-taken"
    # Nothing was written: the no-show stands, and no replacement exists.
    assert (await api("booking", "GET", f"/appointments/{missed_id}")).json()["status"] == \
        "no_show"
    assert await booking_events(platform, tenant,
                                "kinetic.booking.appointment.reversed.v1") == []
