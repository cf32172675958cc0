"""Partner systems on NATS: each reads its own feed on the real server, with the permissions
the server's auth callout gave its key, through a durable consumer that keeps its position.
What it may not touch (another organization's subjects, wildcards, another partner's
consumer, any publish) the server refuses as a permissions violation."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from kinetic_contracts.partner_feed import FeedAccess, durable_name, feed_subjects

pytestmark = pytest.mark.platform

EXAMPLE = Path(__file__).parents[2] / "contracts" / "examples" / "nats_consumer.py"
LOCATION_REGISTERED = "kinetic.booking.location.registered.v1"


class PartnerConnection:
    """A partner system's NATS connection, made with its key; keeps the server's errors."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self.feed = FeedAccess.from_key(key)
        self.errors: list[str] = []
        self.nc: Client | None = None

    async def __aenter__(self) -> PartnerConnection:
        async def collect(error: Exception) -> None:
            self.errors.append(str(error))

        self.nc = await nats.connect(self.url, token=self.key, error_cb=collect,
                                     inbox_prefix=self.feed.inbox_prefix,
                                     allow_reconnect=False, connect_timeout=5)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def read_all(self, enough: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Events from the partner's durable consumer (acknowledged) until ``enough(events)``.
        Across the end of a session (10 s in tests) it connects again, as a partner's client
        does: the durable consumer resumes where it was."""
        assert self.nc is not None
        sub = await self.nc.jetstream().pull_subscribe_bind(self.feed.durable, self.feed.stream)
        events: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while not enough(events):
            assert asyncio.get_running_loop().time() < deadline, f"only {len(events)} arrived"
            try:
                for message in await sub.fetch(100, timeout=2):
                    events.append(json.loads(message.data))
                    await message.ack()
            except asyncio.TimeoutError:  # nothing new (nats-py raises either kind)
                pass
            except nats.errors.ConnectionClosedError:  # the session ended
                await self.__aenter__()
                assert self.nc is not None
                sub = await self.nc.jetstream().pull_subscribe_bind(self.feed.durable,
                                                                    self.feed.stream)
        return events


async def nats_key(api, partner_id: str, **kw: Any) -> dict[str, Any]:
    response = await api("partners", "POST", f"/partners/{partner_id}/nats-key", **kw)
    assert response.status_code == 200, response.text
    return response.json()


async def register(api, name: str, *patterns: str, **kw: Any) -> dict[str, Any]:
    response = await api("partners", "POST", "/partners", **kw, json={
        "name": name, "webhook_url": "http://127.0.0.1:9/unused",
        "grant": {"event_types": list(patterns)}})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def partner_connection(platform) -> Any:
    return lambda key: PartnerConnection(platform.nats.url, key)


async def test_the_example_consumer_reads_the_feed_and_resumes_where_it_stopped(
        api, platform):
    """The consumer partners are given to start from, run as it is: it connects with the
    key, prints each event once, and after a stop it goes on with what came meanwhile."""
    partner = await register(api, "nats-example", LOCATION_REGISTERED)
    issued = await nats_key(api, partner["partner_id"])
    assert issued["durable"] == durable_name(uuid.UUID(partner["partner_id"]))

    async def run_until(count: int) -> list[dict[str, Any]]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), "--server", platform.nats.url,
            "--key", issued["nats_key"],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert b"reading" in await asyncio.wait_for(process.stderr.readline(), 30)
            return [json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
                    for _ in range(count)]
        finally:
            await asyncio.sleep(1)  # its acknowledgements go out
            process.terminate()
            await process.wait()

    async def new_location(name: str) -> str:
        response = await api("booking", "POST", "/locations", json={
            "name": name, "timezone": "Europe/Berlin"})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    first = await new_location("First Clinic")
    printed = await run_until(1)
    assert [(e["type"], e["data"]["location_id"]) for e in printed] == [
        (LOCATION_REGISTERED, first)]

    later = [await new_location("Second Clinic"), await new_location("Third Clinic")]
    printed = await run_until(2)
    assert [e["data"]["location_id"] for e in printed] == later  # in order, the first not again

    nc = await nats.connect(platform.nats.url)  # the services' view: nothing left pending
    try:
        info = await nc.jetstream().consumer_info(issued["stream"], issued["durable"])
        assert (info.num_pending, info.num_ack_pending) == (0, 0)
    finally:
        await nc.close()


async def test_a_partner_cannot_read_another_orgs_subjects_or_consumer_on_the_real_server(
        api, partner_connection):
    """Partner A of one organization and partner B of another, each with its key: whatever A
    tries beyond its own feed the server answers with a permissions violation, and A's
    consumer holds only A's events."""
    orgs = {"a": uuid.uuid4(), "b": uuid.uuid4()}
    keys, partners = {}, {}
    for name, org in orgs.items():
        partners[name] = await register(api, f"{name}-ehr", LOCATION_REGISTERED, as_tenant=org)
        keys[name] = (await nats_key(api, partners[name]["partner_id"], as_tenant=org))["nats_key"]
    b = FeedAccess.from_key(keys["b"])

    for org in orgs.values():
        for _ in range(3):
            response = await api("booking", "POST", "/locations", as_tenant=org, json={
                "name": "Clinic", "timezone": "Europe/Berlin"})
            assert response.status_code == 201, response.text

    async with partner_connection(keys["a"]) as a:
        assert a.nc is not None
        for subject in (feed_subjects(b.tenant_id, b.partner_id), f"kinetic.{b.tenant_id}.>",
                        "kinetic.>", "kinetic.*.partners.feed.>", ">",
                        f"{b.inbox_prefix}.>"):
            await a.nc.subscribe(subject)
        await a.nc.publish(f"kinetic.{orgs['a']}.booking.location.registered", b"{}")
        await a.nc.flush()
        with pytest.raises(Exception):  # noqa: B017 - the server's refusal, whatever its class
            sub = await a.nc.jetstream().pull_subscribe_bind(b.durable, b.stream)
            await sub.fetch(1, timeout=2)
        await asyncio.sleep(0.5)
        violations = [e for e in a.errors if "permissions violation" in e.lower()]
        assert len(violations) >= 7, a.errors

    async with partner_connection(keys["a"]) as a:  # a fresh connection: its own feed is fine
        events = await a.read_all(lambda got: len(got) >= 3)
        assert {e["tenantid"] for e in events} == {str(orgs["a"])}
        assert len({e["id"] for e in events}) == 3
        assert not [e for e in a.errors if "violation" in e.lower()]


async def test_only_a_current_nats_key_is_admitted(api, partner_connection):
    """A made-up key, a FHIR key and a replaced NATS key are all refused at connect."""
    partner = await register(api, "keyed-ehr", LOCATION_REGISTERED)
    old = (await nats_key(api, partner["partner_id"]))["nats_key"]
    current = (await nats_key(api, partner["partner_id"]))["nats_key"]
    fhir = (await api("partners", "POST",
                      f"/partners/{partner['partner_id']}/fhir-key")).json()["fhir_key"]
    forged = current[:-6] + "AAAAAA"
    for key in (old, forged, "knk_" + fhir.removeprefix("kfk_")):
        with pytest.raises(Exception, match="(?i)authorization"):
            async with partner_connection(key):
                pass
    async with partner_connection(current) as admitted:
        assert admitted.nc is not None and admitted.nc.is_connected


async def test_a_replaced_nats_key_ends_the_connections_it_opened_within_a_session(
        api, partner_connection):
    """The server admits a connection for a session (10 s in tests, 15 min by default) and
    then asks again: a connection opened with a key since replaced is closed, not left
    reading the feed."""
    partner = await register(api, "rotated-crm", LOCATION_REGISTERED)
    old = (await nats_key(api, partner["partner_id"]))["nats_key"]
    async with partner_connection(old) as leaked:
        assert leaked.nc is not None and leaked.nc.is_connected
        await nats_key(api, partner["partner_id"])  # the operator replaces the key
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not leaked.nc.is_closed:
            assert loop.time() < deadline, "the replaced key's connection stayed open"
            await asyncio.sleep(0.2)
        assert "expired" in str(leaked.nc.last_error).lower()


async def test_the_example_consumer_reads_on_across_the_end_of_its_session(api, platform):
    """At a session's end the example connects again with its key (still current) and
    goes on with the events that came meanwhile."""
    partner = await register(api, "nats-long-reader", LOCATION_REGISTERED)
    issued = await nats_key(api, partner["partner_id"])
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), "--server", platform.nats.url, "--key",
        issued["nats_key"], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def said(text: bytes) -> None:
        while text not in await process.stderr.readline():
            pass

    async def new_location(name: str) -> str:
        response = await api("booking", "POST", "/locations", json={
            "name": name, "timezone": "Europe/Berlin"})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    try:
        await asyncio.wait_for(said(b"reading"), 30)
        before = await new_location("Before")
        assert json.loads(await asyncio.wait_for(process.stdout.readline(), 60))[
            "data"]["location_id"] == before
        await asyncio.wait_for(said(b"session ended"), 30)
        after = await new_location("After")
        await asyncio.wait_for(said(b"reading"), 30)
        assert json.loads(await asyncio.wait_for(process.stdout.readline(), 60))[
            "data"]["location_id"] == after
    finally:
        process.terminate()
        await process.wait()


