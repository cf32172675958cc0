"""Billing's money going back, end to end: refunds and credit notes only by billing staff or
operators at the invoice's own location; a pack's invoice refunded only by closing the pack
(API and admin page); a pack sale's Idempotency-Key not reused for another sale; and the
account's balance only of the locations the caller may read."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from kinetic_infra.auth.principal import Principal, Role
from tests.e2e.test_billing import completed, deliver, invoices_for, priced, priced_at

pytestmark = pytest.mark.platform

__all__ = ["priced"]  # the fixture, shared with test_billing

REFUND = {"amount": 9500, "currency": "EUR", "reason": "unhappy"}
CREDIT = {"amount": 9500, "currency": "EUR", "reason_code": "goodwill", "reason": "sorry"}


async def second_location(api, wait_for, priced: dict[str, str], name: str) -> dict[str, str]:
    location = await api("booking", "POST", "/locations",
                         json={"name": name, "timezone": "Europe/Berlin"})
    assert location.status_code == 201, location.text
    at = {**priced, "location_id": location.json()["id"]}
    at["therapist_id"] = await priced_at(api, wait_for, at["location_id"])
    return at


async def invoiced(platform, tenant, wait_for, at: dict[str, str]) -> dict[str, Any]:
    session = completed(at)
    await deliver(platform, tenant, session)
    [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
    return dict(bill)


async def test_front_desk_at_the_invoices_location_cannot_refund_or_credit_it_with_billing_elsewhere(
        platform, api, priced, tenant, wait_for):
    bill = await invoiced(platform, tenant, wait_for, priced)
    path = f"/invoices/{bill['invoice_id']}"
    paid = await api("billing", "POST", f"{path}/payments",
                     json={"amount": 9500, "currency": "EUR", "method": "cash"})
    assert paid.status_code == 201, paid.text
    desk_here_billing_elsewhere = Principal(
        f"mixed-{uuid.uuid4()}", "Desk here, billing elsewhere", tenant, location_roles={
            uuid.UUID(priced["location_id"]): frozenset({Role.FRONT_DESK}),
            uuid.uuid4(): frozenset({Role.BILLING})})
    for change, body in (("refunds", REFUND), ("credit-notes", CREDIT)):
        refused = await api("billing", "POST", f"{path}/{change}", json=body,
                            as_staff=desk_here_billing_elsewhere)
        assert refused.status_code == 403, (change, refused.text)
        assert refused.json()["type"] == "/problems/forbidden"
    after = (await api("billing", "GET", path)).json()
    assert (after["paid"], after["refunded"], after["credited"]) == (9500, 0, 0)
    # Billing staff there may.
    billing_here = Principal(f"bea-{uuid.uuid4()}", "Bea", tenant, location_roles={
        uuid.UUID(priced["location_id"]): frozenset({Role.BILLING})})
    done = await api("billing", "POST", f"{path}/refunds", json=REFUND, as_staff=billing_here)
    assert done.status_code == 201, done.text


async def test_a_packs_invoice_is_refunded_only_by_closing_the_pack_there_or_on_the_account_page(
        platform, urls, session_of, api, priced, tenant, wait_for):
    patient = priced["patient_id"]
    sold = await api("billing", "POST", f"/patients/{patient}/packs",
                     json={"location_id": priced["location_id"], "offer": "six"})
    assert sold.status_code == 201, sold.text
    pack = sold.json()
    path = f"/invoices/{pack['invoice_id']}"
    paid = await api("billing", "POST", f"{path}/payments",
                     json={"amount": 51000, "currency": "EUR", "method": "card"})
    assert paid.status_code == 201, paid.text
    for change, body in (("refunds", {**REFUND, "amount": 51000}),
                         ("credit-notes", {**CREDIT, "amount": 51000})):
        refused = await api("billing", "POST", f"{path}/{change}", json=body)
        assert refused.status_code == 422, (change, refused.text)
        problem = refused.json()
        assert problem["type"] == "/problems/refund-through-pack"
        assert f"POST /packs/{pack['pack_id']}/refund" in problem["detail"]
    bill = (await api("billing", "GET", path)).json()
    assert (bill["refunded"], bill["credited"], bill["status"]) == (0, 0, "paid")
    [still] = (await api("billing", "GET", f"/patients/{patient}/packs")).json()
    assert (still["status"], still["remaining"]) == ("active", 6)

    # The account page closes it: the pack's sessions go with its money.
    account = f"/admin/accounts/{patient}"
    async with httpx.AsyncClient(base_url=urls["billing"], cookies=session_of(tenant),
                                 timeout=30) as admin:
        page = await admin.get(account)
        assert page.status_code == 200, page.text
        assert f'action="{account}/packs/{pack["pack_id"]}/refund"' in page.text
        closed = await admin.post(f"{account}/packs/{pack['pack_id']}/refund")
        assert closed.status_code == 303, closed.text
        after = await admin.get(closed.headers["location"])
        assert "Pack six closed" in after.text
        assert f'action="{account}/packs/{pack["pack_id"]}/refund"' not in after.text
    [shut] = (await api("billing", "GET", f"/patients/{patient}/packs")).json()
    assert (shut["status"], shut["remaining"]) == ("refunded", 0)
    bill = (await api("billing", "GET", path)).json()
    assert (bill["refunded"], bill["credited"], bill["outstanding"]) == (51000, 51000, 0)


async def test_an_idempotency_key_sent_again_for_another_patients_pack_is_refused(
        api, priced, wait_for):
    other = await api("booking", "POST", "/patients", json={
        "given_name": "Grace", "family_name": "Hopperton", "date_of_birth": "1990-12-09",
        "home_location_id": priced["location_id"]})
    assert other.status_code == 201, other.text
    other_id = other.json()["id"]

    async def known() -> bool:
        return (await api("billing", "GET", f"/patients/{other_id}/packs")).status_code == 200

    await wait_for(known)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    sale = {"location_id": priced["location_id"], "offer": "six"}
    first = await api("billing", "POST", f"/patients/{priced['patient_id']}/packs", json=sale,
                      headers=key)
    assert first.status_code == 201, first.text
    again = await api("billing", "POST", f"/patients/{priced['patient_id']}/packs", json=sale,
                      headers=key)
    assert (again.status_code, again.json()["pack_id"]) == (201, first.json()["pack_id"])
    reused = await api("billing", "POST", f"/patients/{other_id}/packs", json=sale, headers=key)
    assert reused.status_code == 422, reused.text
    assert reused.json()["type"] == "/problems/idempotency-key-reused"
    assert (await api("billing", "GET", f"/patients/{other_id}/packs")).json() == []


async def test_the_account_balance_counts_only_the_locations_the_caller_may_read(
        platform, api, priced, tenant, wait_for):
    episode = await api("booking", "POST", "/episodes", json={
        "patient_id": priced["patient_id"], "location_id": priced["location_id"],
        "reason": "Right anterior knee pain when running for 10 weeks",
        "symptom_site": "knee_anterior", "goal": "Run 10 km at pre-injury pace",
        "goal_target_date": "2027-03-01"})
    assert episode.status_code == 201, episode.text
    elsewhere = await second_location(api, wait_for, priced, "Hillside Clinic")
    await invoiced(platform, tenant, wait_for, priced)  # 95.00 here
    await invoiced(platform, tenant, wait_for, elsewhere)  # and 95.00 at the other
    account = f"/accounts/{priced['patient_id']}"

    async def opened() -> bool:
        return (await api("billing", "GET", account)).status_code == 200

    await wait_for(opened)
    assert (await api("billing", "GET", account)).json()["balances"] == {"EUR": 19000}
    here_only = Principal(f"bea-{uuid.uuid4()}", "Bea", tenant, location_roles={
        uuid.UUID(priced["location_id"]): frozenset({Role.BILLING})})
    seen = await api("billing", "GET", account, as_staff=here_only)
    assert seen.status_code == 200, seen.text
    ledger = (await api("billing", "GET", f"{account}/ledger", as_staff=here_only)).json()
    assert seen.json()["balances"] == {"EUR": sum(e["amount"] for e in ledger)} == {"EUR": 9500}
