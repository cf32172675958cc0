"""Billing's printable documents — invoice, receipt, superbill — as HTML and PDF through the
platform's printable page (fpdf2). Amounts print in the currency's own format (Babel).

A superbill is what a self-pay patient submits to their insurer for out-of-network
reimbursement themselves: the clinic, the dates of service, the CPT codes of each session,
the ICD-10 working diagnosis from the evaluation, and per session what was charged after
credits and what was actually paid (``domain.superbill``: a pack session claims its share of
the pack's invoice, a waived one 0), with totals that are the sums of those lines. Every
document names the patient with their date of birth (billing's directory keeps them from
booking); one whose details have not reached billing yet names the patient by reference.

Dates print on the clinic's own calendar (the location's timezone, as its due dates are
reckoned): a Sydney session at 09:00 is invoiced at 22:00 UTC the day before, and an invoice
dated before its service, or a receipt dated the day before the payment, is wrong where the
patient reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.adapters.directory import diagnoses, locations, patients, therapists
from billing.adapters.projections import charges, invoices
from billing.application import billing
from billing.domain import pack
from billing.domain import superbill as bill
from billing.domain.money import Money
from kinetic_infra.event_store.model import RecordedEvent
from kinetic_infra.event_store.store import EventStore
from kinetic_infra.http.printable import Sections, printable_html, printable_pdf

HISTORY_KINDS = {
    "kinetic.billing.payment.recorded.v1": ("payment", "payment"),
    "kinetic.billing.refund.issued.v1": ("refund", "refund"),
    "kinetic.billing.invoice.credited.v1": ("credit note", "credit"),
}


@dataclass(frozen=True)
class Page:
    title: str
    lead: str
    sections: Sections


def local(at: datetime | str, zone: ZoneInfo) -> datetime:
    """An instant (as stored, or as the API's ISO text) where the clinic is."""
    instant = datetime.fromisoformat(at) if isinstance(at, str) else at
    if instant.tzinfo is None:  # the database hands back UTC
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(zone)


@dataclass(frozen=True)
class Place:
    location: str
    therapist: str | None
    patient: str  # "Ada Canarysson, born 1996-04-02", or "patient <id>" until known
    zone: ZoneInfo = field(default=ZoneInfo("UTC"))  # UTC until billing knows the location

    def day(self, at: datetime | str) -> str:
        """The clinic's date of an instant, as documents and pages print it."""
        return local(at, self.zone).date().isoformat()

    def moment(self, at: datetime | str) -> str:
        """The clinic's date and time of an instant, to the minute."""
        return local(at, self.zone).strftime("%Y-%m-%d %H:%M")


def html(page: Page) -> str:
    return printable_html(page.title, page.lead, page.sections)


def pdf(page: Page) -> bytes:
    return printable_pdf(page.title, page.lead, page.sections)


def money(amount: int, currency: str) -> str:
    return Money(amount=amount, currency=currency).display()


def history_item(event: RecordedEvent) -> dict[str, Any]:
    """One change to an invoice as its page lists it (from billing's own stored events)."""
    data = event.data
    if event.type in HISTORY_KINDS:
        label, key = HISTORY_KINDS[event.type]
        inner = data[key]
        ident = inner.get("payment_id") or inner.get("refund_id") or inner["credit_note_id"]
        return {"kind": label.replace("credit note", "credit_note"), "id": ident,
                "amount": inner["amount"], "at": event.recorded_at.isoformat(),
                "method": inner.get("method"), "reference": data.get("reference"),
                "reason": data.get("reason"), "by": data.get("by")}
    kind = "reminder" if "reminder" in event.type else "overdue"
    return {"kind": kind, "id": str(event.event_id), "amount": data.get("outstanding"),
            "at": event.recorded_at.isoformat(), "method": None, "reference": None,
            "reason": None, "by": None}


async def place(conn: AsyncConnection, location_id: UUID, therapist_id: UUID | None,
                patient_id: UUID) -> Place:
    known = (await conn.execute(select(locations.c.name, locations.c.timezone)
                                .where(locations.c.location_id == location_id))).one_or_none()
    name, zone = known if known else (None, None)
    therapist = None if therapist_id is None else await conn.scalar(
        select(therapists.c.display_name).where(therapists.c.therapist_id == therapist_id))
    who = (await conn.execute(select(patients).where(patients.c.patient_id == patient_id))
           ).mappings().one_or_none()
    patient = (f"{who['given_name']} {who['family_name']}, born {who['date_of_birth']}"
               if who else f"patient {patient_id}")
    return Place(location=name or str(location_id), therapist=therapist, patient=patient,
                 zone=ZoneInfo(zone or "UTC"))


def _lines(detail: dict[str, Any]) -> list[str]:
    c = detail["currency"]
    out = []
    for line in detail["lines"]:
        line = line if isinstance(line, dict) else line.model_dump(mode="json")
        when = f"{line['service_date']}: " if line.get("service_date") else ""
        codes = f" (CPT {', '.join(line['cpt_codes'])})" if line.get("cpt_codes") else ""
        tax = f", of which tax {money(line['tax'], c)} at {line['tax_rate_bp'] / 100:.2f} %" \
            if line["tax_rate_bp"] else ""
        out.append(f"{when}{line['description']}{codes}: {money(line['amount'], c)}{tax}")
    return out


def invoice_page(detail: dict[str, Any], where: Place) -> Page:
    c = detail["currency"]
    sums = [f"Total: {money(detail['total'], c)} (tax included: {money(detail['tax'], c)})",
            f"Paid: {money(detail['paid'] - detail['refunded'], c)}",
            f"Credited: {money(detail['credited'], c)}",
            f"Still to pay: {money(max(detail['outstanding'], 0), c)}"]
    if detail["outstanding"] < 0:
        sums.append(f"In credit: {money(-detail['outstanding'], c)}")
    history = [f"{where.day(h['at'])} {h['kind'].replace('_', ' ')}: {money(h['amount'], c)}"
               + (f" by {h['method']}" if h.get("method") else "")
               + (f" ({h['reason']})" if h.get("reason") else "")
               for h in detail["history"] if h["kind"] in ("payment", "refund", "credit_note")]
    return Page(
        title=f"Invoice {detail['number']}",
        lead=f"{where.location} · issued {where.day(detail['issued_at'])} · due "
             f"{detail['due_on']} · for {where.patient}",
        sections=[("Charges", _lines(detail)), ("Amounts", sums),
                  *([("Payments and credits", history)] if history else []),
                  ("Self-pay", ["A flat fee per one-hour session; no insurance visit caps."])])


def receipt(detail: dict[str, Any], payment: dict[str, Any], where: Place) -> Page:
    c = detail["currency"]
    return Page(
        title=f"Receipt for invoice {detail['number']}",
        lead=f"Received {money(payment['amount'], c)} by {payment['method']} on "
             f"{where.day(payment['at'])} at {where.location}. Thank you.",
        # Who paid for what: the patient heads the sections, the lead stays the thanks.
        sections=[("From", [where.patient]), ("For", _lines(detail)),
                  ("Invoice", [f"Total {money(detail['total'], c)}",
                               f"Still to pay {money(max(detail['outstanding'], 0), c)}"]),
                  ("Payment", [f"Reference: {payment['id']}"]
                   + ([f"Your reference: {payment['reference']}"]
                      if payment.get("reference") else []))])


async def superbill_facts(conn: AsyncConnection, store: EventStore, tenant_id: UUID,
                         rows: list[dict[str, Any]]) -> list[bill.Session]:
    """Each charged session with what pays for it: its invoice as it stands now (credits,
    payments, refunds), or its pack — the pack's invoice and how many sessions it covers."""
    pack_ids = list({r["pack_id"] for r in rows if r["paid_by"] == "pack"})
    drawn_from: dict[UUID, pack.Pack] = {
        pid: await billing.state_of(conn, store, billing.pack_stream(pid), pack, tenant_id)
        for pid in pack_ids}
    reversed_ = set(await conn.scalars(select(charges.c.appointment_id).where(
        charges.c.pack_id.in_(pack_ids), charges.c.status == "reversed")))
    invoice_ids = [r["invoice_id"] for r in rows if r["paid_by"] != "pack"] + [
        p.purchased.invoice_id for p in drawn_from.values()]
    sums = {r["invoice_id"]: bill.InvoiceSums(total=r["total"], paid=r["paid"],
                                              refunded=r["refunded"], credited=r["credited"])
            for r in (await conn.execute(
                select(invoices.c.invoice_id, invoices.c.total, invoices.c.paid,
                       invoices.c.refunded, invoices.c.credited)
                .where(invoices.c.invoice_id.in_(invoice_ids)))).mappings()}
    sessions = []
    for r in rows:
        cover = None
        if r["paid_by"] == "pack":
            drawn = drawn_from[r["pack_id"]]
            cover = bill.PackCover(sessions=drawn.purchased.sessions,
                                   price=drawn.purchased.price,
                                   covered=drawn.sessions_paid_for(reversed_),
                                   invoice=sums[drawn.purchased.invoice_id])
        sessions.append(bill.Session(
            service_date=r["service_date"], appointment_type=r["appointment_type"],
            cpt_codes=list(r["cpt_codes"]), currency=r["currency"],
            invoice=None if cover else sums[r["invoice_id"]], pack=cover))
    return sessions


def superbill_line(line: bill.Line, pack_sessions: int | None) -> str:
    c = line.currency
    what = (f"{line.service_date}: {line.appointment_type.replace('_', ' ')}, "
            f"CPT {', '.join(line.cpt_codes)}")
    if line.waived:
        return f"{what}, waived (credited in full): charged {money(0, c)}, paid {money(0, c)}"
    source = f" (its share of a {pack_sessions}-session pack)" if pack_sessions else ""
    return f"{what}, charged {money(line.charged, c)}{source}, paid {money(line.paid, c)}"


async def superbill(conn: AsyncConnection, store: EventStore, tenant_id: UUID,
                    episode_id: UUID, rows: list[dict[str, Any]]) -> Page:
    first = rows[0]
    icd10 = await conn.scalar(select(diagnoses.c.icd10)
                              .where(diagnoses.c.episode_id == episode_id))
    where = await place(conn, first["location_id"], first["therapist_id"], first["patient_id"])
    sessions = await superbill_facts(conn, store, tenant_id, rows)
    claimed = bill.superbill(sessions)
    services = [superbill_line(line, s.pack.sessions if s.pack else None)
                for line, s in zip(claimed.lines, sessions, strict=True)]
    return Page(
        title="Superbill",
        lead=f"{where.location} · episode {episode_id}. "
             "Submit to your insurer for out-of-network reimbursement.",
        sections=[("Patient", [where.patient]),
                  ("Diagnosis (ICD-10)", [icd10 or "not recorded"]),
                  ("Services", services),
                  ("Total charged", [money(v, c) for c, v in claimed.charged.items()]),
                  ("Total paid", [money(v, c) for c, v in claimed.paid.items()]),
                  ("Provider", [where.location]
                   + ([f"Therapist: {where.therapist}"] if where.therapist else []))])