async def test_a_replay_sends_the_partners_nats_feed_again_from_that_time(api, partner_connection):
    """A partner that lost what it read asks for a replay from a time: its feed carries every
    event from then on again, with the events' own ids, and none from before."""
    partner = await register(api, "replaying-ehr", LOCATION_REGISTERED)
    key = (await nats_key(api, partner["partner_id"]))["nats_key"]

    async def new_location(name: str) -> str:
        response = await api("booking", "POST", "/locations", json={
            "name": name, "timezone": "Europe/Berlin"})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def ids(events: list[dict[str, Any]]) -> list[str]:
        return [e["data"]["location_id"] for e in events]

    before = await new_location("Before the loss")
    async with partner_connection(key) as reader:
        assert ids(await reader.read_all(lambda got: len(got) >= 1)) == [before]
        since = datetime.now(UTC)
        await asyncio.sleep(0.5)
        lost = [await new_location("Lost 1"), await new_location("Lost 2")]
        first = await reader.read_all(lambda got: len(got) >= 2)
        assert ids(first) == lost

    replay = await api("partners", "POST", f"/partners/{partner['partner_id']}/replay",
                       json={"since": since.isoformat()})
    assert replay.status_code == 200, replay.text
    assert replay.json() == {"requeued": 2}
    async with partner_connection(key) as reader:
        again = await reader.read_all(lambda got: len(got) >= 2)
        assert ids(again) == lost  # from the time on, in order, and nothing older
        assert [e["id"] for e in again] == [e["id"] for e in first]
