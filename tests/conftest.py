"""Clients for the running platform's HTTP APIs, signed in as staff of a fresh organization
(shared by the end-to-end and browser tiers)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.stack.platform import Platform


@pytest.fixture(scope="session")
def urls(platform: Platform) -> dict[str, str]:
    return {d.name: platform.base_url(d.name) for d in platform.services}


@pytest.fixture
def tenant() -> uuid.UUID:
    return uuid.uuid4()


def operator_of(tenant: uuid.UUID) -> Principal:
    return Principal(f"operator-{tenant}", "Test operator", tenant, frozenset({Role.OPERATOR}))


@pytest.fixture
def token(platform: Platform) -> Callable[[Principal], str]:
    return platform.mint


@pytest.fixture
def session_of(platform: Platform) -> Callable[[uuid.UUID], dict[str, str]]:
    """Admin-page cookies of an organization's operator."""
    return lambda tenant: {"kinetic_token": platform.mint(operator_of(tenant))}


@pytest.fixture
def api(urls: dict[str, str], tenant: uuid.UUID, platform: Platform
        ) -> Callable[..., Awaitable[httpx.Response]]:
    """Call a service as the organization's operator (or ``as_staff`` / ``as_tenant``)."""

    async def call(service: str, method: str, path: str, *, json: Any = None,
                   headers: dict[str, str] | None = None, as_tenant: uuid.UUID | None = None,
                   as_staff: Principal | None = None) -> httpx.Response:
        principal = as_staff or operator_of(as_tenant or tenant)
        async with httpx.AsyncClient(base_url=urls[service], timeout=15) as client:
            return await client.request(method, path, json=json, headers={
                "Authorization": f"Bearer {platform.mint(principal)}", **(headers or {})})

    return call


async def eventually(probe: Callable[[], Awaitable[Any]], *, timeout: float = 30.0) -> Any:
    """Poll until the probe returns a truthy value (events cross processes asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


@pytest.fixture
def wait_for() -> Callable[..., Awaitable[Any]]:
    return eventually


@pytest.fixture
async def front_desk(api) -> dict[str, str]:
    """A location and a registered patient in a fresh organization."""
    location = await api("booking", "POST", "/locations",
                         json={"name": "Riverside Clinic", "timezone": "Europe/Berlin"})
    assert location.status_code == 201, location.text
    patient = await api("booking", "POST", "/patients", json={
        "given_name": "Ada", "family_name": "Canarysson", "date_of_birth": "1996-04-02",
        "home_location_id": location.json()["id"]})
    assert patient.status_code == 201, patient.text
    return {"location_id": location.json()["id"], "patient_id": patient.json()["id"]}


@pytest.fixture
async def clinic(api, front_desk) -> dict[str, str]:
    """The front desk's location and patient, and a therapist working there."""
    therapist = await api("booking", "POST", "/therapists",
                          json={"location_ids": [front_desk["location_id"]]})
    assert therapist.status_code == 201, therapist.text
    return {**front_desk, "therapist_id": therapist.json()["id"]}


async def on_the_wire(platform: Platform, tenant: uuid.UUID, event_type: str,
                      *, settle: float = 0.5) -> list[dict[str, Any]]:
    """Every CloudEvent of ``event_type`` published so far for the organization, read back
    from JetStream (the relay's outbox rows are gone once published)."""
    import nats
    from kinetic_contracts.naming import nats_subject

    assert platform.nats is not None
    nc = await nats.connect(platform.nats.url)
    try:
        received: list[dict[str, Any]] = []
        sub = await nc.jetstream().subscribe(nats_subject(tenant, event_type),
                                             ordered_consumer=True)
        while True:
            try:
                msg = await sub.next_msg(timeout=settle)
            except nats.errors.TimeoutError:
                return received
            received.append(json.loads(msg.data))
    finally:
        await nc.close()


@pytest.fixture
def published(platform: Platform, tenant: uuid.UUID) -> Callable[..., Awaitable[list[dict]]]:
    async def read(event_type: str, *, settle: float = 0.5) -> list[dict[str, Any]]:
        return await on_the_wire(platform, tenant, event_type, settle=settle)

    return read


@pytest.fixture
async def episode(api, front_desk, wait_for) -> dict[str, str]:
    """An episode of care (right anterior knee pain) that assessment already knows."""
    opened = await api("booking", "POST", "/episodes", json={
        "patient_id": front_desk["patient_id"], "location_id": front_desk["location_id"],
        "reason": "Right knee pain when running, 10 weeks", "symptom_site": "knee_anterior"})
    episode_id = opened.json()["id"]

    async def known() -> bool:
        return (await api("assessment", "GET", f"/episodes/{episode_id}")).status_code == 200

    await wait_for(known)
    return {**front_desk, "episode_id": episode_id}
