"""Billing staff in a real browser: a completed session's invoice is paid at the desk in cash
and its receipt printed; an amount finer than a cent and an overpayment are refused with
their problem and change nothing; the account and the day's takings show the payment; the
price list editor refuses a tariff in the past and schedules one ahead."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from kinetic_infra.auth.principal import Principal, Role
from tests.e2e.test_billing import completed, deliver, tariff

pytestmark = [pytest.mark.platform, pytest.mark.browser]


def billing_staff_of(tenant: uuid.UUID, location_id: str) -> Principal:
    return Principal("bea.billing", "Bea Billing", tenant,
                     location_roles={uuid.UUID(location_id): frozenset({Role.BILLING})})


def berlin_today():
    return datetime.now(ZoneInfo("Europe/Berlin")).date()


@pytest.fixture
async def priced(api, front_desk, wait_for) -> dict[str, str]:
    """The front desk's location once billing knows it, priced (EUR 150 / 95 / 120 since a
    month ago: a location's first tariff may start on any date), with a therapist."""
    location_id = front_desk["location_id"]
    therapist = await api("booking", "POST", "/therapists", json={
        "location_ids": [location_id], "display_name": "Sam Strong"})
    assert therapist.status_code == 201, therapist.text

    async def known() -> bool:
        return (await api("billing", "GET", f"/locations/{location_id}/prices")
                ).status_code == 200

    await wait_for(known, timeout=60)
    scheduled = await api("billing", "POST", f"/locations/{location_id}/prices",
                          json=tariff(berlin_today() - timedelta(days=30)))
    assert scheduled.status_code == 200, scheduled.text
    return {**front_desk, "therapist_id": therapist.json()["id"]}


@pytest.fixture
async def invoiced(api, platform, priced, tenant, wait_for) -> dict[str, str]:
    """A treatment session completed an hour ago at the location (booking's event on the
    broker), and the invoice billing issued for it."""
    session = completed(priced)
    await deliver(platform, tenant, session)

    async def issued() -> list[dict]:
        found = await api("billing", "GET", f"/invoices?location_id={priced['location_id']}")
        return found.status_code == 200 and [
            i for i in found.json() if i["appointment_id"] == str(session.appointment_id)]

    [bill] = await wait_for(issued, timeout=90)
    return {**priced, "invoice_id": bill["invoice_id"], "number": bill["number"]}


async def test_billing_staff_take_a_cash_payment_print_its_receipt_and_cannot_overpay(
        signed_in, api, invoiced, tenant):
    invoice_id = invoiced["invoice_id"]
    page = await signed_in("billing", billing_staff_of(tenant, invoiced["location_id"]))
    await page.goto("/admin/invoices")
    row = page.locator(f'tr[data-invoice="{invoice_id}"]')
    await expect(row.locator(".total")).to_have_text("€95.00")
    await expect(row.locator(".outstanding")).to_have_text("€95.00")
    await expect(row.locator(".status")).to_have_text("open")
    await row.get_by_role("link", name=invoiced["number"]).click()

    await expect(page.get_by_role("heading", level=1)).to_contain_text(
        f"Invoice {invoiced['number']}")
    await expect(page.locator("#invoice-status")).to_have_text("open")
    await expect(page.locator("#tax")).to_have_text("€0.00")
    await expect(page.locator("#lines")).to_contain_text("Treatment session (60 min)")
    payment = page.locator("#payment")
    amount = payment.get_by_label("Amount")

    # Finer than a cent: refused by the page before anything is sent; the typing stays.
    await amount.fill("95.001")
    await payment.get_by_role("button", name="Record payment").click()
    await expect(page.locator("#status")).to_have_text(
        "Not recorded: Amount: 95.001 has more decimals than EUR has (2)")
    await expect(page.locator("#invoice-status")).to_have_text("open")
    await expect(amount).to_have_value("95.001")

    await amount.fill("95.00")
    await payment.get_by_label("Method").select_option("cash")
    await payment.get_by_role("button", name="Record payment").click()
    await expect(page.locator("#status")).to_have_text("Payment of €95.00 by cash recorded.")
    await expect(page.locator("#invoice-status")).to_have_text("paid")
    await expect(page.locator("#outstanding")).to_have_text("€0.00")

    # Ten euros more on the paid invoice: the API's problem shows and nothing changes.
    await amount.fill("10.00")
    await payment.get_by_role("button", name="Record payment").click()
    await expect(page.locator("#status")).to_contain_text(
        "Not recorded: The payment is more than the invoice asks")
    await expect(page.locator("#invoice-status")).to_have_text("paid")
    await expect(amount).to_have_value("10.00")
    detail = (await api("billing", "GET", f"/invoices/{invoice_id}")).json()
    assert (detail["paid"], detail["outstanding"], detail["status"]) == (9500, 0, "paid")
    assert [h["kind"] for h in detail["history"]] == ["payment"]

    # A refund above what was paid: refused alike.
    refund = page.locator("#refund")
    await refund.get_by_label("Amount").fill("100.00")
    await refund.get_by_label("Reason").fill("Session cut short")
    await refund.get_by_role("button", name="Refund").click()
    await expect(page.locator("#status")).to_contain_text(
        "Not refunded: A refund cannot be more than was paid")
    await expect(page.locator("#invoice-status")).to_have_text("paid")
    await expect(refund.get_by_label("Reason")).to_have_value("Session cut short")

    await page.get_by_role("link", name="Print receipt").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Receipt for invoice {invoiced['number']}")
    await expect(page.locator("#lead")).to_have_text(
        re.compile(r"^Received €95\.00 by cash on .* at Riverside Clinic\. Thank you\.$"))

    # The patient's account is settled by the payment; the day's takings count it.
    await page.go_back()
    await page.get_by_role("link", name="patient account").click()
    await expect(page.locator('#balance tr[data-currency="EUR"] .balance')).to_have_text(
        "€0.00 settled")
    await expect(page.locator("#ledger")).to_contain_text("-€95.00")
    await page.get_by_role("navigation", name="billing pages").get_by_role(
        "link", name="Takings").click()
    await expect(page.locator("#by-location .net")).to_have_text(["€95.00"])
    await expect(page.locator("#by-therapist")).to_contain_text("Riverside Clinic")


