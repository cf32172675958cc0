"""Billing's HTTP API: price lists, invoices, payments, refunds, credit notes, packs, the
patient account (a ledger), daily takings, and the printable invoice, receipt and superbill.

Billing staff, the front desk (who take payments) and operators, at their locations; price
lists are the operator's and billing's to change. Every call is audited; every change runs in
one transaction and is safe to repeat with an ``Idempotency-Key`` (the key names the payment,
refund, credit note or pack, so a repeat is the same one)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Date, DateTime, Select, bindparam, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.adapters import documents
from billing.adapters.accounts import accounts
from billing.adapters.directory import locations, patients, therapists
from billing.adapters.projections import charges, invoices, ledger_entries, packs
from billing.application import billing
from billing.domain import invoice, pack, price_list
from billing.domain.money import Currency, Money
from billing.domain.price_list import Tariff
from kinetic_contracts.problems import NotFoundError
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.commands import run_command
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import ForbiddenError, Staff
from kinetic_infra.http.headers import IdempotencyKey
from kinetic_infra.read_models import at_visible_locations, fetch_all, fetch_one
from kinetic_infra.service.definition import Runtime

BILLING_STAFF = (Role.BILLING, Role.FRONT_DESK, Role.OPERATOR)
PRICE_SETTERS = (Role.BILLING, Role.OPERATOR)
# Refunds and credit notes pay money out or forgive it: billing's and the operator's, at the
# invoice's own location (the front desk there takes payments only).
REFUNDERS = (Role.BILLING, Role.OPERATOR)
ACCOUNT_READERS = BILLING_STAFF


class AccountNotFoundError(NotFoundError):
    type_slug = "account-not-found"
    title = "No such patient account"


class LocationNotFoundError(NotFoundError):
    type_slug = "location-not-found"
    title = "No such location"


class EpisodeNotBilledError(NotFoundError):
    type_slug = "episode-not-billed"
    title = "No charged sessions for that episode"


class PaymentNotFoundError(NotFoundError):
    type_slug = "payment-not-found"
    title = "No such payment on the invoice"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AmountIn(Strict):
    amount: int = Field(gt=0, le=10**12, description="Minor units (cents), more than zero")
    currency: Currency

    def money(self) -> Money:
        return Money(amount=self.amount, currency=self.currency)


class PaymentIn(AmountIn):
    method: Literal["cash", "card", "transfer"]
    reference: str = Field(default="", max_length=200,
                           description="Card slip, transfer reference …")


class RefundIn(AmountIn):
    reason: str = Field(min_length=1, max_length=500)


class CreditNoteIn(AmountIn):
    reason_code: Literal["goodwill", "billing_error", "other"]
    reason: str = Field(min_length=1, max_length=500)


class PackIn(Strict):
    location_id: UUID
    offer: str = Field(min_length=1, max_length=40, description="The offer's code")


class PriceListOut(BaseModel):
    location_id: UUID
    tariffs: list[Tariff]
    in_force: Tariff | None = Field(description="The tariff in force today at the location")


class LocationOut(BaseModel):
    location_id: UUID
    name: str
    timezone: str
    in_force: Tariff | None


class AccountOut(BaseModel):
    patient_id: UUID
    opened_at: datetime
    episodes: int
    last_episode_id: UUID
    last_location_id: UUID
    balances: dict[str, int] = Field(
        default_factory=dict, description="Per currency, in minor units: the sum of the "
                                          "ledger's entries (positive: the patient owes)")


class EntryOut(BaseModel):
    entry_id: str
    invoice_id: UUID
    kind: str
    amount: int
    currency: str
    method: str | None
    at: datetime


class InvoiceRow(BaseModel):
    invoice_id: UUID
    number: str
    patient_id: UUID
    patient_name: str | None = Field(
        default=None, description="Whom it is for, once booking's details reached billing")
    location_id: UUID
    therapist_id: UUID | None
    appointment_id: UUID | None
    episode_id: UUID | None
    pack_id: UUID | None
    kind: str
    currency: str
    total: int
    tax: int
    paid: int
    refunded: int
    credited: int
    outstanding: int
    status: str
    overdue: bool
    issued_at: datetime
    issued_on: date = Field(description="The date of issue where the clinic is (its "
                                        "location's timezone), as the invoice prints it")
    due_on: date


class InvoiceOut(InvoiceRow):
    lines: list[invoice.InvoiceLine]
    history: list[dict[str, Any]] = Field(
        description="Payments, refunds, credit notes, reminders and overdue, oldest first")


class PackOut(BaseModel):
    pack_id: UUID
    patient_id: UUID
    location_id: UUID
    offer: str
    sessions: int
    remaining: int
    price: int
    currency: str
    invoice_id: UUID
    status: str
    purchased_at: datetime


class TakingsRow(BaseModel):
    day: date = Field(description="The location's day these takings cover (its own calendar "
                                  "day, midnight to midnight in its timezone)")
    location_id: UUID
    location: str | None
    therapist_id: UUID | None
    therapist: str | None
    currency: str
    payments: int
    refunds: int
    net: int


class TakingsOut(BaseModel):
    day: date | None = Field(description="The day asked for; without one, today at the "
                                         "caller's locations, or none when their todays "
                                         "differ (each row names its own)")
    by_location: list[TakingsRow]
    by_therapist: list[TakingsRow]


def with_patient_name(query: Select[Any]) -> Select[Any]:
    """The invoices query with the name of whom each is for (none until it is known) and its
    date of issue on the clinic's calendar (UTC's while billing does not know the location)."""
    zone = (select(locations.c.timezone).where(locations.c.location_id == invoices.c.location_id)
            .scalar_subquery())
    return (query.add_columns((patients.c.given_name + " " + patients.c.family_name)
                              .label("patient_name"),
                              cast(func.timezone(func.coalesce(zone, "UTC"), invoices.c.issued_at),
                                   Date).label("issued_on"))
            .outerjoin(patients, patients.c.patient_id == invoices.c.patient_id))


def staff_name(principal: Principal) -> str:
    return principal.staff_id


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["billing"], route_class=AuditedRoute)
    db, store = runtime.db, runtime.store

    # -- price lists -----------------------------------------------------------------------

    async def known_location(conn: AsyncConnection, principal: Principal, location_id: UUID,
                             roles: tuple[Role, ...]) -> str:
        """The location's timezone, if it exists in the caller's organization and the caller
        holds one of the roles there (else 404)."""
        zone = await conn.scalar(select(locations.c.timezone)
                                 .where(locations.c.location_id == location_id))
        if zone is None or not principal.can_at(location_id, roles):
            raise LocationNotFoundError(f"no location {location_id} you can see",
                                        location_id=str(location_id))
        return str(zone)

    async def price_list_out(conn: AsyncConnection, principal: Principal,
                             location_id: UUID) -> dict[str, Any]:
        prices = await billing.state_of(conn, store, billing.price_list_stream(location_id),
                                        price_list, principal.tenant_id)
        today = await billing.local_date(conn, location_id, datetime.now(UTC))
        return {"location_id": location_id, "tariffs": list(prices.tariffs),
                "in_force": prices.in_force(today)}

    @api.get("/locations", response_model=list[LocationOut],
             summary="The locations billing knows, with the tariff in force today at each",
             openapi_extra=audited("list", "price-list"))
    async def list_locations(principal: Staff(*BILLING_STAFF, Role.THERAPIST)
                             ) -> list[dict[str, Any]]:
        visible = principal.locations_for((*BILLING_STAFF, Role.THERAPIST))
        async with db.read(principal.tenant_id) as conn:
            rows = (await conn.execute(select(locations).order_by(locations.c.name))).mappings()
            return [{**row, "in_force": (await price_list_out(
                        conn, principal, row["location_id"]))["in_force"]}
                    for row in rows.all()
                    if visible is None or row["location_id"] in visible]

    @api.get("/locations/{location_id}/prices", response_model=PriceListOut,
             summary="The location's price list: every tariff and the one in force today",
             openapi_extra=audited("read", "price-list"))
    async def get_prices(request: Request, location_id: UUID,
                         principal: Staff(*BILLING_STAFF, Role.THERAPIST)) -> dict[str, Any]:
        note(request).location_id = location_id
        async with db.read(principal.tenant_id) as conn:
            await known_location(conn, principal, location_id,
                                 (*BILLING_STAFF, Role.THERAPIST))
            return await price_list_out(conn, principal, location_id)

    @api.post("/locations/{location_id}/prices", response_model=PriceListOut,
              summary="Schedule a tariff: fees per appointment type, currency, tax, the "
                      "cancellation and no-show policy and packs, in force from a date "
                      "(today or later; any date for the location's first)",
              openapi_extra=audited("update", "price-list"))
    async def schedule_tariff(request: Request, location_id: UUID, body: Tariff,
                              principal: Staff(*PRICE_SETTERS)) -> dict[str, Any]:
        note(request).location_id = location_id

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            await known_location(conn, principal, location_id, PRICE_SETTERS)
            today = await billing.local_date(conn, location_id, datetime.now(UTC))
            await billing.run(conn, store, billing.price_list_stream(location_id), price_list,
                              price_list.ScheduleTariff(location_id=location_id, tariff=body,
                                                        today=today, by=staff_name(principal),
                                                        now=datetime.now(UTC)),
                              billing.context(principal.tenant_id, new_id(),
                                              location_id=location_id))
            return PriceListOut.model_validate(
                await price_list_out(conn, principal, location_id)).model_dump(mode="json")

        return await run_command(db, work, tenant_id=principal.tenant_id)

    # -- invoices --------------------------------------------------------------------------

    async def visible_invoice(conn: AsyncConnection, request: Request, principal: Principal,
                              invoice_id: UUID) -> dict[str, Any]:
        row = (await conn.execute(invoices.select().where(invoices.c.invoice_id == invoice_id))
               ).mappings().one_or_none()
        if row is None or not principal.can_at(row["location_id"], BILLING_STAFF):
            raise invoice.InvoiceNotFoundError(f"no invoice {invoice_id} you can see",
                                               invoice_id=str(invoice_id))
        note(request).patient_id = row["patient_id"]
        note(request).location_id = row["location_id"]
        note(request).resource_id = str(invoice_id)
        return dict(row)

    async def invoice_out(conn: AsyncConnection, principal: Principal, invoice_id: UUID
                          ) -> dict[str, Any]:
        row = (await conn.execute(with_patient_name(select(invoices)).where(
            invoices.c.invoice_id == invoice_id))).mappings().one()
        recorded, _ = await store.read(conn, billing.invoice_stream(invoice_id),
                                       tenant_id=principal.tenant_id)
        bill = await billing.state_of(conn, store, billing.invoice_stream(invoice_id), invoice,
                                      principal.tenant_id)
        return {**row, "lines": list(bill.lines),
                "history": [documents.history_item(e) for e in recorded[1:]]}

    @api.get("/invoices", response_model=list[InvoiceRow],
             summary="Invoices at your locations, newest first (filter by location, status, "
                     "patient)", openapi_extra=audited("list", "invoice"))
    async def list_invoices(principal: Staff(*BILLING_STAFF),
                            location_id: UUID | None = None,
                            status_: str | None = Query(default=None, alias="status"),
                            patient_id: UUID | None = None,
                            limit: int = Query(default=200, ge=1, le=1000)
                            ) -> list[dict[str, Any]]:
        query = at_visible_locations(
            with_patient_name(select(invoices)).order_by(invoices.c.issued_at.desc())
            .limit(limit), principal, invoices.c.location_id, BILLING_STAFF)
        for column, value in ((invoices.c.location_id, location_id),
                              (invoices.c.status, status_),
                              (invoices.c.patient_id, patient_id)):
            if value is not None:
                query = query.where(column == value)
        async with db.read(principal.tenant_id) as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    @api.get("/invoices/{invoice_id}", response_model=InvoiceOut,
             summary="One invoice: lines, what it still asks, and its history",
             openapi_extra=audited("read", "invoice"))
    async def get_invoice(request: Request, invoice_id: UUID,
                          principal: Staff(*BILLING_STAFF)) -> dict[str, Any]:
        async with db.read(principal.tenant_id) as conn:
            await visible_invoice(conn, request, principal, invoice_id)
            return await invoice_out(conn, principal, invoice_id)

    async def change_invoice(request: Request, principal: Principal, invoice_id: UUID,
                             command: Any, roles: tuple[Role, ...] = BILLING_STAFF
                             ) -> dict[str, Any]:
        """Apply the command to an invoice the caller can see, if they hold one of ``roles``
        at its location: the route's roles held somewhere else are not enough."""
        async def work(conn: AsyncConnection) -> dict[str, Any]:
            row = await visible_invoice(conn, request, principal, invoice_id)
            if not principal.can_at(row["location_id"], roles):
                raise ForbiddenError(f"this needs one of: {', '.join(r.value for r in roles)} "
                                     "at the invoice's location")
            await billing.run(conn, store, billing.invoice_stream(invoice_id), invoice, command,
                              billing.context(principal.tenant_id, new_id(),
                                              location_id=row["location_id"],
                                              episode_id=row["episode_id"]))
            return InvoiceOut.model_validate(
                await invoice_out(conn, principal, invoice_id)).model_dump(mode="json")

        return await run_command(db, work, tenant_id=principal.tenant_id)

    @api.post("/invoices/{invoice_id}/payments", response_model=InvoiceOut,
              status_code=status.HTTP_201_CREATED,
              summary="Record a payment (cash, card, transfer); partial payments welcome, "
                      "never more than the invoice asks",
              openapi_extra=audited("pay", "invoice"))
    async def record_payment(request: Request, invoice_id: UUID, body: PaymentIn,
                             principal: Staff(*BILLING_STAFF),
                             idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        return await change_invoice(request, principal, invoice_id, invoice.RecordPayment(
            invoice_id=invoice_id, payment_id=idempotency_key or new_id(), amount=body.money(),
            method=body.method, reference=body.reference, by=staff_name(principal),
            now=datetime.now(UTC)))

    @api.post("/invoices/{invoice_id}/refunds", response_model=InvoiceOut,
              status_code=status.HTTP_201_CREATED,
              summary="Refund money paid on the invoice (full or partial, never more than "
                      "was paid), with a reason", openapi_extra=audited("refund", "invoice"))
    async def refund(request: Request, invoice_id: UUID, body: RefundIn,
                     principal: Staff(*REFUNDERS),
                     idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        return await change_invoice(request, principal, invoice_id, invoice.IssueRefund(
            invoice_id=invoice_id, refund_id=idempotency_key or new_id(), amount=body.money(),
            reason=body.reason, by=staff_name(principal), now=datetime.now(UTC)), REFUNDERS)

    @api.post("/invoices/{invoice_id}/credit-notes", response_model=InvoiceOut,
              status_code=status.HTTP_201_CREATED,
              summary="Credit the invoice (a credit note with a reason)",
              openapi_extra=audited("credit", "invoice"))
    async def credit_note(request: Request, invoice_id: UUID, body: CreditNoteIn,
                          principal: Staff(*REFUNDERS),
                          idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        return await change_invoice(request, principal, invoice_id, invoice.IssueCreditNote(
            invoice_id=invoice_id, credit_note_id=idempotency_key or new_id(),
            amount=body.money(), reason_code=body.reason_code, reason=body.reason,
            by=staff_name(principal), now=datetime.now(UTC)), REFUNDERS)

    # -- documents -------------------------------------------------------------------------

    async def document(request: Request, principal: Principal, invoice_id: UUID, kind: str,
                       payment_id: UUID | None, pdf: bool) -> Response:
        async with db.read(principal.tenant_id) as conn:
            row = await visible_invoice(conn, request, principal, invoice_id)
            detail = await invoice_out(conn, principal, invoice_id)
            place = await documents.place(conn, row["location_id"], row["therapist_id"],
                                          row["patient_id"])
        if kind == "receipt":
            payment = next((h for h in detail["history"] if h["kind"] == "payment"
                            and h["id"] == str(payment_id)), None)
            if payment is None:
                raise PaymentNotFoundError(f"no payment {payment_id} on invoice {invoice_id}")
            page = documents.receipt(detail, payment, place)
        else:
            page = documents.invoice_page(detail, place)
        if pdf:
            return Response(documents.pdf(page), media_type="application/pdf")
        return HTMLResponse(documents.html(page))

    # The PDF routes first: "/receipts/{payment_id}" would otherwise take "….pdf" as an id.
    for suffix, pdf in ((".pdf", True), ("", False)):
        def bind(pdf: bool = pdf) -> None:
            async def invoice_document(request: Request, invoice_id: UUID,
                                       principal: Staff(*BILLING_STAFF)) -> Response:
                return await document(request, principal, invoice_id, "invoice", None, pdf)

            async def receipt_document(request: Request, invoice_id: UUID, payment_id: UUID,
                                       principal: Staff(*BILLING_STAFF)) -> Response:
                return await document(request, principal, invoice_id, "receipt", payment_id,
                                      pdf)
            media = {200: {"content": {"application/pdf" if pdf else "text/html": {}}}}
            api.add_api_route(f"/invoices/{{invoice_id}}/document{suffix}", invoice_document,
                              methods=["GET"], response_class=Response, responses=media,
                              summary="The invoice, printable" + (" (PDF)" if pdf else ""),
                              openapi_extra=audited("print", "invoice"),
                              name=f"invoice_document{suffix}")
            api.add_api_route(f"/invoices/{{invoice_id}}/receipts/{{payment_id}}{suffix}",
                              receipt_document, methods=["GET"], response_class=Response,
                              responses=media,
                              summary="A receipt for one payment" + (" (PDF)" if pdf else ""),
                              openapi_extra=audited("print", "receipt"),
                              name=f"receipt_document{suffix}")
        bind()

    @api.get("/episodes/{episode_id}/superbill", response_class=HTMLResponse,
             summary="The episode's superbill (CPT and ICD-10 codes, what each session was "
                     "charged after credits and what was paid) for the patient's own "
                     "out-of-network claim", openapi_extra=audited("print",
                                                                                 "superbill"))
    async def superbill_page(request: Request, episode_id: UUID,
                             principal: Staff(*BILLING_STAFF)) -> Response:
        return HTMLResponse(documents.html(await superbill(request, principal, episode_id)))

    @api.get("/episodes/{episode_id}/superbill.pdf", response_class=Response,
             responses={200: {"content": {"application/pdf": {}}}},
             summary="The episode's superbill as a PDF", openapi_extra=audited("print",
                                                                               "superbill"))
    async def superbill_pdf(request: Request, episode_id: UUID,
                            principal: Staff(*BILLING_STAFF)) -> Response:
        page = await superbill(request, principal, episode_id)
        return Response(documents.pdf(page), media_type="application/pdf")

    async def superbill(request: Request, principal: Principal, episode_id: UUID
                        ) -> documents.Page:
        async with db.read(principal.tenant_id) as conn:
            rows = [dict(r) for r in (await conn.execute(
                select(charges).where(charges.c.episode_id == episode_id,
                                      charges.c.status == "charged",
                                      charges.c.kind == "session")
                .order_by(charges.c.service_date))).mappings()]
            if not rows or not principal.can_at(rows[0]["location_id"], BILLING_STAFF):
                raise EpisodeNotBilledError(f"no charged sessions of episode {episode_id} "
                                            f"you can see")
            note(request).patient_id = rows[0]["patient_id"]
            note(request).location_id = rows[0]["location_id"]
            return await documents.superbill(conn, store, principal.tenant_id, episode_id,
                                             rows)

    # -- packs -----------------------------------------------------------------------------

    @api.post("/patients/{patient_id}/packs", response_model=PackOut,
              status_code=status.HTTP_201_CREATED,
              summary="Sell the patient one of the location's session packs (invoiced at "
                      "the package price; usable at once)",
              openapi_extra=audited("sell", "pack"))
    async def sell_pack(request: Request, patient_id: UUID, body: PackIn,
                        principal: Staff(*BILLING_STAFF),
                        idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        note(request).patient_id = patient_id
        note(request).location_id = body.location_id
        pack_id = idempotency_key or new_id()

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            await known_location(conn, principal, body.location_id, BILLING_STAFF)
            # A mistyped id would take the organization's next invoice number for nobody.
            await known_patient(conn, patient_id)
            await billing.buy_pack(conn, store, principal.tenant_id, pack_id=pack_id,
                                   patient_id=patient_id, location_id=body.location_id,
                                   offer_code=body.offer, by=staff_name(principal),
                                   now=datetime.now(UTC))
            return await pack_row(conn, pack_id)

        return await run_command(db, work, tenant_id=principal.tenant_id)

    async def pack_row(conn: AsyncConnection, pack_id: UUID) -> dict[str, Any]:
        row = (await conn.execute(packs.select().where(packs.c.pack_id == pack_id))
               ).mappings().one()
        return PackOut.model_validate(dict(row)).model_dump(mode="json")

    @api.get("/patients/{patient_id}/packs", response_model=list[PackOut],
             summary="The patient's session packs", openapi_extra=audited("list", "pack"))
    async def list_packs(request: Request, patient_id: UUID,
                         principal: Staff(*BILLING_STAFF)) -> list[dict[str, Any]]:
        note(request).patient_id = patient_id
        query = at_visible_locations(
            select(packs).where(packs.c.patient_id == patient_id).order_by(
                packs.c.purchased_at), principal, packs.c.location_id, BILLING_STAFF)
        async with db.read(principal.tenant_id) as conn:
            rows = [dict(r) for r in (await conn.execute(query)).mappings()]
            if not rows:
                await known_patient(conn, patient_id)
            return rows

    @api.post("/packs/{pack_id}/refund", response_model=PackOut,
              summary="Close the pack and refund its unused sessions by the location's "
                      "policy (pro rata, or none)", openapi_extra=audited("refund", "pack"))
    async def refund_unused(request: Request, pack_id: UUID,
                            principal: Staff(*REFUNDERS)) -> dict[str, Any]:
        async def work(conn: AsyncConnection) -> dict[str, Any]:
            row = (await conn.execute(packs.select().where(packs.c.pack_id == pack_id))
                   ).mappings().one_or_none()
            if row is None or not principal.can_at(row["location_id"], REFUNDERS):
                raise pack.PackNotFoundError(f"no pack {pack_id} you can see")
            note(request).patient_id = row["patient_id"]
            await billing.refund_pack(conn, store, principal.tenant_id, pack_id,
                                      staff_name(principal), datetime.now(UTC))
            return await pack_row(conn, pack_id)

        return await run_command(db, work, tenant_id=principal.tenant_id)

    # -- accounts and takings --------------------------------------------------------------

    async def known_patient(conn: AsyncConnection, patient_id: UUID) -> None:
        """A patient billing has never heard of in this organization (registered, with an
        episode, or invoiced) is a 404, like any other id that names nothing the caller can
        see."""
        seen = False
        for table in (patients, accounts, invoices):
            seen = seen or bool(await conn.scalar(select(func.count()).select_from(table)
                                                  .where(table.c.patient_id == patient_id)))
        if not seen:
            raise AccountNotFoundError(f"no account for patient {patient_id}")

    async def balances(conn: AsyncConnection, principal: Principal, patient_id: UUID
                       ) -> dict[str, int]:
        """The sum of the ledger entries the caller may read (as GET …/ledger lists them):
        another location's invoices are neither shown nor counted."""
        rows = await conn.execute(at_visible_locations(
            select(ledger_entries.c.currency, func.sum(ledger_entries.c.amount))
            .where(ledger_entries.c.patient_id == patient_id)
            .group_by(ledger_entries.c.currency),
            principal, ledger_entries.c.location_id, ACCOUNT_READERS))
        return {currency: int(total) for currency, total in rows}

    @api.get("/accounts", response_model=list[AccountOut],
             summary="Patient accounts at your locations", openapi_extra=audited("list", "account"))
    async def list_accounts(principal: Staff(*ACCOUNT_READERS)) -> list[dict[str, Any]]:
        return await fetch_all(db, accounts, principal, accounts.c.opened_at.desc(),
                               location=accounts.c.last_location_id, roles=ACCOUNT_READERS)

    @api.get("/accounts/{patient_id}", response_model=AccountOut,
             summary="One patient's account and its balance per currency",
             openapi_extra=audited("read", "account"))
    async def get_account(request: Request, patient_id: UUID,
                          principal: Staff(*ACCOUNT_READERS)) -> dict[str, Any]:
        note(request).patient_id = patient_id
        row = await fetch_one(db, accounts, accounts.c.patient_id, patient_id, principal,
                              AccountNotFoundError(f"no account for patient {patient_id}"),
                              location=accounts.c.last_location_id, roles=ACCOUNT_READERS)
        note(request).location_id = row["last_location_id"]
        async with db.read(principal.tenant_id) as conn:
            return {**row, "balances": await balances(conn, principal, patient_id)}

    @api.get("/accounts/{patient_id}/ledger", response_model=list[EntryOut],
             summary="The account's ledger entries, oldest first (the balance is their sum)",
             openapi_extra=audited("read", "account"))
    async def get_ledger(request: Request, patient_id: UUID,
                         principal: Staff(*ACCOUNT_READERS)) -> list[dict[str, Any]]:
        note(request).patient_id = patient_id
        query = at_visible_locations(
            select(ledger_entries).where(ledger_entries.c.patient_id == patient_id),
            principal, ledger_entries.c.location_id, ACCOUNT_READERS)
        async with db.read(principal.tenant_id) as conn:
            rows = [dict(r) for r in (await conn.execute(
                query.order_by(ledger_entries.c.at, ledger_entries.c.entry_id))).mappings()]
            if not rows:
                await known_patient(conn, patient_id)
            return rows

    @api.get("/takings", response_model=TakingsOut,
             summary="A day's takings (payments less refunds) per location and per "
                     "therapist, each location's own day in its timezone (today if no day)",
             openapi_extra=audited("read", "takings"))
    async def takings(principal: Staff(Role.BILLING, Role.OPERATOR),
                      day: date | None = None) -> dict[str, Any]:
        async with db.read(principal.tenant_id) as conn:
            if day is None:
                today = select(cast(func.timezone(locations.c.timezone, func.now()),
                                    Date)).distinct()
                days = set(await conn.scalars(at_visible_locations(
                    today, principal, locations.c.location_id, (Role.BILLING, Role.OPERATOR))))
                day = days.pop() if len(days) == 1 else None
            return {"day": day, "by_location": await takings_by(conn, principal, day, False),
                    "by_therapist": await takings_by(conn, principal, day, True)}

    async def takings_by(conn: AsyncConnection, principal: Principal, day: date | None,
                         per_therapist: bool) -> list[dict[str, Any]]:
        e = ledger_entries
        # A clinic's day runs from its own midnight to the next, across daylight-saving
        # changes too; a location billing does not know yet is counted in UTC days.
        zone = func.coalesce(locations.c.timezone, "UTC")
        day_there = (cast(bindparam("day", day, Date), Date) if day is not None
                     else cast(func.timezone(zone, func.now()), Date))

        def midnight(of: Any) -> Any:  # the instant a local date begins there
            return func.timezone(zone, cast(of, DateTime))

        # Every timezone's day lies within a day of the UTC one: the outer window keeps the
        # ledger's (tenant, location, at) index in play before the exact local one applies.
        around = datetime.combine(day, time(), UTC) if day else datetime.now(UTC)
        keys = [day_there, e.c.location_id, locations.c.name, e.c.currency]
        if per_therapist:
            keys += [e.c.therapist_id, therapists.c.display_name]
        payments = func.sum(-e.c.amount).filter(e.c.kind == "payment")
        refunds = func.sum(e.c.amount).filter(e.c.kind == "refund")
        query = (select(*keys, func.coalesce(payments, 0), func.coalesce(refunds, 0))
                 .select_from(e.outerjoin(locations, locations.c.location_id == e.c.location_id)
                              .outerjoin(therapists,
                                         therapists.c.therapist_id == e.c.therapist_id))
                 .where(e.c.kind.in_(("payment", "refund")),
                        e.c.at >= around - timedelta(days=2), e.c.at < around + timedelta(days=2),
                        e.c.at >= midnight(day_there), e.c.at < midnight(day_there + 1))
                 .group_by(*keys).order_by(locations.c.name))
        query = at_visible_locations(query, principal, e.c.location_id,
                                     (Role.BILLING, Role.OPERATOR))
        out = []
        for row in await conn.execute(query):
            paid, refunded = int(row[-2]), int(row[-1])
            out.append({"day": row[0], "location_id": row[1], "location": row[2],
                        "currency": row[3],
                        "therapist_id": row[4] if per_therapist else None,
                        "therapist": row[5] if per_therapist else None,
                        "payments": paid, "refunds": refunded, "net": paid - refunded})
        return out

    return api
