"""The operator connects a partner system in a real browser: registers it with a grant, hands
the secret shown once to a real webhook receiver on loopback, sees a booking event delivered
in the partner's log, rotates its secret and replays the event, which arrives again with its
original id. A plain-http webhook elsewhere is refused with the API's problem and registers
nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.conftest import operator_of
from tests.e2e.test_partners import Receiver

pytestmark = [pytest.mark.platform, pytest.mark.browser]

LOCATIONS = "kinetic.booking.location.registered.v1"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def _some(items: list[Any]) -> list[Any] | None:
    return items or None


async def fill_registration(page: Page, name: str, webhook_url: str, event_types: str) -> None:
    form = page.locator("#register")
    await form.get_by_label("Name").fill(name)
    await form.get_by_label("Webhook URL").fill(webhook_url)
    await form.get_by_label("Event types").fill(event_types)
    await expect(form.get_by_label("identifiers")).to_be_checked()  # the default grant
    await form.get_by_role("button", name="Register partner").click()


async def test_an_operator_registers_a_partner_sees_its_delivery_and_replays_it(
        signed_in, api, tenant, receiver, wait_for):
    # Before the event, to the minute (what a datetime-local input takes).
    before = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    page = await signed_in("partners", operator_of(tenant))
    await page.goto("/admin/partners")
    await expect(page.locator("#partners")).to_contain_text("No partners yet.")

    await fill_registration(page, "acme-crm", receiver.url, LOCATIONS)
    await expect(page.locator("#status")).to_have_text("Partner acme-crm registered.")
    await expect(page.locator("#secret")).to_contain_text("it will not be shown again")
    receiver.secret = await page.locator("#secret-value").inner_text()
    assert receiver.secret.startswith("whsec_")
    row = page.locator("#partners tbody tr", has_text="acme-crm")
    await expect(row.get_by_role("cell")).to_have_text(
        ["acme-crm", receiver.url, LOCATIONS, "identifiers",
         re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$")])
    [partner] = (await api("partners", "GET", "/partners")).json()
    assert partner["event_types"] == [LOCATIONS]
    await page.goto("/admin/partners")
    await expect(page.locator("#secret")).to_have_count(0)  # shown once only

    created = await api("booking", "POST", "/locations",
                        json={"name": "Partner Clinic", "timezone": "Europe/Berlin"})
    assert created.status_code == 201, created.text
    [event] = await wait_for(lambda: _some(receiver.of_type(LOCATIONS)), timeout=90)
    assert event["data"]["location_id"] == created.json()["id"]

    # The dispatcher records the answer after the receiver took it: wait for that, then look.
    async def delivered() -> bool:
        log = (await api("partners", "GET", f"/partners/{partner['partner_id']}/deliveries")
               ).json()
        return [d["status"] for d in log] == ["delivered"]

    await wait_for(delivered, timeout=60)
    await row.get_by_role("link", name="acme-crm").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Partner acme-crm")
    delivery = page.locator(f'#deliveries tr[data-event="{event["id"]}"]')
    await expect(delivery.locator(".status")).to_have_text("delivered")
    await expect(delivery.locator(".attempts")).to_have_text("1")
    await expect(delivery.locator(".answer")).to_have_text("200")
    await expect(delivery).to_contain_text(LOCATIONS)

    # A new secret, shown once; both sign during the overlap, so the receiver may keep the
    # old one while it checks the new one too.
    rotate = page.locator("#rotate")
    await expect(rotate.get_by_label("Overlap hours")).to_have_value("24")
    await rotate.get_by_role("button", name="Rotate secret").click()
    await expect(page.locator("#status")).to_have_text(
        "New secret issued; the previous one signs too for 24 hours.")
    new = await page.locator("#secret-value").inner_text()
    assert new.startswith("whsec_") and new != receiver.secret
    receiver.also = [new]

    replay = page.locator("#replay")
    await replay.get_by_label("Replay from").fill(before)
    await replay.get_by_role("button", name="Replay").click()
    await expect(page.locator("#status")).to_have_text(
        f"Replay from {before.replace('T', ' ')} UTC: 1 delivery sent again, by webhook and "
        f"on NATS.")
    await expect(page.locator("#secret")).to_have_count(0)
    await wait_for(lambda: _some(receiver.of_type(LOCATIONS)[1:]), timeout=60)
    assert [e["id"] for e in receiver.received] == [event["id"], event["id"]]
    assert receiver.rejected == 0


async def test_a_plain_http_webhook_elsewhere_is_refused_on_the_page_and_registers_nothing(
        signed_in, api, tenant):
    page = await signed_in("partners", operator_of(tenant))
    await page.goto("/admin/partners")
    await fill_registration(page, "plain-http", "http://crm.example/hook",
                            "kinetic.booking.*, kinetic.billing.*")
    await expect(page.locator("#status")).to_have_text(
        "Not registered: Webhooks go to HTTPS addresses only: "
        "'http://crm.example/hook' is not an https:// address")
    await expect(page.locator("#secret")).to_have_count(0)
    form = page.locator("#register")  # what was typed stays, to be corrected
    await expect(form.get_by_label("Webhook URL")).to_have_value("http://crm.example/hook")
    await expect(form.get_by_label("Event types")).to_have_value(
        "kinetic.booking.*, kinetic.billing.*")
    await expect(page.locator("#partners")).to_contain_text("No partners yet.")
    assert (await api("partners", "GET", "/partners")).json() == []


async def test_the_keys_an_operator_issues_on_the_page_let_the_partner_in(
        signed_in, api, tenant, platform, urls):
    """Each key is shown once with what the partner needs beside it, and it works: the NATS
    key connects to the real server, the FHIR key reads /fhir/R4."""
    import httpx
    import nats

    from kinetic_contracts.partner_feed import FeedAccess

    registered = await api("partners", "POST", "/partners", json={
        "name": "keyed-ehr", "webhook_url": "http://127.0.0.1:9/unused",
        "grant": {"event_types": [LOCATIONS]}})
    assert registered.status_code == 201, registered.text
    partner_id = registered.json()["partner_id"]
    page = await signed_in("partners", operator_of(tenant))
    await page.goto(f"/admin/partners/{partner_id}")

    await page.locator("#keys").get_by_role("button", name="New NATS key").click()
    await expect(page.locator("#status")).to_have_text(
        "New NATS key issued; the previous one stops working.")
    nats_key = await page.locator("#secret-value").inner_text()
    feed = FeedAccess.from_key(nats_key)
    await expect(page.locator("#secret")).to_contain_text(feed.durable)
    await expect(page.locator("#secret")).to_contain_text(feed.inbox_prefix)
    nc = await nats.connect(platform.nats.url, token=nats_key, inbox_prefix=feed.inbox_prefix,
                            allow_reconnect=False, connect_timeout=5)
    assert nc.is_connected
    await nc.close()

    await page.locator("#keys").get_by_role("button", name="New FHIR key").click()
    await expect(page.locator("#status")).to_have_text(
        "New FHIR key issued; the previous one stops working.")
    fhir_key = await page.locator("#secret-value").inner_text()
    assert fhir_key.startswith("kfk_")
    async with httpx.AsyncClient() as client:
        read = await client.get(f"{urls['partners']}/fhir/R4/Location",
                                headers={"Authorization": f"Bearer {fhir_key}"})
    assert read.status_code == 200 and read.json()["resourceType"] == "Bundle"
    await page.goto(f"/admin/partners/{partner_id}")
    await expect(page.locator("#secret")).to_have_count(0)  # shown once only
