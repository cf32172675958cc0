"""Billing's public events, version 1: what partners (accounting, payments, analytics) learn
about a patient's self-pay charges. Amounts are integers in the currency's minor units
(cents), never floats; ``currency`` is ISO 4217. Free-text reasons and who at the clinic did
it stay in billing's own events. Billing never counts visits against an allowance."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from kinetic_contracts.envelope import EventData

Minor = int
ChargeKind = Literal["session", "no_show", "late_cancellation", "pack"]
PaymentMethod = Literal["cash", "card", "transfer", "provider"]


class _Invoice(EventData):
    aggregate_id_field: ClassVar[str] = "invoice_id"

    invoice_id: UUID
    patient_id: UUID
    location_id: UUID
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])


class InvoiceIssued(_Invoice):
    """A flat-fee session, a no-show or late-cancellation fee, or a session pack was
    invoiced."""

    event_type: ClassVar[str] = "kinetic.billing.invoice.issued.v1"

    number: str = Field(examples=["2026-000042"], description="The organization's sequence")
    kind: ChargeKind
    appointment_id: UUID | None = Field(default=None, description="The charged session")
    episode_id: UUID | None = None
    pack_id: UUID | None = Field(default=None, description="The pack sold")
    total: Minor = Field(ge=0, description="What the patient pays, tax included")
    tax: Minor = Field(ge=0, description="The tax contained in the total")
    issued_at: datetime
    due_on: date


class PaymentRecorded(_Invoice):
    event_type: ClassVar[str] = "kinetic.billing.payment.recorded.v1"

    payment_id: UUID
    appointment_id: UUID | None = None
    amount: Minor = Field(gt=0)
    method: PaymentMethod
    outstanding: Minor = Field(description="Left to pay on the invoice after this payment "
                                           "(negative: the patient is in credit)")
    recorded_at: datetime


class RefundIssued(_Invoice):
    """Money paid back to the patient (never more than was paid on the invoice)."""

    event_type: ClassVar[str] = "kinetic.billing.refund.issued.v1"

    refund_id: UUID
    amount: Minor = Field(gt=0)
    credited: Minor = Field(ge=0, description="The part that also reduced what the invoice "
                                              "asks (the rest repaid a credit)")
    outstanding: Minor
    issued_at: datetime


class InvoiceCredited(_Invoice):
    """A credit note reduced what the invoice asks: the session was reversed, or billing
    staff credited it with a reason."""

    event_type: ClassVar[str] = "kinetic.billing.invoice.credited.v1"

    credit_note_id: UUID
    amount: Minor = Field(gt=0)
    reason_code: Literal["appointment_reversed", "goodwill", "billing_error", "other"]
    appointment_id: UUID | None = None
    outstanding: Minor
    credited_at: datetime


class InvoiceReminderDue(_Invoice):
    """Time to remind the patient of an unpaid invoice. Kinetic sends nothing itself: a
    partner's messaging system subscribes and sends."""

    event_type: ClassVar[str] = "kinetic.billing.invoice.reminder_due.v1"

    reminder: int = Field(ge=1, description="1 for the first reminder, 2 for the second …")
    outstanding: Minor = Field(gt=0)
    due_on: date
    at: datetime


class InvoiceOverdue(_Invoice):
    event_type: ClassVar[str] = "kinetic.billing.invoice.overdue.v1"

    outstanding: Minor = Field(gt=0)
    due_on: date
    at: datetime


class _Pack(EventData):
    aggregate_id_field: ClassVar[str] = "pack_id"

    pack_id: UUID
    patient_id: UUID


class PackPurchased(_Pack):
    """A prepaid pack of sessions: a way to pay, never a cap on care."""

    event_type: ClassVar[str] = "kinetic.billing.pack.purchased.v1"

    location_id: UUID
    offer: str = Field(examples=["six"])
    sessions: int = Field(ge=1)
    price: Minor = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])
    invoice_id: UUID
    purchased_at: datetime


class PackSessionUsed(_Pack):
    event_type: ClassVar[str] = "kinetic.billing.pack.session_used.v1"

    appointment_id: UUID
    remaining: int = Field(ge=0)
    used_at: datetime


class PackSessionReturned(_Pack):
    """The session drawn from the pack was reversed: the pack has it again."""

    event_type: ClassVar[str] = "kinetic.billing.pack.session_returned.v1"

    appointment_id: UUID
    remaining: int = Field(ge=1)
    returned_at: datetime


class PackRefunded(_Pack):
    """The pack's unused sessions were refunded (pro rata by the location's policy); the
    pack is closed."""

    event_type: ClassVar[str] = "kinetic.billing.pack.refunded.v1"

    unused: int = Field(ge=0)
    amount: Minor = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])
    refunded_at: datetime


EVENTS: list[type[EventData]] = [
    InvoiceIssued, PaymentRecorded, RefundIssued, InvoiceCredited, InvoiceReminderDue,
    InvoiceOverdue, PackPurchased, PackSessionUsed, PackSessionReturned, PackRefunded,
]
