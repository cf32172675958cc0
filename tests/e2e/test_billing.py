"""Billing end to end: booking's appointment events on the broker start SessionChargeWorkflow,
which charges by the price list in force on the session's date, from a pack or by invoice;
payments, refunds and credit notes over HTTP; bad input refused with nothing written."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import nats
import pytest

from kinetic_contracts import CloudEvent
from kinetic_contracts.booking.v1.events import (
    AppointmentCompleted,
    AppointmentNoShow,
    AppointmentReversed,
)
from kinetic_contracts.naming import nats_subject, stream_name_for_service
from kinetic_infra.auth.principal import Principal, Role

pytestmark = pytest.mark.platform

FEES = {"initial_assessment": 15000, "treatment_session": 9500, "reassessment": 12000}


def tariff(effective_from: date, **changes: Any) -> dict[str, Any]:
    return {"effective_from": effective_from.isoformat(), "currency": "EUR",
            "tax_rate_bp": 0, "fees": FEES,
            "policy": {"late_cancel_hours": 24, "late_cancel_fee": 4000, "no_show_fee": 9500},
            "packs": [{"code": "six", "label": "6 sessions", "sessions": 6, "price": 51000}],
            "payment_terms_days": 14, **changes}


async def priced_at(api, wait_for, location_id: str, **changes: Any) -> str:
    """Price the location (a price list in force since January, with ``changes``) once
    billing knows it; returns a therapist working there."""
    therapist = await api("booking", "POST", "/therapists", json={
        "location_ids": [location_id], "display_name": "Sam Strong"})

    async def known() -> bool:
        return (await api("billing", "GET", f"/locations/{location_id}/prices")
                ).status_code == 200

    await wait_for(known)
    scheduled = await api("billing", "POST", f"/locations/{location_id}/prices",
                          json=tariff(date(2026, 1, 1), **changes))
    assert scheduled.status_code == 200, scheduled.text
    return str(therapist.json()["id"])


@pytest.fixture
async def priced(api, front_desk, wait_for) -> dict[str, str]:
    """A location billing knows, with a price list in force since January, a therapist."""
    return {**front_desk,
            "therapist_id": await priced_at(api, wait_for, front_desk["location_id"])}


async def deliver(platform, tenant: uuid.UUID, event: Any, copies: int = 1) -> None:
    """Publish booking's event ``copies`` times, each as a new CloudEvent (new id, new NATS
    message id): neither the broker's de-duplication nor the inbox recognises the repeats,
    only the workflow id and the charge itself."""
    nc = await nats.connect(platform.nats.url)
    try:
        js = nc.jetstream()
        for _ in range(copies):
            envelope = CloudEvent(id=uuid.uuid4(), source="/kinetic/booking",
                                  type=event.event_type, subject=str(event.aggregate_id()),
                                  time=datetime.now(UTC), data=event.model_dump(mode="json"),
                                  tenantid=tenant, sequence=1)
            await js.publish(nats_subject(tenant, envelope.type),
                             envelope.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": str(envelope.id)})
    finally:
        await nc.close()


def completed(priced: dict[str, str], *, starts_at: datetime | None = None,
              at: datetime | None = None, kind: type = AppointmentCompleted,
              appointment_type: str = "treatment_session", episode_id: str | None = None
              ) -> Any:
    starts = starts_at or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return kind(appointment_id=uuid.uuid4(), patient_id=priced["patient_id"],
                therapist_id=priced["therapist_id"], location_id=priced["location_id"],
                episode_id=episode_id, appointment_type=appointment_type, starts_at=starts,
                at=at or starts + timedelta(hours=1))


async def billing_rows(platform, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(platform.maintenance_url("billing"))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def invoices_for(platform, appointment_id: uuid.UUID) -> list[asyncpg.Record]:
    return await billing_rows(platform, "SELECT * FROM invoices WHERE appointment_id = $1",
                              appointment_id)


async def charge_of(platform, appointment_id: uuid.UUID) -> asyncpg.Record | None:
    rows = await billing_rows(platform, "SELECT * FROM charges WHERE appointment_id = $1",
                              appointment_id)
    return rows[0] if rows else None


async def test_a_completed_session_delivered_three_times_is_charged_once(
        platform, api, priced, tenant, wait_for, published):
    session = completed(priced)
    await deliver(platform, tenant, session, copies=3)
    [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
    assert (bill["total"], bill["currency"], bill["status"]) == (9500, "EUR", "open")
    # Every copy has been handled once the last one's workflow start returns; the charge
    # events say one charge.
    await wait_for(lambda: published("kinetic.billing.invoice.issued.v1"))
    await deliver(platform, tenant, session)  # and a fourth, later
    charged = await billing_rows(
        platform, "SELECT count(*) AS n FROM events WHERE stream_name = $1",
        f"charge-{session.appointment_id}")
    assert charged[0]["n"] == 1
    assert len(await invoices_for(platform, session.appointment_id)) == 1
    detail = await api("billing", "GET", f"/invoices/{bill['invoice_id']}")
    assert detail.json()["lines"][0]["cpt_codes"] == ["97110"]


async def test_catch_up_reads_booking_again_from_a_time_and_charges_nothing_twice(
        platform, priced, tenant, wait_for):
    """``python -m kinetic_infra.service catch-up``, as an operator runs it after an upgrade
    that gave billing a handler for events already in booking's stream: billing's consumer
    reads them again from ``--since``, and a session it had charged stays charged once."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    session = completed(priced)
    await deliver(platform, tenant, session)
    await wait_for(lambda: invoices_for(platform, session.appointment_id))
    billing = next(d for d in platform.services if d.name == "billing")
    command = [sys.executable, "-m", "kinetic_infra.service", "catch-up"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], env=platform.env_for(billing),
                              capture_output=True, text=True, timeout=120)

    unknown = await asyncio.to_thread(run, "billing-nothing", "--since", since.isoformat())
    assert unknown.returncode != 0 and "no subscription billing-nothing" in unknown.stderr
    assert "billing-charges" in unknown.stderr  # it names the ones there are
    naive = await asyncio.to_thread(run, "billing-charges", "--since", "2026-01-01T00:00:00")
    assert naive.returncode != 0 and "time zone" in naive.stderr
    rewound = await asyncio.to_thread(run, "billing-charges", "--since", since.isoformat())
    assert rewound.returncode == 0, rewound.stderr
    assert rewound.stdout.startswith("billing-charges rewound to "), rewound.stdout

    nc = await nats.connect(platform.nats.url)
    try:
        js = nc.jetstream()

        async def read_again() -> bool:
            info = await js.consumer_info(stream_name_for_service("booking"), "billing-charges")
            return (info.delivered.stream_seq > 0 and info.num_pending == 0
                    and info.num_ack_pending == 0)

        await wait_for(read_again)
    finally:
        await nc.close()
    charged = await billing_rows(
        platform, "SELECT count(*) AS n FROM events WHERE stream_name = $1",
        f"charge-{session.appointment_id}")
    assert charged[0]["n"] == 1
    assert len(await invoices_for(platform, session.appointment_id)) == 1


