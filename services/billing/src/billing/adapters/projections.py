"""Billing's read models kept inline with its events (same transaction): invoices by
location and status, the patient ledger, packs with the sessions they have left, and the
charge of every appointment. Every row follows from the events alone, so a rebuild gives the
same rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.domain import charge as ch
from billing.domain import invoice as inv
from billing.domain import ledger
from billing.domain import pack as pk
from kinetic_contracts.billing.v1 import events as public
from kinetic_infra.event_store.model import RecordedEvent
from kinetic_infra.projections import Projection

metadata = MetaData()

invoices = Table(
    "invoices", metadata,
    Column("invoice_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("number", Text, nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("therapist_id", UUID(as_uuid=True)),
    Column("appointment_id", UUID(as_uuid=True)),
    Column("episode_id", UUID(as_uuid=True)),
    Column("pack_id", UUID(as_uuid=True)),
    Column("kind", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("tax", BigInteger, nullable=False),
    Column("paid", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False),
    Column("credited", BigInteger, nullable=False),
    Column("outstanding", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("overdue", Boolean, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

ledger_entries = Table(
    "ledger_entries", metadata,
    Column("entry_id", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("therapist_id", UUID(as_uuid=True)),
    Column("invoice_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("method", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)

packs = Table(
    "packs", metadata,
    Column("pack_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("offer", Text, nullable=False),
    Column("sessions", Integer, nullable=False),
    Column("remaining", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("invoice_id", UUID(as_uuid=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("purchased_at", DateTime(timezone=True), nullable=False),
)

charges = Table(
    "charges", metadata,
    Column("appointment_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("therapist_id", UUID(as_uuid=True), nullable=False),
    Column("episode_id", UUID(as_uuid=True)),
    Column("appointment_type", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("kind", Text),
    Column("amount", BigInteger),
    Column("currency", Text),
    Column("service_date", Date),
    Column("cpt_codes", ARRAY(Text), nullable=False),
    Column("paid_by", Text),
    Column("invoice_id", UUID(as_uuid=True)),
    Column("pack_id", UUID(as_uuid=True)),
    Column("status", Text, nullable=False),
    Column("reason", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

billing = Projection("billing", [invoices, ledger_entries, packs, charges])


async def _invoice_row(conn: AsyncConnection, event: RecordedEvent, invoice_id: Any,
                       **values: Any) -> None:
    """Refresh the invoice's sums and status from the aggregate's own arithmetic."""
    row = (await conn.execute(invoices.select().where(invoices.c.invoice_id == invoice_id))
           ).mappings().one()
    paid = row["paid"] + values.pop("paid", 0)
    refunded = row["refunded"] + values.pop("refunded", 0)
    credited = row["credited"] + values.pop("credited", 0)
    overdue = values.pop("overdue", row["overdue"])
    sums = (row["total"], paid, refunded, credited)
    await conn.execute(invoices.update().where(invoices.c.invoice_id == invoice_id).values(
        paid=paid, refunded=refunded, credited=credited, overdue=overdue,
        outstanding=inv.outstanding(*sums), status=inv.status(*sums, overdue),
        updated_at=event.recorded_at, **values))


async def _ledger(conn: AsyncConnection, event: RecordedEvent, data: Any,
                  method: str | None = None) -> None:
    row = (await conn.execute(invoices.select().where(
        invoices.c.invoice_id == data.invoice_id))).mappings().one()
    for entry in ledger.entries_of(event_model(event)):
        await conn.execute(insert(ledger_entries).values(
            entry_id=f"{event.event_id}{entry.suffix}", tenant_id=event.tenant_id,
            patient_id=row["patient_id"], location_id=row["location_id"],
            therapist_id=row["therapist_id"], invoice_id=row["invoice_id"], kind=entry.kind,
            amount=entry.amount, currency=row["currency"], method=method,
            at=event.recorded_at).on_conflict_do_nothing())


def event_model(event: RecordedEvent) -> Any:
    return inv.EVENT_TYPES[event.type].model_validate(event.data)


@billing.on(inv.InvoiceOpened.event_type)
async def _issued(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = inv.InvoiceOpened.model_validate(event.data)
    i = e.issued
    await conn.execute(insert(invoices).values(
        invoice_id=i.invoice_id, tenant_id=event.tenant_id, number=i.number,
        patient_id=i.patient_id, location_id=i.location_id, therapist_id=e.therapist_id,
        appointment_id=i.appointment_id, episode_id=i.episode_id, pack_id=i.pack_id,
        kind=i.kind, currency=i.currency, total=i.total, tax=i.tax, paid=0, refunded=0,
        credited=0, outstanding=i.total, status=inv.status(i.total, 0, 0, 0, False), overdue=False,
        issued_at=i.issued_at, due_on=i.due_on, updated_at=event.recorded_at,
    ).on_conflict_do_nothing())
    await _ledger(conn, event, i)


@billing.on(inv.PaymentTaken.event_type)
async def _paid(conn: AsyncConnection, event: RecordedEvent) -> None:
    p = inv.PaymentTaken.model_validate(event.data).payment
    await _invoice_row(conn, event, p.invoice_id, paid=p.amount)
    await _ledger(conn, event, p, method=p.method)


@billing.on(inv.RefundPaid.event_type)
async def _refunded(conn: AsyncConnection, event: RecordedEvent) -> None:
    r = inv.RefundPaid.model_validate(event.data).refund
    await _invoice_row(conn, event, r.invoice_id, refunded=r.amount, credited=r.credited)
    await _ledger(conn, event, r)


@billing.on(inv.CreditNoted.event_type)
async def _credited(conn: AsyncConnection, event: RecordedEvent) -> None:
    c = inv.CreditNoted.model_validate(event.data).credit
    await _invoice_row(conn, event, c.invoice_id, credited=c.amount)
    await _ledger(conn, event, c)


@billing.on(public.InvoiceOverdue.event_type)
async def _overdue(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _invoice_row(conn, event, event.data["invoice_id"], overdue=True)


@billing.on(pk.PackBought.event_type)
async def _pack_bought(conn: AsyncConnection, event: RecordedEvent) -> None:
    p = pk.PackBought.model_validate(event.data).purchased
    await conn.execute(insert(packs).values(
        pack_id=p.pack_id, tenant_id=event.tenant_id, patient_id=p.patient_id,
        location_id=p.location_id, offer=p.offer, sessions=p.sessions, remaining=p.sessions,
        price=p.price, currency=p.currency, invoice_id=p.invoice_id, status="active",
        purchased_at=p.purchased_at).on_conflict_do_nothing())


async def _pack_remaining(conn: AsyncConnection, event: RecordedEvent) -> None:
    remaining = event.data["remaining"]
    await conn.execute(packs.update().where(packs.c.pack_id == event.data["pack_id"]).values(
        remaining=remaining, status="active" if remaining else "used_up"))


billing.on(public.PackSessionUsed.event_type)(_pack_remaining)
billing.on(public.PackSessionReturned.event_type)(_pack_remaining)


@billing.on(public.PackRefunded.event_type)
async def _pack_refunded(conn: AsyncConnection, event: RecordedEvent) -> None:
    await conn.execute(packs.update().where(packs.c.pack_id == event.data["pack_id"])
                       .values(remaining=0, status="refunded"))


def _occurrence_row(o: ch.Occurrence, event: RecordedEvent) -> dict[str, Any]:
    return dict(appointment_id=o.appointment_id, tenant_id=event.tenant_id,
                patient_id=o.patient_id, location_id=o.location_id,
                therapist_id=o.therapist_id, episode_id=o.episode_id,
                appointment_type=o.appointment_type, outcome=o.outcome,
                updated_at=event.recorded_at)


@billing.on(ch.SessionCharged.event_type)
async def _charged(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = ch.SessionCharged.model_validate(event.data)
    await conn.execute(insert(charges).values(
        **_occurrence_row(e.occurrence, event), kind=e.fee.kind, amount=e.fee.amount,
        currency=e.currency, service_date=e.service_date, cpt_codes=e.cpt_codes,
        paid_by=e.paid_by, invoice_id=e.invoice_id, pack_id=e.pack_id, status="charged",
    ).on_conflict_do_nothing())


@billing.on(ch.NothingCharged.event_type)
async def _nothing(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = ch.NothingCharged.model_validate(event.data)
    await conn.execute(insert(charges).values(
        **_occurrence_row(e.occurrence, event), cpt_codes=[], status="nothing",
        reason=e.reason).on_conflict_do_nothing())


@billing.on(ch.ChargeReversed.event_type)
async def _reversed(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = ch.ChargeReversed.model_validate(event.data)
    await conn.execute(charges.update().where(charges.c.appointment_id == e.appointment_id)
                       .values(status="reversed", reason=e.reason_code,
                               updated_at=event.recorded_at))
