"""Billing's command handling: facts read in the command's transaction (the price list in
force, the patient's open pack, the location's timezone, the next invoice number), then the
pure deciders, then append (events, outbox and the inline read models together). A command
that touches two aggregates (a charge and its invoice or pack) appends both in the one
transaction, each checked against the version it read."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.adapters.directory import locations
from billing.adapters.projections import packs
from billing.domain import charge, due_dates, invoice, pack, price_list
from billing.domain.money import contained_tax
from billing.domain.price_list import Tariff
from kinetic_contracts.billing.v1 import events as public
from kinetic_infra.event_store.decider import Aggregate, handle, load
from kinetic_infra.event_store.model import EventContext, RecordedEvent, StreamName
from kinetic_infra.event_store.store import EventStore

metadata = MetaData()
invoice_numbers = Table(
    "invoice_numbers", metadata,
    Column("tenant_id", PG_UUID(as_uuid=True), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last", Integer, nullable=False),
)

LINE_LABELS = {"initial_assessment": "Initial assessment (60 min)",
               "treatment_session": "Treatment session (60 min)",
               "reassessment": "Reassessment (60 min)"}
FEE_LABELS = {"no_show": "No-show fee", "late_cancellation": "Late-cancellation fee"}


def price_list_stream(location_id: UUID) -> StreamName:
    return StreamName("price-list", location_id)


def invoice_stream(invoice_id: UUID) -> StreamName:
    return StreamName("invoice", invoice_id)


def pack_stream(pack_id: UUID) -> StreamName:
    return StreamName("pack", pack_id)


def charge_stream(appointment_id: UUID) -> StreamName:
    return StreamName("charge", appointment_id)


def invoice_id_for(appointment_id: UUID) -> UUID:
    """An appointment has at most one invoice, whichever delivery of its event charges it."""
    return uuid.uuid5(appointment_id, "invoice")


def context(tenant_id: UUID, command_id: UUID, **ids: UUID | None) -> EventContext:
    return EventContext(tenant_id=tenant_id, correlation_id=command_id,
                        causation_id=command_id, **ids)


async def run(conn: AsyncConnection, store: EventStore, stream: StreamName,
              aggregate: Aggregate, command: Any, ctx: EventContext) -> list[RecordedEvent]:
    return await handle(conn, store, stream, aggregate, command, tenant_id=ctx.tenant_id,
                        context=ctx)


async def state_of(conn: AsyncConnection, store: EventStore, stream: StreamName,
                   aggregate: Aggregate, tenant_id: UUID) -> Any:
    state, _ = await load(conn, store, stream, aggregate, tenant_id=tenant_id)
    return state


async def location_zone(conn: AsyncConnection, location_id: UUID) -> ZoneInfo:
    """The location's timezone, as booking registered it; UTC until billing knows it."""
    zone = await conn.scalar(select(locations.c.timezone)
                             .where(locations.c.location_id == location_id))
    return ZoneInfo(zone or "UTC")


async def local_date(conn: AsyncConnection, location_id: UUID, instant: datetime) -> date:
    """The day at the location."""
    return instant.astimezone(await location_zone(conn, location_id)).date()


async def tariff_on(conn: AsyncConnection, store: EventStore, tenant_id: UUID,
                    location_id: UUID, day: date) -> Tariff | None:
    prices = await state_of(conn, store, price_list_stream(location_id), price_list, tenant_id)
    return prices.in_force(day)  # type: ignore[no-any-return]


async def next_number(conn: AsyncConnection, tenant_id: UUID, year: int) -> str:
    """The organization's next invoice number for the year, without gaps: the row lock is
    held until the invoice commits, and a rolled-back invoice rolls its number back."""
    statement = insert(invoice_numbers).values(tenant_id=tenant_id, year=year, last=1)
    last = await conn.scalar(statement.on_conflict_do_update(
        index_elements=["tenant_id", "year"], set_={"last": invoice_numbers.c.last + 1}
    ).returning(invoice_numbers.c.last))
    return f"{year}-{last:06d}"