async def test_a_completed_then_reversed_session_is_credited_once(
        platform, api, priced, tenant, wait_for, published):
    session = await api("booking", "POST", "/appointments", json={
        "patient_id": priced["patient_id"], "therapist_id": priced["therapist_id"],
        "location_id": priced["location_id"], "appointment_type": "treatment_session",
        "starts_at": (datetime.now(UTC) + timedelta(minutes=30)).replace(
            microsecond=0).isoformat()})
    appointment_id = uuid.UUID(session.json()["id"])
    await api("booking", "POST", f"/appointments/{appointment_id}/check-in")
    await api("booking", "POST", f"/appointments/{appointment_id}/complete")
    [bill] = await wait_for(lambda: invoices_for(platform, appointment_id))
    paid = await api("billing", "POST", f"/invoices/{bill['invoice_id']}/payments",
                     json={"amount": 9500, "currency": "EUR", "method": "card"})
    assert paid.status_code == 201, paid.text
    for _ in range(2):
        await api("booking", "POST", f"/appointments/{appointment_id}/reverse",
                  json={"reason_code": "recorded_in_error"})

    async def credited() -> Any:
        [row] = await invoices_for(platform, appointment_id)
        return row if row["credited"] else None

    row = await wait_for(credited)
    assert (row["credited"], row["outstanding"]) == (9500, -9500)  # the patient is in credit
    # The reversal delivered again, as a new CloudEvent: the invoice is not credited twice.
    await deliver(platform, tenant, AppointmentReversed(
        appointment_id=appointment_id, patient_id=priced["patient_id"],
        therapist_id=priced["therapist_id"], location_id=priced["location_id"],
        appointment_type="treatment_session", starts_at=datetime.now(UTC),
        reversed_outcome="completed", reason_code="recorded_in_error",
        reversed_at=datetime.now(UTC)))
    await _handled_by_billing(platform, tenant, priced, wait_for)
    [row] = await invoices_for(platform, appointment_id)
    assert row["credited"] == 9500
    credits = await wait_for(lambda: published("kinetic.billing.invoice.credited.v1"))
    assert [c["data"]["reason_code"] for c in credits] == ["appointment_reversed"]
    # Billing staff pay the credit back: the account settles at zero.
    refund = await api("billing", "POST", f"/invoices/{bill['invoice_id']}/refunds",
                       json={"amount": 9500, "currency": "EUR", "reason": "recorded in error"})
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "void"
    ledger = (await api("billing", "GET", f"/accounts/{priced['patient_id']}/ledger")).json()
    assert sum(e["amount"] for e in ledger if e["invoice_id"] == str(bill["invoice_id"])) == 0
    assert (await charge_of(platform, appointment_id))["status"] == "reversed"


async def _handled_by_billing(platform, tenant, priced, wait_for) -> None:
    """Billing's booking consumer has handled everything published before now: a marker
    no-show published after it has been charged (one consumer, in stream order)."""
    marker = completed(priced, kind=AppointmentNoShow)
    await deliver(platform, tenant, marker)
    await wait_for(lambda: charge_of(platform, marker.appointment_id))