async def test_the_price_list_editor_refuses_a_tariff_in_the_past_and_schedules_one_ahead(
        signed_in, api, priced, tenant):
    location_id = priced["location_id"]
    page = await signed_in("billing", billing_staff_of(tenant, location_id))
    await page.goto(f"/admin/prices?location_id={location_id}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Prices — Riverside Clinic")
    first = (berlin_today() - timedelta(days=30)).isoformat()
    await expect(page.locator(f'#tariffs tr[data-from="{first}"]')).to_contain_text(
        "in force")

    # The editor starts from the tariff in force; a start before today is the API's refusal.
    editor = page.locator("#schedule")
    fee = editor.get_by_label("Treatment session")
    await expect(fee).to_have_value("95.00")
    await editor.get_by_label("Effective from").fill(
        (berlin_today() - timedelta(days=1)).isoformat())
    await fee.fill("99.50")
    await editor.get_by_role("button", name="Schedule tariff").click()
    await expect(page.locator("#status")).to_contain_text(
        "Not scheduled: A new tariff cannot start before today")
    await expect(fee).to_have_value("99.50")

    ahead = (berlin_today() + timedelta(days=2)).isoformat()
    await editor.get_by_label("Effective from").fill(ahead)
    await editor.get_by_role("button", name="Schedule tariff").click()
    await expect(page.locator("#status")).to_have_text(f"Tariff from {ahead} scheduled.")
    scheduled = page.locator(f'#tariffs tr[data-from="{ahead}"]')
    await expect(scheduled).to_contain_text("scheduled")
    await expect(scheduled).to_contain_text("€99.50")
    prices = (await api("billing", "GET", f"/locations/{location_id}/prices")).json()
    assert [t["effective_from"] for t in prices["tariffs"]] == [first, ahead]
    new = prices["tariffs"][-1]
    assert new["fees"] == {"initial_assessment": 15000, "treatment_session": 9950,
                           "reassessment": 12000}
    assert [p["code"] for p in new["packs"]] == ["six"]  # carried over, same currency
    assert new["policy"] == {"late_cancel_hours": 24, "late_cancel_fee": 4000,
                             "no_show_fee": 9500}


async def test_the_front_desk_takes_payments_but_neither_refunds_nor_sets_prices(
        signed_in, invoiced, tenant):
    location_id = invoiced["location_id"]
    frank = Principal("frank.frontdesk", "Frank Frontdesk", tenant,
                      location_roles={uuid.UUID(location_id): frozenset({Role.FRONT_DESK})})
    page = await signed_in("billing", frank)
    here = f"/admin/invoices/{invoiced['invoice_id']}"
    await page.goto(here)
    await expect(page.locator("#payment").get_by_label("Amount")).to_have_value("95.00")
    await expect(page.locator("#refund")).to_have_count(0)

    await page.goto(f"{here}/receipts/{uuid.uuid4()}")
    await expect(page.locator("#status")).to_contain_text(
        "Not printed: No such payment on the invoice")

    await page.goto(f"/admin/prices?location_id={location_id}")
    await expect(page.locator("#tariffs")).to_contain_text("in force")
    await expect(page.locator("#schedule")).to_have_count(0)

    await page.goto("/admin/takings")
    await expect(page.locator("#status")).to_contain_text(
        "The takings could not be read: Your roles do not allow this")
