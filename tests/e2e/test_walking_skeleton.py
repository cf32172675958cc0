"""The walking skeleton end to end: booking opens an episode over HTTP, and the event reaches
assessment, plan and billing through the relay and JetStream, each recording it in its own
database and answering for it over its own API."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.platform


async def open_episode(api, front_desk) -> str:
    response = await api("booking", "POST", "/episodes", json={
        "patient_id": front_desk["patient_id"], "location_id": front_desk["location_id"],
        "reason": "Right anterior knee pain when running for 10 weeks",
        "symptom_site": "knee_anterior", "goal": "Run 10 km at pre-injury pace",
        "goal_target_date": "2027-03-01"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_an_opened_episode_reaches_assessment_plan_and_billing(api, front_desk, wait_for):
    episode_id = await open_episode(api, front_desk)

    booked = await api("booking", "GET", f"/episodes/{episode_id}")
    assert booked.status_code == 200
    assert booked.json()["status"] == "open"

    async def seen(service: str, path: str):
        response = await api(service, "GET", path)
        return response.json() if response.status_code == 200 else None

    evaluation = await wait_for(lambda: seen("assessment", f"/episodes/{episode_id}"))
    assert evaluation["evaluation_status"] == "awaiting_initial_evaluation"
    assert evaluation["patient_id"] == front_desk["patient_id"]

    caseload = await wait_for(lambda: seen("plan", f"/episodes/{episode_id}"))
    assert caseload["plan_status"] == "awaiting_evaluation"

    account = await wait_for(lambda: seen("billing", f"/accounts/{front_desk['patient_id']}"))
    assert account["episodes"] == 1
    assert account["last_episode_id"] == episode_id


async def test_plan_starts_one_episode_of_care_workflow_per_episode(api, front_desk, wait_for):
    episode_id = await open_episode(api, front_desk)

    async def workflow():
        response = await api("plan", "GET", f"/episodes/{episode_id}/workflow")
        return response.json() if response.status_code == 200 else None

    state = await wait_for(workflow)
    assert state == {"workflow_id": f"episode-of-care-{episode_id}",
                     "stage": "awaiting_evaluation"}


async def test_another_organization_cannot_see_the_episode_anywhere(api, front_desk, wait_for):
    import uuid

    episode_id = await open_episode(api, front_desk)
    await wait_for(lambda: _status(api, "billing", f"/accounts/{front_desk['patient_id']}", 200))
    stranger = uuid.uuid4()
    for service, path in [("booking", f"/episodes/{episode_id}"),
                          ("booking", f"/patients/{front_desk['patient_id']}"),
                          ("assessment", f"/episodes/{episode_id}"),
                          ("plan", f"/episodes/{episode_id}"),
                          ("billing", f"/accounts/{front_desk['patient_id']}")]:
        response = await api(service, "GET", path, as_tenant=stranger)
        assert response.status_code == 404, (service, path)
        assert response.headers["content-type"] == "application/problem+json"


async def _status(api, service, path, expected):
    return (await api(service, "GET", path)).status_code == expected


async def test_registering_with_the_same_idempotency_key_creates_one_patient(api, front_desk):
    import uuid

    key = str(uuid.uuid4())
    body = {"given_name": "Grace", "family_name": "Canarysdottir", "date_of_birth": "1990-01-01",
            "home_location_id": front_desk["location_id"]}
    first = await api("booking", "POST", "/patients", json=body, headers={"Idempotency-Key": key})
    second = await api("booking", "POST", "/patients", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()


async def test_an_idempotency_key_sent_again_with_another_patient_is_refused_not_answered(
        api, front_desk):
    """Answering the first patient's id would silently leave the second unregistered."""
    import uuid

    key = str(uuid.uuid4())
    body = {"given_name": "Grace", "family_name": "Keyreuse", "date_of_birth": "1990-01-01",
            "home_location_id": front_desk["location_id"]}
    first = await api("booking", "POST", "/patients", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    other = await api("booking", "POST", "/patients", json={**body, "given_name": "Alan"},
                      headers={"Idempotency-Key": key})
    assert other.status_code == 422, other.text
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    found = await api("booking", "GET", "/patients?q=Keyreuse")
    assert [p["given_name"] for p in found.json()] == ["Grace"]
    again = await api("booking", "POST", "/patients", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.json() == first.json()


async def test_an_idempotency_key_reused_by_another_organization_gets_its_own_effect(api):
    import uuid

    key = str(uuid.uuid4())
    body = {"name": "Shared Key Clinic", "timezone": "Europe/Berlin"}
    mine = await api("booking", "POST", "/locations", json=body, headers={"Idempotency-Key": key})
    theirs = await api("booking", "POST", "/locations", json=body,
                       headers={"Idempotency-Key": key}, as_tenant=uuid.uuid4())
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