async def test_late_cancellation_inside_the_window_costs_the_fee_outside_nothing(
        platform, api, priced, tenant, wait_for):
    ids = []
    for hours in (30, 5):  # outside, then inside the 24 h window
        booked = await api("booking", "POST", "/appointments", json={
            "patient_id": priced["patient_id"], "therapist_id": priced["therapist_id"],
            "location_id": priced["location_id"], "appointment_type": "treatment_session",
            "starts_at": (datetime.now(UTC) + timedelta(hours=hours)).replace(
                minute=0, second=0, microsecond=0).isoformat()})
        assert booked.status_code == 201, booked.text
        ids.append(uuid.UUID(booked.json()["id"]))
        assert (await api("booking", "POST", f"/appointments/{ids[-1]}/cancel")
                ).status_code == 200
    early, late = ids
    [fee] = await wait_for(lambda: invoices_for(platform, late))
    assert (fee["kind"], fee["total"]) == ("late_cancellation", 4000)
    # The consumer handled the earlier cancellation first: it charged nothing.
    assert await invoices_for(platform, early) == []
    assert await charge_of(platform, early) is None


async def test_a_no_show_costs_the_no_show_fee_and_nothing_where_the_policy_has_none(
        platform, api, priced, tenant, wait_for):
    missed = completed(priced, kind=AppointmentNoShow)
    await deliver(platform, tenant, missed)
    [fee] = await wait_for(lambda: invoices_for(platform, missed.appointment_id))
    assert (fee["kind"], fee["total"]) == ("no_show", 9500)

    lenient = await api("booking", "POST", "/locations",
                        json={"name": "Lenient Clinic", "timezone": "Europe/Berlin"})
    lenient_id = lenient.json()["id"]
    await wait_for(lambda: _ok(api, f"/locations/{lenient_id}/prices"))
    await api("billing", "POST", f"/locations/{lenient_id}/prices",
              json=tariff(date(2026, 1, 1), policy={"late_cancel_hours": 24}))
    free = completed({**priced, "location_id": lenient_id}, kind=AppointmentNoShow)
    await deliver(platform, tenant, free)
    row = await wait_for(lambda: charge_of(platform, free.appointment_id))
    assert (row["status"], row["reason"]) == ("nothing", "the location charges no no-show fee")
    assert await invoices_for(platform, free.appointment_id) == []


async def _ok(api, path: str) -> bool:
    return (await api("billing", "GET", path)).status_code == 200


async def test_a_pack_of_six_covers_six_sessions_and_the_seventh_is_invoiced(
        platform, api, priced, tenant, wait_for, published):
    sold = await api("billing", "POST", f"/patients/{priced['patient_id']}/packs",
                     json={"location_id": priced["location_id"], "offer": "six"})
    assert sold.status_code == 201, sold.text
    pack = sold.json()
    assert (pack["sessions"], pack["remaining"], pack["price"]) == (6, 6, 51000)
    sessions = [completed(priced, starts_at=datetime.now(UTC).replace(microsecond=0)
                          - timedelta(hours=10 - i)) for i in range(7)]
    for s in sessions:
        await deliver(platform, tenant, s)
    rows = await wait_for(lambda: _all_charged(platform, sessions))
    assert sorted(r["paid_by"] for r in rows) == ["invoice"] + ["pack"] * 6
    [seventh] = [r for r in rows if r["paid_by"] == "invoice"]
    [bill] = await invoices_for(platform, seventh["appointment_id"])
    assert bill["total"] == 9500  # simply the flat fee: care never stops at a count
    packs = await api("billing", "GET", f"/patients/{priced['patient_id']}/packs")
    assert [p["remaining"] for p in packs.json()] == [0]
    used = await wait_for(lambda: _count(published, "kinetic.billing.pack.session_used.v1", 6))
    assert sorted(e["data"]["remaining"] for e in used) == [0, 1, 2, 3, 4, 5]


async def _count(published, event_type: str, n: int) -> list[dict[str, Any]] | None:
    events = await published(event_type)
    return events if len(events) >= n else None


async def _all_charged(platform, sessions: list[Any]) -> list[asyncpg.Record] | None:
    rows = [await charge_of(platform, s.appointment_id) for s in sessions]
    return None if None in rows else rows  # type: ignore[return-value]


async def test_a_price_change_tomorrow_leaves_todays_sessions_at_todays_price(
        platform, api, priced, tenant, wait_for):
    location_id = priced["location_id"]
    # The clinic's days (Berlin), not the machine's: around midnight UTC they differ.
    berlin = ZoneInfo("Europe/Berlin")
    today_there = datetime.now(berlin).date()
    tomorrow = today_there + timedelta(days=1)
    raised = await api("billing", "POST", f"/locations/{location_id}/prices",
                       json=tariff(tomorrow, fees={**FEES, "treatment_session": 10500}))
    assert raised.status_code == 200, raised.text
    assert raised.json()["in_force"]["fees"]["treatment_session"] == 9500
    back_dated = await api("billing", "POST", f"/locations/{location_id}/prices",
                           json=tariff(today_there - timedelta(days=2)))
    assert back_dated.status_code == 422
    assert back_dated.json()["type"] == "/problems/tariff-in-the-past"

    # Noon today (Berlin) and noon tomorrow: the session's own date picks the price, even
    # when the completion is recorded after the change took effect.
    noon = datetime.combine(today_there, datetime.min.time(), berlin) + timedelta(hours=12)
    today = completed(priced, starts_at=noon, at=noon + timedelta(days=1, hours=2))
    later = completed(priced, starts_at=noon + timedelta(days=1))
    await deliver(platform, tenant, today)
    await deliver(platform, tenant, later)
    [old] = await wait_for(lambda: invoices_for(platform, today.appointment_id))
    [new] = await wait_for(lambda: invoices_for(platform, later.appointment_id))
    assert (old["total"], new["total"]) == (9500, 10500)


