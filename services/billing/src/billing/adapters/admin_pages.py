"""Billing staff's pages: invoices by location and status; one invoice with its lines, totals,
history and the forms to take a payment or refund one; its receipts and the invoice to print;
the patient's account (ledger and packs, an open pack closed and its unused sessions refunded
from there: a pack's invoice is not refunded on its own); the price list editor; the day's
takings.

Every read and action is a call of billing's own API (kinetic_infra.http.admin_pages), so the
pages follow its rules (no overpayment, no refund above what was paid, no tariff in the past),
its tenancy and location checks and its audit trail, printed receipts included. What staff
type in major units ("95.00") becomes integer minor units here, by the currency's own number
of decimals and exactly (Decimal); an amount finer than the currency has is refused before
the API is called, never rounded. A refused action shows the problem in the page's status
region and keeps what was typed (the page is rendered again, not redirected), so nothing
changes and nothing is lost; a done one redirects (post/redirect/get). A payment or refund
form carries a key drawn with the page (the API's Idempotency-Key), so a form sent twice
records one payment.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, get_args
from urllib.parse import urlencode
from uuid import UUID

from babel.numbers import get_currency_precision
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from billing.adapters import documents
from billing.adapters.directory import locations
from billing.adapters.http import BILLING_STAFF, PRICE_SETTERS, REFUNDERS, PaymentIn
from billing.application.billing import LINE_LABELS
from billing.domain.money import Money
from billing.domain.price_list import Fees
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.http.admin_pages import (
    AdminKit,
    parse_date,
    problem_text,
    redirect,
    unshown_day,
)
from kinetic_infra.service.definition import Runtime

HOME = "/admin/invoices"
ACCOUNTS = "/admin/accounts"
PRICES = "/admin/prices"
TAKINGS = "/admin/takings"
MENU = [("Invoices", HOME), ("Prices", PRICES), ("Takings", TAKINGS)]
STATUSES = ["open", "partially_paid", "overdue", "paid", "void"]
METHODS = get_args(PaymentIn.model_fields["method"].annotation)
FEES = list(Fees.model_fields)
ACTIONS = {"payments": "Not recorded", "refunds": "Not refunded"}
# What the invoice page prints through the API: the invoice, or one payment's receipt.
DOCUMENT = re.compile(r"(document|receipts/[0-9a-fA-F-]{36})(\.pdf)?")
TYPED = re.compile(r"\d{1,12}([.,]\d{1,6})?")


class TypedAmountError(ValueError):
    """What was typed is not an amount the page can send; its text is shown as is."""


def _typed(text: str | None, what: str) -> str:
    typed = (text or "").strip()
    if not TYPED.fullmatch(typed):
        raise TypedAmountError(f"{what}: {typed or 'nothing'!r} is not an amount like 95.00")
    return typed.replace(",", ".")


def _scaled(typed: str, places: int) -> int | None:
    """``typed`` in units of 10^-places, or None if it is finer than that."""
    value = Decimal(typed).scaleb(places)
    return int(value) if value == value.to_integral_value() else None


def minor_units(text: str | None, currency: str, what: str = "Amount") -> int:
    """An amount typed in major units ("95.00", "95,5") as the currency's minor units:
    9500 cents for EUR; "95.001" EUR is refused rather than rounded."""
    typed = _typed(text, what)
    places = get_currency_precision(currency)
    units = _scaled(typed, places)
    if units is None:
        raise TypedAmountError(f"{what}: {typed} has more decimals than {currency} has "
                               f"({places})")
    return units


def basis_points(text: str | None, what: str = "Tax rate") -> int:
    """A rate typed in percent ("19", "7.5") as the basis points a tariff holds."""
    typed = _typed(text, what)
    points = _scaled(typed, 2)
    if points is None:
        raise TypedAmountError(f"{what}: {typed} % has more than two decimals")
    return points


def major(amount: int, currency: str) -> str:
    """Minor units as a form shows them to be typed again: 9500 EUR -> "95.00"."""
    return str(Money(amount=amount, currency=currency).decimal())


def _whole(text: str | None) -> Any:
    """A count as typed, or the text itself: the API then refuses it naming the field."""
    typed = (text or "").strip()
    return int(typed) if typed.isdigit() else typed or None


def tariff_body(form: dict[str, str], tariffs: list[dict[str, Any]]) -> dict[str, Any]:
    """The form as the API's Tariff. What the form does not edit (the CPT codes, the pack
    refund rule, and the packs while the currency stays) carries over from the latest
    tariff, so a new fee does not silently drop them."""
    currency = form.get("currency", "").strip().upper()

    def fee(field: str, what: str, optional: bool = False) -> int | None:
        if optional and not form.get(field, "").strip():
            return None  # no fee of that kind
        return minor_units(form.get(field), currency, what)

    body: dict[str, Any] = {
        "effective_from": form.get("effective_from") or None, "currency": currency,
        "tax_rate_bp": basis_points(form.get("tax_rate")),
        "fees": {kind: fee(kind, LINE_LABELS[kind]) for kind in FEES},
        "policy": {"late_cancel_hours": _whole(form.get("late_cancel_hours")),
                   "late_cancel_fee": fee("late_cancel_fee", "Late-cancellation fee", True),
                   "no_show_fee": fee("no_show_fee", "No-show fee", True)},
        "payment_terms_days": _whole(form.get("payment_terms_days"))}
    latest = tariffs[-1] if tariffs else {}
    for carried in ("cpt_codes", "pack_refund"):
        if carried in latest:
            body[carried] = latest[carried]
    if latest.get("currency") == currency:
        body["packs"] = latest.get("packs", [])
    return body


def tariff_form(t: dict[str, Any] | None) -> dict[str, str]:
    """A tariff as the editor's fields, to start the next one from."""
    if t is None:
        return {"effective_from": datetime.now(UTC).date().isoformat(), "currency": "EUR",
                "tax_rate": "0", "late_cancel_hours": "24", "payment_terms_days": "14"}
    c, policy = t["currency"], t["policy"]

    def optional(amount: int | None) -> str:
        return "" if amount is None else major(amount, c)

    return {"effective_from": "", "currency": c,
            "tax_rate": str(Decimal(t["tax_rate_bp"]).scaleb(-2)),
            **{kind: major(t["fees"][kind], c) for kind in FEES},
            "late_cancel_hours": str(policy["late_cancel_hours"]),
            "late_cancel_fee": optional(policy["late_cancel_fee"]),
            "no_show_fee": optional(policy["no_show_fee"]),
            "payment_terms_days": str(t["payment_terms_days"])}