async def issue_invoice(conn: AsyncConnection, store: EventStore, ctx: EventContext, *,
                        invoice_id: UUID, kind: public.ChargeKind, patient_id: UUID,
                        location_id: UUID, lines: list[invoice.InvoiceLine], currency: str,
                        terms_days: int, now: datetime, therapist_id: UUID | None = None,
                        appointment_id: UUID | None = None, episode_id: UUID | None = None,
                        pack_id: UUID | None = None) -> None:
    zone = await location_zone(conn, location_id)
    # The number's year is the clinic's year of issue, as its date is: an evening session
    # in New York on 31 December is numbered in that year, not the next UTC one.
    year = now.astimezone(zone).year
    issued = public.InvoiceIssued(
        invoice_id=invoice_id, patient_id=patient_id, location_id=location_id,
        currency=currency, number=await next_number(conn, ctx.tenant_id, year), kind=kind,
        appointment_id=appointment_id, episode_id=episode_id, pack_id=pack_id,
        total=sum(line.amount for line in lines), tax=sum(line.tax for line in lines),
        issued_at=now, due_on=due_dates.due_on(now, zone, terms_days))
    await run(conn, store, invoice_stream(invoice_id), invoice,
              invoice.IssueInvoice(issued=issued, therapist_id=therapist_id, lines=tuple(lines)),
              ctx)


def line_label(kind: public.ChargeKind, o: charge.Occurrence, day: date) -> str:
    if kind == "session":
        return LINE_LABELS[o.appointment_type]
    if o.outcome == "cancelled":  # booking's cancellation does not say the session's type
        return f"{FEE_LABELS[kind]}: the session of {day}"
    return f"{FEE_LABELS[kind]}: {LINE_LABELS[o.appointment_type]} of {day}"


def line(description: str, amount: int, tariff: Tariff, **extra: Any) -> invoice.InvoiceLine:
    return invoice.InvoiceLine(description=description, amount=amount,
                               tax_rate_bp=tariff.tax_rate_bp,
                               tax=contained_tax(amount, tariff.tax_rate_bp), **extra)


async def open_pack(conn: AsyncConnection, patient_id: UUID, currency: str) -> UUID | None:
    """The patient's oldest pack with a session left (any location of the organization)."""
    return await conn.scalar(  # type: ignore[no-any-return]
        select(packs.c.pack_id).where(packs.c.patient_id == patient_id,
                                      packs.c.currency == currency, packs.c.remaining > 0)
        .order_by(packs.c.purchased_at).limit(1))


async def charge_session(conn: AsyncConnection, store: EventStore, tenant_id: UUID,
                         occurrence: charge.Occurrence, now: datetime) -> charge.Charge:
    """Charge the appointment once: by the tariff in force on its date, from a pack or by an
    invoice. A completed session at a location without a price list is refused
    (``NoTariffError``) until one is set; the workflow retries."""
    stream = charge_stream(occurrence.appointment_id)
    state: charge.Charge = await state_of(conn, store, stream, charge, tenant_id)
    if state.decided:
        return state
    day = await local_date(conn, occurrence.location_id, occurrence.starts_at)
    tariff = await tariff_on(conn, store, tenant_id, occurrence.location_id, day)
    ctx = context(tenant_id, occurrence.appointment_id, location_id=occurrence.location_id,
                  episode_id=occurrence.episode_id)
    pack_id = await open_pack(conn, occurrence.patient_id, tariff.currency) \
        if tariff is not None and occurrence.outcome == "completed" else None
    recorded = await run(conn, store, stream, charge, charge.ChargeSession(
        occurrence=occurrence, tariff=tariff, service_date=day, pack_id=pack_id,
        invoice_id=invoice_id_for(occurrence.appointment_id), now=now), ctx)
    for event in recorded:
        if event.type != charge.SessionCharged.event_type:
            continue
        charged = charge.SessionCharged.model_validate(event.data)
        if charged.pack_id is not None:
            await run(conn, store, pack_stream(charged.pack_id), pack, pack.DrawSession(
                pack_id=charged.pack_id, appointment_id=occurrence.appointment_id, now=now),
                ctx)
        else:
            assert charged.invoice_id is not None and tariff is not None
            o = occurrence
            label = line_label(charged.fee.kind, o, day)
            await issue_invoice(
                conn, store, ctx, invoice_id=charged.invoice_id, kind=charged.fee.kind,
                patient_id=o.patient_id, location_id=o.location_id, therapist_id=o.therapist_id,
                appointment_id=o.appointment_id, episode_id=o.episode_id,
                lines=[line(label, charged.fee.amount, tariff,
                            appointment_type=o.appointment_type, service_date=day,
                            cpt_codes=charged.cpt_codes)],
                currency=tariff.currency, terms_days=tariff.payment_terms_days, now=now)
    return await state_of(conn, store, stream, charge, tenant_id)  # type: ignore[no-any-return]