async def test_bad_billing_input_is_refused_with_problem_details_and_writes_nothing(
        platform, api, priced, tenant, wait_for):
    session = completed(priced)
    await deliver(platform, tenant, session)
    [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
    path = f"/invoices/{bill['invoice_id']}"
    assert (await api("billing", "POST", f"{path}/payments", json={
        "amount": 4000, "currency": "EUR", "method": "cash"})).status_code == 201

    async def events() -> int:
        rows = await billing_rows(platform, "SELECT count(*) AS n FROM events "
                                            "WHERE tenant_id = $1", tenant)
        return int(rows[0]["n"])

    before = await events()
    other_org = uuid.uuid4()
    cases = [
        ("POST", f"{path}/refunds", {"amount": 4001, "currency": "EUR", "reason": "x"}, None,
         422, "/problems/refund-exceeds-paid"),
        ("POST", f"{path}/payments", {"amount": -100, "currency": "EUR", "method": "cash"},
         None, 422, None),
        ("POST", f"{path}/payments", {"amount": 9000, "currency": "EUR", "method": "cash"},
         None, 422, "/problems/overpayment"),
        ("POST", f"{path}/payments", {"amount": 100, "currency": "USD", "method": "cash"},
         None, 422, "/problems/currency-mismatch"),
        ("POST", f"{path}/payments", {"amount": 100, "currency": "EUR", "method": "iou"},
         None, 422, None),
        ("POST", f"/invoices/{uuid.uuid4()}/payments",
         {"amount": 100, "currency": "EUR", "method": "cash"}, None, 404,
         "/problems/invoice-not-found"),
        ("POST", f"{path}/payments", {"amount": 100, "currency": "EUR", "method": "cash"},
         other_org, 404, "/problems/invoice-not-found"),
        ("GET", path, None, other_org, 404, "/problems/invoice-not-found"),
        ("POST", f"{path}/credit-notes", {"amount": 9501, "currency": "EUR",
                                          "reason_code": "goodwill", "reason": "x"}, None,
         422, "/problems/credit-exceeds-invoice"),
        # A pack for a patient nobody registered would take an invoice number for nobody.
        ("POST", f"/patients/{uuid.uuid4()}/packs",
         {"location_id": priced["location_id"], "offer": "six"}, None, 404,
         "/problems/account-not-found"),
    ]
    for method, url, body, as_tenant, code, problem in cases:
        response = await api("billing", method, url, json=body, as_tenant=as_tenant)
        assert response.status_code == code, (url, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        if problem:
            assert response.json()["type"] == problem
    assert await events() == before
    detail = await api("billing", "GET", path)
    assert (detail.json()["paid"], detail.json()["outstanding"]) == (4000, 5500)


async def test_a_payment_repeated_with_its_idempotency_key_is_recorded_once(
        platform, api, priced, tenant, wait_for):
    session = completed(priced)
    await deliver(platform, tenant, session)
    [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
    key = str(uuid.uuid4())
    for _ in range(2):
        paid = await api("billing", "POST", f"/invoices/{bill['invoice_id']}/payments",
                         json={"amount": 2000, "currency": "EUR", "method": "cash"},
                         headers={"Idempotency-Key": key})
        assert paid.status_code == 201, paid.text
    assert paid.json()["paid"] == 2000


async def test_the_front_desk_at_another_location_sees_no_invoice(
        platform, api, priced, tenant, wait_for):
    session = completed(priced)
    await deliver(platform, tenant, session)
    [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
    elsewhere = Principal(f"desk-{uuid.uuid4()}", "Desk", tenant,
                          location_roles={uuid.uuid4(): frozenset({Role.FRONT_DESK})})
    assert (await api("billing", "GET", f"/invoices/{bill['invoice_id']}",
                      as_staff=elsewhere)).status_code == 404
    assert (await api("billing", "GET", "/invoices", as_staff=elsewhere)).json() == []


async def test_the_providers_signed_webhook_records_a_payment_once_and_a_forgery_nothing(
        platform, urls, api, priced, tenant, wait_for):
    import httpx

    from billing.adapters.payment_provider import SIGNATURE_HEADER, sign

    session = completed(priced)
    await deliver(platform, tenant, session)
    [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "payment.succeeded", "data": {
        "tenant_id": str(tenant), "invoice_id": str(bill["invoice_id"]), "amount": 9500,
        "currency": "EUR", "reference": "ch_123"}}).encode()
    secret = platform.extra_env["KINETIC_BILLING_WEBHOOK_SECRET"]
    now = int(datetime.now(UTC).timestamp())
    hook = "/webhooks/payment-provider"
    async with httpx.AsyncClient(base_url=urls["billing"]) as client:
        forged = await client.post(hook, content=body,
                                   headers={SIGNATURE_HEADER: sign("wrong", body, now)})
        stale = await client.post(hook, content=body,
                                  headers={SIGNATURE_HEADER: sign(secret, body, now - 3600)})
        for refused in (forged, stale):
            assert refused.status_code == 401
            assert refused.json()["type"] == "/problems/bad-webhook-signature"
        assert (await api("billing", "GET", f"/invoices/{bill['invoice_id']}")
                ).json()["paid"] == 0
        for _ in range(2):  # the provider retries its delivery
            ok = await client.post(hook, content=body,
                                   headers={SIGNATURE_HEADER: sign(secret, body, now)})
            assert ok.status_code == 200, ok.text
    detail = (await api("billing", "GET", f"/invoices/{bill['invoice_id']}")).json()
    assert (detail["paid"], detail["status"]) == (9500, "paid")
    [payment] = [h for h in detail["history"] if h["kind"] == "payment"]
    assert (payment["method"], payment["reference"]) == ("provider", "ch_123")


async def test_invoice_receipt_and_superbill_print_as_pdf(
        platform, api, priced, tenant, wait_for):
    episode = str(uuid.uuid4())
    session = completed(priced, appointment_type="initial_assessment", episode_id=episode)
    await deliver(platform, tenant, session)
    [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
    paid = await api("billing", "POST", f"/invoices/{bill['invoice_id']}/payments",
                     json={"amount": 15000, "currency": "EUR", "method": "card"})
    [payment] = [h for h in paid.json()["history"] if h["kind"] == "payment"]
    base = f"/invoices/{bill['invoice_id']}"
    receipt = await api("billing", "GET", f"{base}/receipts/{payment['id']}")
    assert "Received €150.00 by card" in receipt.text
    for path in (f"{base}/document.pdf", f"{base}/receipts/{payment['id']}.pdf",
                 f"/episodes/{episode}/superbill.pdf"):
        document = await api("billing", "GET", path)
        assert document.status_code == 200, (path, document.text)
        assert document.content.startswith(b"%PDF")
    superbill = await api("billing", "GET", f"/episodes/{episode}/superbill")
    assert "CPT 97162, charged €150.00, paid €150.00" in superbill.text
    assert (await api("billing", "GET", f"{base}/receipts/{uuid.uuid4()}")).status_code == 404

    # Each names whom it is for, as an insurer matches a superbill to its member: the
    # patient's name and date of birth from booking (and nothing else of their details).
    who = "Ada Canarysson, born 1996-04-02"

    async def named(path: str) -> bool:
        return who in (await api("billing", "GET", path)).text

    for path in (base + "/document", f"{base}/receipts/{payment['id']}",
                 f"/episodes/{episode}/superbill"):
        await wait_for(lambda path=path: named(path))
    listed = await api("billing", "GET", f"/invoices?patient_id={priced['patient_id']}")
    assert {row["patient_name"] for row in listed.json()} == {"Ada Canarysson"}
    one = await api("billing", "GET", base)
    assert one.json()["patient_name"] == "Ada Canarysson"
    kept = await billing_rows(platform, "SELECT * FROM billing_patients WHERE patient_id = $1",
                              uuid.UUID(priced["patient_id"]))
    assert set(kept[0].keys()) == {"patient_id", "tenant_id", "given_name", "family_name",
                                   "date_of_birth", "recorded_at"}


async def test_unused_pack_sessions_are_refunded_pro_rata(
        platform, api, priced, tenant, wait_for):
    sold = await api("billing", "POST", f"/patients/{priced['patient_id']}/packs",
                     json={"location_id": priced["location_id"], "offer": "six"})
    pack = sold.json()
    paid = await api("billing", "POST", f"/invoices/{pack['invoice_id']}/payments",
                     json={"amount": 51000, "currency": "EUR", "method": "transfer"})
    assert paid.status_code == 201, paid.text
    sessions = [completed(priced) for _ in range(2)]
    for s in sessions:
        await deliver(platform, tenant, s)
    await wait_for(lambda: _all_charged(platform, sessions))
    refunded = await api("billing", "POST", f"/packs/{pack['pack_id']}/refund")
    assert refunded.status_code == 200, refunded.text
    assert (refunded.json()["status"], refunded.json()["remaining"]) == ("refunded", 0)
    bill = (await api("billing", "GET", f"/invoices/{pack['invoice_id']}")).json()
    assert (bill["refunded"], bill["outstanding"]) == (34000, 0)  # 4 of 6 × 510.00
    # The pack is closed: the next session is simply invoiced.
    after = completed(priced)
    await deliver(platform, tenant, after)
    [invoice] = await wait_for(lambda: invoices_for(platform, after.appointment_id))
    assert invoice["total"] == 9500

    # A session drawn from it turns out recorded in error: it cannot go back into the closed
    # pack, so its share (510.00 / 6) is credited on the pack's invoice, once.
    first = sessions[0]
    for _ in range(2):
        await deliver(platform, tenant, AppointmentReversed(
            appointment_id=first.appointment_id, patient_id=first.patient_id,
            therapist_id=first.therapist_id, location_id=first.location_id,
            appointment_type="treatment_session", starts_at=first.starts_at,
            reversed_outcome="completed", reason_code="recorded_in_error",
            reversed_at=datetime.now(UTC)))

    closed = bill["credited"]  # the unused sessions' refund, as a credit

    async def credited() -> dict[str, Any] | None:
        now = (await api("billing", "GET", f"/invoices/{pack['invoice_id']}")).json()
        return now if now["credited"] > closed else None

    again = await wait_for(credited)
    assert (again["credited"] - closed, again["outstanding"]) == (8500, -8500)  # to refund
    await _handled_by_billing(platform, tenant, priced, wait_for)
    again = (await api("billing", "GET", f"/invoices/{pack['invoice_id']}")).json()
    assert again["credited"] - closed == 8500


async def test_takings_count_each_locations_own_day_in_its_timezone(
        platform, api, front_desk, tenant, wait_for):
    # UTC+14 and UTC-11: at any instant at least one of them is on another date than UTC,
    # so a payment there shows which calendar the takings count in.
    zones = {"Pacific/Kiritimati": None, "Pacific/Pago_Pago": None}
    for zone in zones:
        location = await api("booking", "POST", "/locations",
                             json={"name": f"Clinic {zone}", "timezone": zone})
        assert location.status_code == 201, location.text
        at = {**front_desk, "location_id": location.json()["id"]}
        at["therapist_id"] = await priced_at(api, wait_for, at["location_id"])
        session = completed(at)
        await deliver(platform, tenant, session)
        [bill] = await wait_for(lambda s=session: invoices_for(platform, s.appointment_id))
        paid = await api("billing", "POST", f"/invoices/{bill['invoice_id']}/payments",
                         json={"amount": 9500, "currency": "EUR", "method": "card"})
        assert paid.status_code == 201, paid.text
        [entry] = await billing_rows(
            platform, "SELECT at FROM ledger_entries WHERE kind = 'payment' AND location_id = $1",
            uuid.UUID(at["location_id"]))
        zones[zone] = (at["location_id"], entry["at"])

    async def taken(day: date | None) -> dict[str, Any]:
        found = await api("billing", "GET", "/takings" + (f"?day={day}" if day else ""))
        assert found.status_code == 200, found.text
        return found.json()

    def row_at(takings: dict[str, Any], location_id: str) -> dict[str, Any] | None:
        return next((r for r in takings["by_location"] if r["location_id"] == location_id),
                    None)

    elsewhere = 0
    for zone, (location_id, paid_at) in zones.items():
        local_day = paid_at.astimezone(ZoneInfo(zone)).date()
        there = row_at(await taken(local_day), location_id)
        assert there is not None and (there["day"], there["net"]) == (local_day.isoformat(),
                                                                     9500)
        utc_day = paid_at.astimezone(UTC).date()
        if utc_day != local_day:
            elsewhere += 1
            assert row_at(await taken(utc_day), location_id) is None
    assert elsewhere >= 1

    # Without a day: today at each location. These two never share a date, so the answer
    # names none and each row says its own.
    before = {z: datetime.now(ZoneInfo(z)).date() for z in zones}
    today = await taken(None)
    after = {z: datetime.now(ZoneInfo(z)).date() for z in zones}
    assert today["day"] is None
    for zone, (location_id, paid_at) in zones.items():
        if before[zone] == after[zone] == paid_at.astimezone(ZoneInfo(zone)).date():
            row = row_at(today, location_id)
            assert row is not None and row["day"] == before[zone].isoformat()


async def test_the_superbill_claims_only_what_was_charged_after_credits_and_paid(
        platform, api, priced, tenant, wait_for):
    """The patient sends the superbill to an insurer: a session credited in full is waived
    at 0, a session from a half-paid pack claims its share of the pack price and of what was
    paid on it, and the totals are the sums of those lines — in the page and the PDF."""
    episode = str(uuid.uuid4())
    paid = completed(priced, appointment_type="initial_assessment", episode_id=episode,
                     starts_at=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3))
    waived = completed(priced, episode_id=episode,
                       starts_at=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))
    for session, change, body in (
            (paid, "payments", {"amount": 15000, "currency": "EUR", "method": "card"}),
            (waived, "credit-notes", {"amount": 9500, "currency": "EUR",
                                      "reason_code": "goodwill", "reason": "first visit"})):
        await deliver(platform, tenant, session)
        [bill] = await wait_for(lambda s=session: invoices_for(platform, s.appointment_id))
        done = await api("billing", "POST", f"/invoices/{bill['invoice_id']}/{change}",
                         json=body)
        assert done.status_code == 201, done.text
    sold = await api("billing", "POST", f"/patients/{priced['patient_id']}/packs",
                     json={"location_id": priced["location_id"], "offer": "six"})
    assert sold.status_code == 201, sold.text
    half = await api("billing", "POST", f"/invoices/{sold.json()['invoice_id']}/payments",
                     json={"amount": 25500, "currency": "EUR", "method": "transfer"})
    assert half.status_code == 201, half.text
    from_pack = completed(priced, episode_id=episode)
    await deliver(platform, tenant, from_pack)
    drawn = await wait_for(lambda: charge_of(platform, from_pack.appointment_id))
    assert drawn["paid_by"] == "pack"

    page = await api("billing", "GET", f"/episodes/{episode}/superbill")
    assert page.status_code == 200, page.text
    text = page.text
    assert "CPT 97162, charged €150.00, paid €150.00" in text
    assert "CPT 97110, waived (credited in full): charged €0.00, paid €0.00" in text
    assert ("CPT 97110, charged €85.00 (its share of a 6-session pack), paid €42.50"
            in text)
    assert "€95.00" not in text  # the flat fee is what a session costs, not what was paid
    # 150.00 + 0 + 85.00 charged, 150.00 + 0 + 42.50 paid (not 340.00 charged, all "paid").
    assert "<h2>Total charged</h2><ul><li>€235.00</li></ul>" in text
    assert "<h2>Total paid</h2><ul><li>€192.50</li></ul>" in text
    document = await api("billing", "GET", f"/episodes/{episode}/superbill.pdf")
    assert document.status_code == 200 and document.content.startswith(b"%PDF")


# Real timezones an hour apart from UTC-11 to UTC+14 (their standard offsets): at any instant
# one of them is hours away from its midnight.
ZONES = ("Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles",
         "America/Denver", "America/Chicago", "America/New_York", "America/Sao_Paulo",
         "Atlantic/South_Georgia", "Atlantic/Cape_Verde", "Africa/Abidjan", "Africa/Lagos",
         "Africa/Johannesburg", "Europe/Moscow", "Asia/Dubai", "Asia/Karachi", "Asia/Dhaka",
         "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Australia/Brisbane",
         "Pacific/Noumea", "Pacific/Tarawa", "Pacific/Tongatapu", "Pacific/Kiritimati")


def zone_far_from_midnight_and_utc() -> ZoneInfo:
    """A clinic's timezone where it is the middle of the day now, at least four hours from
    UTC: its midnight differs from UTC's, and from the start of its day by hours."""
    now = datetime.now(UTC)

    def hours_to_midnight(zone: ZoneInfo) -> float:
        local = now.astimezone(zone)
        hours = local.hour + local.minute / 60
        return min(hours, 24 - hours)

    away = [ZoneInfo(z) for z in ZONES
            if abs(now.astimezone(ZoneInfo(z)).utcoffset() or timedelta()) >= timedelta(hours=4)]
    return max(away, key=hours_to_midnight)


async def first_follow_up(platform, wait_for, appointment_id: uuid.UUID) -> Any:
    """How the appointment's SessionChargeWorkflow first follows its unpaid invoice up: the
    instant its first timer fires (the workflow's clock when it set the timer, plus the
    timer), or "at once" when it ran the follow-up activity without waiting."""
    from billing.application.workflows import FOLLOW_UP, workflow_id
    from kinetic_infra.stack.temporal import NAMESPACE
    from kinetic_infra.temporal import connect_client

    client = await connect_client(platform.temporal.address, NAMESPACE)
    handle = client.get_workflow_handle(workflow_id(appointment_id))

    async def probe() -> Any:
        clock = None
        async for e in handle.fetch_history_events():
            if e.HasField("workflow_task_started_event_attributes"):
                clock = e.event_time.ToDatetime(tzinfo=UTC)  # what workflow.now() reads
            if e.HasField("timer_started_event_attributes"):
                assert clock is not None
                return clock + e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            if e.HasField("activity_task_scheduled_event_attributes") and \
                    e.activity_task_scheduled_event_attributes.activity_type.name == FOLLOW_UP:
                return "at once"
        return None

    return await wait_for(probe)


async def _issued_at_far_zone(platform, api, front_desk, tenant, wait_for, terms: int
                              ) -> tuple[ZoneInfo, Any, asyncpg.Record]:
    zone = zone_far_from_midnight_and_utc()
    location = await api("booking", "POST", "/locations",
                         json={"name": f"Clinic {zone.key}", "timezone": zone.key})
    assert location.status_code == 201, location.text
    at = {**front_desk, "location_id": location.json()["id"]}
    at["therapist_id"] = await priced_at(api, wait_for, at["location_id"],
                                         payment_terms_days=terms)
    session = completed(at)
    await deliver(platform, tenant, session)
    [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
    return zone, session, bill


def clinics_midnight_after(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)


async def test_an_invoice_due_the_day_it_is_issued_is_not_overdue_before_the_clinics_midnight(
        platform, api, front_desk, tenant, wait_for):
    """Payment terms of 0 days: the invoice is due today where the clinic is, and the
    workflow (the platform's worker, real days) waits until the clinic's midnight."""
    zone, session, bill = await _issued_at_far_zone(platform, api, front_desk, tenant,
                                                    wait_for, terms=0)
    assert bill["due_on"] == bill["issued_at"].astimezone(zone).date()
    fires = await first_follow_up(platform, wait_for, session.appointment_id)
    assert fires != "at once", "marked overdue the moment it was issued"
    assert abs(fires - clinics_midnight_after(bill["due_on"], zone)) < timedelta(seconds=2)
    [bill] = await invoices_for(platform, session.appointment_id)
    assert (bill["status"], bill["overdue"]) == ("open", False)


async def test_an_invoice_with_n_days_terms_is_overdue_once_its_due_date_has_passed_there(
        platform, api, front_desk, tenant, wait_for):
    """One day's terms: overdue at the clinic's midnight ending the due date, not at its
    start (a whole day after the issue instant)."""
    zone, session, bill = await _issued_at_far_zone(platform, api, front_desk, tenant,
                                                    wait_for, terms=1)
    assert bill["due_on"] == bill["issued_at"].astimezone(zone).date() + timedelta(days=1)
    fires = await first_follow_up(platform, wait_for, session.appointment_id)
    assert fires != "at once"
    assert abs(fires - clinics_midnight_after(bill["due_on"], zone)) < timedelta(seconds=2)
    assert fires - bill["issued_at"] > timedelta(days=1, hours=3)


async def test_a_provider_payment_beyond_what_the_invoice_asks_is_recorded_as_credit_to_refund(
        platform, urls, api, priced, tenant, wait_for):
    """The patient paid at the desk and online: the provider captured the money, so billing
    records it, and the patient is in credit until billing staff refund it. The ledger, what
    the invoice asks and the day's takings agree at each step."""
    import httpx

    from billing.adapters.payment_provider import SIGNATURE_HEADER, sign

    session = completed(priced)
    await deliver(platform, tenant, session)
    [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
    path = f"/invoices/{bill['invoice_id']}"
    desk = await api("billing", "POST", f"{path}/payments",
                     json={"amount": 9500, "currency": "EUR", "method": "card"})
    assert desk.status_code == 201, desk.text
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "payment.succeeded", "data": {
        "tenant_id": str(tenant), "invoice_id": str(bill["invoice_id"]), "amount": 9500,
        "currency": "EUR", "reference": "ch_twice"}}).encode()
    secret = platform.extra_env["KINETIC_BILLING_WEBHOOK_SECRET"]
    async with httpx.AsyncClient(base_url=urls["billing"]) as client:
        hook = await client.post("/webhooks/payment-provider", content=body, headers={
            SIGNATURE_HEADER: sign(secret, body, int(datetime.now(UTC).timestamp()))})
    assert hook.status_code == 200, hook.text
    detail = (await api("billing", "GET", path)).json()
    assert (detail["paid"], detail["outstanding"], detail["status"]) == (19000, -9500, "paid")
    assert [h["method"] for h in detail["history"] if h["kind"] == "payment"] == [
        "card", "provider"]
    # A desk entry still may not overpay.
    more = await api("billing", "POST", f"{path}/payments",
                     json={"amount": 100, "currency": "EUR", "method": "cash"})
    assert more.json()["type"] == "/problems/overpayment"

    patient = priced["patient_id"]

    async def books() -> tuple[int, int, dict[str, int]]:
        """The patient's ledger balance, what the invoice still asks, the day's takings."""
        ledger = (await api("billing", "GET", f"/accounts/{patient}/ledger")).json()
        asks = (await api("billing", "GET", path)).json()["outstanding"]
        day = datetime.fromisoformat(ledger[-1]["at"]).astimezone(
            ZoneInfo("Europe/Berlin")).date()
        takings = (await api("billing", "GET", f"/takings?day={day}")).json()
        [row] = [r for r in takings["by_location"] if r["location_id"] == priced["location_id"]]
        return sum(e["amount"] for e in ledger), asks, \
            {k: row[k] for k in ("payments", "refunds", "net")}

    assert await books() == (-9500, -9500, {"payments": 19000, "refunds": 0, "net": 19000})
    refund = await api("billing", "POST", f"{path}/refunds",
                       json={"amount": 9500, "currency": "EUR", "reason": "paid twice"})
    assert refund.status_code == 201, refund.text
    assert (refund.json()["outstanding"], refund.json()["credited"]) == (0, 0)
    assert await books() == (0, 0, {"payments": 19000, "refunds": 9500, "net": 9500})


async def test_a_no_show_who_came_after_all_has_the_fee_credited_and_the_session_charged(
        platform, api, front_desk, wait_for):
    therapist_id = await priced_at(api, wait_for, front_desk["location_id"], policy={
        "late_cancel_hours": 24, "late_cancel_fee": 4000, "no_show_fee": 3000})
    starts_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    session = await api("booking", "POST", "/appointments", json={
        "patient_id": front_desk["patient_id"], "therapist_id": therapist_id,
        "location_id": front_desk["location_id"], "appointment_type": "treatment_session",
        "starts_at": starts_at.isoformat()})
    missed_id = uuid.UUID(session.json()["id"])
    await asyncio.sleep((starts_at - datetime.now(UTC)).total_seconds() + 0.2)
    assert (await api("booking", "POST", f"/appointments/{missed_id}/no-show")
            ).status_code == 200
    [fee] = await wait_for(lambda: invoices_for(platform, missed_id))
    assert (fee["kind"], fee["total"]) == ("no_show", 3000)

    came = await api("booking", "POST", f"/appointments/{missed_id}/arrived")
    assert came.status_code == 201, came.text
    replacement_id = uuid.UUID(came.json()["appointment_id"])
    done = await api("booking", "POST", f"/appointments/{replacement_id}/complete")
    assert done.json()["status"] == "completed", done.text

    [bill] = await wait_for(lambda: invoices_for(platform, replacement_id))
    assert (bill["kind"], bill["total"]) == ("session", 9500)

    async def credited() -> Any:
        [row] = await invoices_for(platform, missed_id)
        return row if row["credited"] else None

    row = await wait_for(credited)
    assert (row["credited"], row["outstanding"]) == (3000, 0)
    assert (await charge_of(platform, missed_id))["status"] == "reversed"
    assert (await charge_of(platform, replacement_id))["status"] == "charged"