def _q(path: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


def router(runtime: Runtime, kit: AdminKit) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    call = kit.call

    ok = kit.get_or

    def render(request: Request, template: str, principal: Principal, *, title: str,
               message: str | None = None, warn: bool = False, status_code: int = 200,
               **context: Any) -> Response:
        response = kit.render(request, template, principal, title=title,
                              money=documents.money, major=major,
                              message=message or request.query_params.get("flash"),
                              warn=warn or request.query_params.get("warn") == "1", **context)
        response.status_code = status_code
        return response

    async def places(principal: Principal, roles: tuple[Role, ...]) -> list[dict[str, str]]:
        """The caller's locations by name (billing's copy of booking's), where they hold
        one of ``roles``."""
        async with runtime.db.read(principal.tenant_id) as conn:
            rows = (await conn.execute(select(locations.c.location_id, locations.c.name)
                                       .order_by(locations.c.name))).all()
        return [{"location_id": str(loc), "name": name} for loc, name in rows
                if principal.can_at(loc, roles)]

    def kept_values(kept: tuple[str, dict[str, str]] | None) -> Any:
        """What a form shows: what was typed when this form was refused, else its default."""
        kept_key, kept_form = kept or ("", {})

        def v(key: str, field: str, default: Any = "") -> Any:
            return kept_form.get(field, "") if key == kept_key else default

        return v

    # -- invoices ----------------------------------------------------------------------------

    @pages.get(HOME)
    async def invoice_list(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        wanted = {k: request.query_params.get(k) or None
                  for k in ("location_id", "status", "patient_id")}
        listed = await call(request, "GET", _q("/invoices", **wanted))
        rows, message = [], None
        if listed.status_code == 200:
            rows = listed.json()
        else:
            message = f"The invoices could not be read: {problem_text(listed)}"
        visible = await places(principal, BILLING_STAFF)
        return render(request, "invoices.html", principal, title="Invoices", rows=rows,
                      locations=visible, names={x["location_id"]: x["name"] for x in visible},
                      statuses=STATUSES, wanted=wanted, message=message, warn=bool(message))

    async def invoice_page(request: Request, principal: Principal, invoice_id: str, *,
                           message: str | None = None, warn: bool = False,
                           kept: tuple[str, dict[str, str]] | None = None,
                           status_code: int = 200) -> Response:
        found = await call(request, "GET", f"/invoices/{invoice_id}")
        if found.status_code != 200:
            return redirect(HOME, f"Invoice {invoice_id}: {problem_text(found)}", warn=True)
        bill = found.json()
        location_id = UUID(bill["location_id"])
        async with runtime.db.read(principal.tenant_id) as conn:
            where = await documents.place(conn, location_id, _uuid(bill["therapist_id"]),
                                          UUID(bill["patient_id"]))
        return render(
            request, "invoice.html", principal, title=f"Invoice {bill['number']}", b=bill,
            where=where, methods=METHODS, can_refund=principal.can_at(location_id, REFUNDERS),
            # Drawn with the page: the payment or refund this form records, whatever
            # number of times it is sent.
            keys={action: str(uuid.uuid4()) for action in ACTIONS}, v=kept_values(kept),
            message=message, warn=warn, status_code=status_code)

    @pages.get(HOME + "/{invoice_id}")
    async def one_invoice(request: Request, invoice_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        return await invoice_page(request, principal, invoice_id)

    @pages.post(HOME + "/{invoice_id}/{action}")
    async def act(request: Request, invoice_id: str, action: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        here = f"{HOME}/{invoice_id}"
        if action not in ACTIONS:
            return redirect(here, f"Unknown action {action}", warn=True)
        form = {k: str(v) for k, v in (await request.form()).items()}
        currency = form.get("currency", "")
        try:
            amount = minor_units(form.get("amount"), currency)
        except TypedAmountError as exc:
            return await invoice_page(request, principal, invoice_id,
                                      message=f"{ACTIONS[action]}: {exc}", warn=True,
                                      kept=(action, form), status_code=422)
        body: dict[str, Any] = {"amount": amount, "currency": currency}
        if action == "payments":
            body |= {"method": form.get("method"), "reference": form.get("reference", "").strip()}
        else:
            body["reason"] = form.get("reason", "").strip()
        key = form.get("key")
        response = await call(request, "POST", f"/invoices/{invoice_id}/{action}", json=body,
                              headers={"Idempotency-Key": key} if key else {})
        if response.status_code != 201:
            return await invoice_page(request, principal, invoice_id,
                                      message=f"{ACTIONS[action]}: {problem_text(response)}",
                                      warn=True, kept=(action, form),
                                      status_code=response.status_code)
        shown = documents.money(amount, currency)
        return redirect(here, f"Payment of {shown} by {body['method']} recorded."
                        if action == "payments" else f"Refund of {shown} issued.")

    @pages.get(HOME + "/{invoice_id}/{document:path}")
    async def printable(request: Request, invoice_id: str, document: str) -> Response:
        """The invoice or a receipt as the API prints it (documents.invoice_page and
        documents.receipt), fetched as the signed-in staff member, so the print is checked
        and audited like any other."""
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        here = f"{HOME}/{invoice_id}"
        if not DOCUMENT.fullmatch(document):
            return redirect(here, f"No document {document}", warn=True)
        printed = await call(request, "GET", f"/invoices/{invoice_id}/{document}")
        if printed.status_code != 200:
            return redirect(here, f"Not printed: {problem_text(printed)}", warn=True)
        return Response(printed.content, media_type=printed.headers.get("content-type"))

    # -- the patient's account -----------------------------------------------------------------

    async def account_page(request: Request, principal: Principal, patient_id: str, *,
                           message: str | None = None, warn: bool = False,
                           status_code: int = 200) -> Response:
        ledger = await call(request, "GET", f"/accounts/{patient_id}/ledger")
        if ledger.status_code != 200:
            return redirect(HOME, f"Account of {patient_id}: {problem_text(ledger)}", warn=True)
        entries = ledger.json()
        # The balance is the sum of the entries (billing.domain.ledger): the ones shown, so
        # the page adds up at whichever locations the caller sees.
        balances: dict[str, int] = defaultdict(int)
        for entry in entries:
            balances[entry["currency"]] += entry["amount"]
        bills = await ok(request, _q("/invoices", patient_id=patient_id), [])
        packs = await ok(request, f"/patients/{patient_id}/packs", [])
        return render(request, "account.html", principal, title="Patient account",
                      patient_id=patient_id, entries=list(reversed(entries)),
                      balances=dict(balances), bills=bills,
                      numbers={b["invoice_id"]: b["number"] for b in bills},
                      account=await ok(request, f"/accounts/{patient_id}", None), packs=packs,
                      # Closing a pack refunds it: billing's and the operator's, there.
                      can_close={p["pack_id"] for p in packs
                                 if principal.can_at(UUID(p["location_id"]), REFUNDERS)},
                      message=message, warn=warn, status_code=status_code)

    @pages.get(ACCOUNTS + "/{patient_id}")
    async def account(request: Request, patient_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        return await account_page(request, principal, patient_id)

    @pages.post(ACCOUNTS + "/{patient_id}/packs/{pack_id}/refund")
    async def close_pack(request: Request, patient_id: str, pack_id: str) -> Response:
        """Close the pack and refund its unused sessions by the location's policy (the API's
        POST /packs/{id}/refund); a repeat finds the pack closed and changes nothing."""
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        if _uuid(pack_id) is None:
            return redirect(f"{ACCOUNTS}/{patient_id}", f"No pack {pack_id}", warn=True)
        closed = await call(request, "POST", f"/packs/{pack_id}/refund")
        if closed.status_code != 200:
            return await account_page(request, principal, patient_id,
                                      message=f"Not closed: {problem_text(closed)}", warn=True,
                                      status_code=closed.status_code)
        pack = closed.json()
        return redirect(f"{ACCOUNTS}/{patient_id}",
                        f"Pack {pack['offer']} closed: its unused sessions are refunded by the "
                        "location's policy on its invoice.", anchor="packs")

    # -- the price list ----------------------------------------------------------------------

    async def prices_page(request: Request, principal: Principal, wanted: str | None, *,
                          message: str | None = None, warn: bool = False,
                          kept: dict[str, str] | None = None, status_code: int = 200
                          ) -> Response:
        visible = await places(principal, BILLING_STAFF)
        location = next((x for x in visible if x["location_id"] == wanted),
                        visible[0] if visible else None)
        prices: dict[str, Any] | None = None
        if location is not None:
            found = await call(request, "GET", f"/locations/{location['location_id']}/prices")
            if found.status_code == 200:
                prices = found.json()
            else:
                message = message or f"The price list could not be read: {problem_text(found)}"
                warn = True
        tariffs = prices["tariffs"] if prices else []
        start = tariff_form(tariffs[-1] if tariffs else None)
        return render(
            request, "prices.html", principal, title="Prices", locations=visible,
            location=location, prices=prices, fees=[(k, LINE_LABELS[k]) for k in FEES],
            can_set=location is not None and principal.can_at(UUID(location["location_id"]),
                                                              PRICE_SETTERS),
            v=lambda field: (kept or start).get(field, ""),
            message=message, warn=warn, status_code=status_code)

    @pages.get(PRICES)
    async def price_list(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        return await prices_page(request, principal, request.query_params.get("location_id"))

    @pages.post(PRICES)
    async def schedule(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        location_id = form.get("location_id", "")
        api = f"/locations/{location_id}/prices"
        current = await call(request, "GET", api)
        if current.status_code != 200:
            return await prices_page(request, principal, location_id,
                                     message=f"Not scheduled: {problem_text(current)}",
                                     warn=True, kept=form, status_code=current.status_code)
        try:
            body = tariff_body(form, current.json()["tariffs"])
        except TypedAmountError as exc:
            return await prices_page(request, principal, location_id,
                                     message=f"Not scheduled: {exc}", warn=True, kept=form,
                                     status_code=422)
        response = await call(request, "POST", api, json=body)
        if response.status_code != 200:
            return await prices_page(request, principal, location_id,
                                     message=f"Not scheduled: {problem_text(response)}",
                                     warn=True, kept=form, status_code=response.status_code)
        return redirect(_q(PRICES, location_id=location_id),
                        f"Tariff from {body['effective_from']} scheduled.")

    # -- takings -----------------------------------------------------------------------------

    @pages.get(TAKINGS)
    async def takings(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        # A day the calendar cannot show (unparsed, or in its first or last year) shows today.
        unshown = unshown_day(request.query_params.get("day"), "today")
        asked = None if unshown else request.query_params.get("day") or None
        found = await call(request, "GET", _q("/takings", day=asked))
        taken, message = None, unshown
        if found.status_code == 200:
            taken = found.json()
        else:
            message = f"The takings could not be read: {problem_text(found)}"
        # Without a day asked for, the API counts today at each location; the page names
        # that day when the locations share it.
        shown = asked or (taken or {}).get("day")
        day = parse_date(shown)
        return render(request, "takings.html", principal, title="Takings",
                      day=shown, taken=taken, message=message, warn=bool(message),
                      prev_url=day and _q(TAKINGS, day=(day - timedelta(days=1)).isoformat()),
                      next_url=day and _q(TAKINGS, day=(day + timedelta(days=1)).isoformat()))

    return pages
