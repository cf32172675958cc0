"""Billing's printed invoice and receipt, and its invoice list, are dated on the clinic's own calendar (the
location's timezone, as billing's directory keeps it from booking), never UTC's."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.test_billing import completed, deliver, invoices_for, priced_at

pytestmark = pytest.mark.platform


def zone_on_another_date_than_utc() -> ZoneInfo:
    """UTC+14 from 10:00 UTC on, UTC-11 before 11:00 UTC: each is then on another date than
    UTC for the next hours, so a date printed from UTC shows."""
    hour = datetime.now(UTC).hour + datetime.now(UTC).minute / 60
    return ZoneInfo("Pacific/Pago_Pago" if hour < 10.5 else "Pacific/Kiritimati")


async def test_the_invoice_and_its_receipt_print_the_clinics_dates_not_utcs(
        platform, urls, session_of, api, front_desk, tenant, wait_for):
    zone = zone_on_another_date_than_utc()
    location = await api("booking", "POST", "/locations",
                         json={"name": f"Clinic {zone.key}", "timezone": zone.key})
    assert location.status_code == 201, location.text
    at = {**front_desk, "location_id": location.json()["id"]}
    at["therapist_id"] = await priced_at(api, wait_for, at["location_id"])
    session = completed(at)
    await deliver(platform, tenant, session)
    [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
    issued_there = bill["issued_at"].astimezone(zone).date()
    assert issued_there != bill["issued_at"].astimezone(UTC).date()

    base = f"/invoices/{bill['invoice_id']}"
    document = await api("billing", "GET", f"{base}/document")
    assert f"issued {issued_there} · due {bill['due_on']}" in document.text

    paid = await api("billing", "POST", f"{base}/payments",
                     json={"amount": 9500, "currency": "EUR", "method": "card"})
    assert paid.status_code == 201, paid.text
    [payment] = [h for h in paid.json()["history"] if h["kind"] == "payment"]
    paid_there = datetime.fromisoformat(payment["at"]).astimezone(zone).date()
    receipt = await api("billing", "GET", f"{base}/receipts/{payment['id']}")
    assert f"by card on {paid_there} at" in receipt.text

    listed = await api("billing", "GET", f"/invoices?location_id={at['location_id']}")
    assert listed.status_code == 200, listed.text
    [row] = [i for i in listed.json() if i["invoice_id"] == str(bill["invoice_id"])]
    assert row["issued_on"] == issued_there.isoformat()
    async with httpx.AsyncClient(base_url=urls["billing"], cookies=session_of(tenant),
                                 timeout=30) as admin:
        page = await admin.get("/admin/invoices", params={"location_id": at["location_id"]})
    assert page.status_code == 200, page.text
    assert f'<td class="issued">{issued_there}</td>' in page.text


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "garbage"])
async def test_a_takings_day_the_calendar_cannot_show_shows_today_with_a_warning(
        urls, session_of, tenant, day):
    """A hand-typed or stale address: the takings page of today says why, never the API's
    JSON or a server error (a day beside the calendar's ends has no next or previous day)."""
    async with httpx.AsyncClient(base_url=urls["billing"], cookies=session_of(tenant),
                                 timeout=30) as admin:
        page = await admin.get("/admin/takings", params={"day": day})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert f"“{day}” is not a day the calendar can show: today is shown." in page.text