async def reverse_charge(conn: AsyncConnection, store: EventStore, tenant_id: UUID,
                         appointment_id: UUID, reason_code: str, now: datetime) -> None:
    """Booking reversed the appointment: prevent its charge, or undo it once — the pack gets
    its session back (or, refunded meanwhile, its invoice is credited the session's share),
    the invoice is credited what it still asks (a paid one leaves the patient in credit, for
    billing staff to refund)."""
    stream = charge_stream(appointment_id)
    before: charge.Charge = await state_of(conn, store, stream, charge, tenant_id)
    ctx = context(tenant_id, appointment_id)
    if not await run(conn, store, stream, charge, charge.ReverseCharge(
            appointment_id=appointment_id, reason_code=reason_code, now=now), ctx):
        return  # reversed already
    charged = before.charged
    if charged is None:
        return
    ctx = context(tenant_id, appointment_id, location_id=charged.occurrence.location_id,
                  episode_id=charged.occurrence.episode_id)
    if charged.pack_id is not None:
        drawn_from: pack.Pack = await state_of(conn, store, pack_stream(charged.pack_id),
                                               pack, tenant_id)
        await run(conn, store, pack_stream(charged.pack_id), pack, pack.ReturnSession(
            pack_id=charged.pack_id, appointment_id=appointment_id, now=now), ctx)
        owed = pack.reversal_credit(drawn_from, appointment_id)
        if owed:
            await _credit_reversal(conn, store, ctx, drawn_from.purchased.invoice_id, owed,
                                   appointment_id, reason_code, tenant_id, now,
                                   through_pack=True)
        return
    assert charged.invoice_id is not None
    await _credit_reversal(conn, store, ctx, charged.invoice_id, None, appointment_id,
                           reason_code, tenant_id, now)


async def _credit_reversal(conn: AsyncConnection, store: EventStore, ctx: EventContext,
                           invoice_id: UUID, amount: int | None, appointment_id: UUID,
                           reason_code: str, tenant_id: UUID, now: datetime,
                           through_pack: bool = False) -> None:
    """Credit ``amount`` (all it still asks if None, never more) on the invoice, once per
    reversed appointment (``through_pack``: a closed pack's invoice, its session's share)."""
    bill: invoice.Invoice = await state_of(conn, store, invoice_stream(invoice_id), invoice,
                                           tenant_id)
    creditable = bill.total - bill.credited
    if amount is not None:
        creditable = min(creditable, amount)
    if creditable > 0:
        await run(conn, store, invoice_stream(bill.invoice_id), invoice,
                  invoice.IssueCreditNote(
                      invoice_id=bill.invoice_id, now=now,
                      credit_note_id=uuid.uuid5(appointment_id, "reversal"),
                      amount={"amount": creditable, "currency": bill.currency},
                      reason_code="appointment_reversed",
                      reason=f"booking reversed the appointment ({reason_code})",
                      by="booking", through_pack=through_pack), ctx)


async def buy_pack(conn: AsyncConnection, store: EventStore, tenant_id: UUID, *,
                   pack_id: UUID, patient_id: UUID, location_id: UUID, offer_code: str,
                   by: str, now: datetime) -> pack.Pack:
    """Sell one of the location's packs at today's tariff: the pack is usable at once and
    its price is invoiced like any other charge."""
    existing = await state_of(conn, store, pack_stream(pack_id), pack, tenant_id)
    if existing is not None:  # the same request again, or another under its key (refused)
        pack.ensure_same_sale(existing, patient_id, location_id, offer_code)
        return existing  # type: ignore[no-any-return]
    day = await local_date(conn, location_id, now)
    tariff = await tariff_on(conn, store, tenant_id, location_id, day)
    offer = tariff.offer(offer_code) if tariff else None
    if tariff is None or offer is None:
        raise price_list.NoTariffError(
            f"location {location_id} offers no pack {offer_code!r} on {day}",
            offer=offer_code)
    invoice_id = uuid.uuid5(pack_id, "invoice")
    ctx = context(tenant_id, pack_id, location_id=location_id)
    await issue_invoice(conn, store, ctx, invoice_id=invoice_id, kind="pack",
                        patient_id=patient_id, location_id=location_id, pack_id=pack_id,
                        lines=[line(f"Session pack: {offer.label}", offer.price, tariff)],
                        currency=tariff.currency, terms_days=tariff.payment_terms_days, now=now)
    await run(conn, store, pack_stream(pack_id), pack, pack.BuyPack(
        purchased=public.PackPurchased(
            pack_id=pack_id, patient_id=patient_id, location_id=location_id, offer=offer.code,
            sessions=offer.sessions, price=offer.price, currency=tariff.currency,
            invoice_id=invoice_id, purchased_at=now), by=by), ctx)
    return await state_of(conn, store, pack_stream(pack_id), pack, tenant_id)  # type: ignore[no-any-return]


async def refund_pack(conn: AsyncConnection, store: EventStore, tenant_id: UUID,
                      pack_id: UUID, by: str, now: datetime) -> pack.Pack:
    """Close the pack and pay back its unused sessions by the location's policy: their worth
    is credited on the pack's invoice, and what of it was already paid is refunded
    (invoice.settle_unused)."""
    bought: pack.Pack | None = await state_of(conn, store, pack_stream(pack_id), pack,
                                               tenant_id)
    if bought is None:
        raise pack.PackNotFoundError(f"pack {pack_id} does not exist", pack_id=str(pack_id))
    p = bought.purchased
    day = await local_date(conn, p.location_id, now)
    tariff = await tariff_on(conn, store, tenant_id, p.location_id, day)
    policy = tariff.pack_refund if tariff else "pro_rata"
    ctx = context(tenant_id, pack_id, location_id=p.location_id)
    recorded = await run(conn, store, pack_stream(pack_id), pack,
                         pack.RefundPack(pack_id=pack_id, policy=policy, now=now), ctx)
    stream = invoice_stream(p.invoice_id)
    for event in recorded:
        bill: invoice.Invoice = await state_of(conn, store, stream, invoice, tenant_id)
        to_credit, to_refund = invoice.settle_unused(bill, event.data["amount"])
        reason = f"{event.data['unused']} unused pack sessions"
        money = {"currency": p.currency}
        if to_credit > 0:
            await run(conn, store, stream, invoice, invoice.IssueCreditNote(
                invoice_id=p.invoice_id, credit_note_id=uuid.uuid5(pack_id, "credit"),
                amount={**money, "amount": to_credit}, reason_code="other", reason=reason,
                by=by, now=now, through_pack=True), ctx)
        if to_refund > 0:
            await run(conn, store, stream, invoice, invoice.IssueRefund(
                invoice_id=p.invoice_id, refund_id=uuid.uuid5(pack_id, "refund"),
                amount={**money, "amount": to_refund}, reason=reason, by=by, now=now,
                through_pack=True), ctx)
    return await state_of(conn, store, pack_stream(pack_id), pack, tenant_id)  # type: ignore[no-any-return]
