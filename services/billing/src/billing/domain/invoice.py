"""Invoice: what a patient owes for a session, a fee or a pack, and what happened to it.

What the invoice still asks is derived, never stored:
``outstanding = total − credited − (paid − refunded)``; below zero the patient is in credit.

- A payment taken at the desk (cash, card, transfer) is at most what is outstanding. One the
  payment provider reports was captured already (the patient paid online as well as at the
  desk): it is a fact, not a request, so it is always recorded, and what it pays beyond what
  the invoice asks leaves the patient in credit on the invoice, for billing staff to refund.
- A refund is at most what was paid and not yet refunded. It first repays what the patient
  holds in credit on the invoice (after a credit note); the rest also credits the invoice by
  the same amount, so a refund never leaves the patient owing what was refunded.
- A credit note is at most what the invoice still asks of its total.
- A pack's invoice pays for sessions the pack still holds: taking its price back (a credit
  note, or a refund of more than the patient holds in credit on it) would leave them usable,
  so that goes through the pack (``POST /packs/{id}/refund``), which closes it first. Only
  the pack's own settlement (its close, a reversed session's share) changes the price.

Every change names its own id (payment, refund, credit note), so a repeat is no change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from billing.domain.money import Money, ensure_currency
from kinetic_contracts.billing.v1 import events as public
from kinetic_contracts.booking.v1.events import AppointmentType
from kinetic_contracts.problems import (
    IdempotencyKeyReusedError,
    NotFoundError,
    RuleViolationError,
)
from kinetic_infra.event_store.model import StoredEvent

CreditReason = Literal["appointment_reversed", "goodwill", "billing_error", "other"]


class InvoiceNotFoundError(NotFoundError):
    type_slug = "invoice-not-found"
    title = "No such invoice"


class OverpaymentError(RuleViolationError):
    type_slug = "overpayment"
    title = "The payment is more than the invoice asks"


class RefundExceedsPaidError(RuleViolationError):
    type_slug = "refund-exceeds-paid"
    title = "A refund cannot be more than was paid"


class CreditExceedsInvoiceError(RuleViolationError):
    type_slug = "credit-exceeds-invoice"
    title = "A credit note cannot be more than the invoice still asks"


class RefundThroughPackError(RuleViolationError):
    type_slug = "refund-through-pack"
    title = "A pack's invoice is refunded or credited by closing the pack"


class NotPositiveError(RuleViolationError):
    type_slug = "amount-not-positive"
    title = "The amount must be more than zero"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InvoiceLine(_Frozen):
    description: str = Field(min_length=1, max_length=200)
    appointment_type: AppointmentType | None = None
    service_date: date | None = None
    cpt_codes: list[str] = Field(default_factory=list)
    amount: int = Field(ge=0, description="Minor units, tax included")
    tax_rate_bp: int = Field(ge=0)
    tax: int = Field(ge=0, description="The tax contained in the amount")


class InvoiceOpened(StoredEvent):
    event_type: ClassVar[str] = "kinetic.billing.invoice.issued.v1"

    issued: public.InvoiceIssued
    therapist_id: UUID | None
    lines: list[InvoiceLine]

    def to_public(self) -> public.InvoiceIssued:
        return self.issued


class PaymentTaken(StoredEvent):
    event_type: ClassVar[str] = "kinetic.billing.payment.recorded.v1"

    payment: public.PaymentRecorded
    reference: str
    by: str

    def to_public(self) -> public.PaymentRecorded:
        return self.payment


class RefundPaid(StoredEvent):
    event_type: ClassVar[str] = "kinetic.billing.refund.issued.v1"

    refund: public.RefundIssued
    reason: str
    by: str

    def to_public(self) -> public.RefundIssued:
        return self.refund


class CreditNoted(StoredEvent):
    event_type: ClassVar[str] = "kinetic.billing.invoice.credited.v1"

    credit: public.InvoiceCredited
    reason: str
    by: str

    def to_public(self) -> public.InvoiceCredited:
        return self.credit


InvoiceEvent = InvoiceOpened | PaymentTaken | RefundPaid | CreditNoted | \
    public.InvoiceReminderDue | public.InvoiceOverdue

EVENT_TYPES: dict[str, type[BaseModel]] = {e.event_type: e for e in (
    InvoiceOpened, PaymentTaken, RefundPaid, CreditNoted, public.InvoiceReminderDue,
    public.InvoiceOverdue)}


class Invoice(_Frozen):
    issued: public.InvoiceIssued
    therapist_id: UUID | None
    lines: tuple[InvoiceLine, ...]
    paid: int = 0
    refunded: int = 0
    credited: int = 0
    # Payment, refund and credit-note ids seen, with what each was: an id (the caller's
    # Idempotency-Key) sent again must be the same request.
    changes: Mapping[UUID, tuple[str, int]] = Field(default_factory=dict)
    reminders: int = 0
    overdue: bool = False

    @property
    def invoice_id(self) -> UUID:
        return self.issued.invoice_id

    @property
    def currency(self) -> str:
        return self.issued.currency

    @property
    def total(self) -> int:
        return self.issued.total

    @property
    def outstanding(self) -> int:
        return outstanding(self.total, self.paid, self.refunded, self.credited)

    @property
    def status(self) -> str:
        return status(self.total, self.paid, self.refunded, self.credited, self.overdue)


def outstanding(total: int, paid: int, refunded: int, credited: int) -> int:
    return total - credited - (paid - refunded)


def status(total: int, paid: int, refunded: int, credited: int, overdue: bool) -> str:
    net_paid = paid - refunded
    if credited >= total and net_paid <= 0:
        return "void"
    if outstanding(total, paid, refunded, credited) <= 0:
        return "paid"
    if overdue:
        return "overdue"
    return "partially_paid" if net_paid > 0 else "open"


def settle_unused(state: Invoice, worth: int) -> tuple[int, int]:
    """What closing a pack does to its invoice, its unused sessions being ``worth`` that much
    back: (credit, refund). The invoice is credited their worth (as far as it still asks
    anything of its total), and what of that credit the patient had already paid is refunded.

    Credit first, then refund only what that credit put in credit: a refund alone would first
    repay what the patient already held in credit on the invoice (paid twice, a goodwill
    credit note) and credit only the rest, so the unused sessions' worth would be lost. What
    the patient held in credit before stays there, for billing staff to refund as ever."""
    credit = max(0, min(worth, state.total - state.credited))
    refund = max(0, min(credit, state.paid - state.refunded, credit - state.outstanding))
    return credit, refund


InvoiceState = Invoice | None
INITIAL: InvoiceState = None


def evolve(state: InvoiceState, event: InvoiceEvent) -> InvoiceState:
    if isinstance(event, InvoiceOpened):
        return Invoice(issued=event.issued, therapist_id=event.therapist_id,
                       lines=tuple(event.lines))
    assert state is not None, "an invoice's first event opens it"
    if isinstance(event, PaymentTaken):
        p = event.payment
        return state.model_copy(update={"paid": state.paid + p.amount, "changes": {
            **state.changes, p.payment_id: ("payment", p.amount)}})
    if isinstance(event, RefundPaid):
        r = event.refund
        return state.model_copy(update={"refunded": state.refunded + r.amount,
                                        "credited": state.credited + r.credited,
                                        "changes": {**state.changes,
                                                    r.refund_id: ("refund", r.amount)}})
    if isinstance(event, CreditNoted):
        c = event.credit
        return state.model_copy(update={"credited": state.credited + c.amount, "changes": {
            **state.changes, c.credit_note_id: ("credit_note", c.amount)}})
    if isinstance(event, public.InvoiceReminderDue):
        return state.model_copy(update={"reminders": event.reminder})
    return state.model_copy(update={"overdue": True})


class IssueInvoice(_Frozen):
    issued: public.InvoiceIssued
    therapist_id: UUID | None = None
    lines: tuple[InvoiceLine, ...]


class _Change(_Frozen):
    invoice_id: UUID
    now: datetime


class RecordPayment(_Change):
    payment_id: UUID
    amount: Money
    method: public.PaymentMethod
    reference: str = ""
    by: str


class IssueRefund(_Change):
    refund_id: UUID
    amount: Money
    reason: str
    by: str
    # Set by the pack's own settlement (its close, a reversed session's share), never by a
    # request on the invoice: only it may take back a pack's price (RefundThroughPackError).
    through_pack: bool = False


class IssueCreditNote(_Change):
    credit_note_id: UUID
    amount: Money
    reason_code: CreditReason
    reason: str
    by: str
    through_pack: bool = False  # as IssueRefund's


class RemindPayment(_Change):
    reminder: int = Field(ge=1)


class MarkOverdue(_Change):
    pass


InvoiceCommand = IssueInvoice | RecordPayment | IssueRefund | IssueCreditNote | \
    RemindPayment | MarkOverdue


def _ids(state: Invoice) -> dict[str, object]:
    i = state.issued
    return {"invoice_id": i.invoice_id, "patient_id": i.patient_id,
            "location_id": i.location_id, "currency": i.currency}


def _positive(state: Invoice, amount: Money) -> int:
    ensure_currency(amount, state.currency)
    if amount.amount <= 0:
        raise NotPositiveError(f"{amount.amount} is not a positive amount", amount=amount.amount)
    return amount.amount


def decide(command: InvoiceCommand, state: InvoiceState) -> Sequence[BaseModel]:
    if isinstance(command, IssueInvoice):
        if state is not None:
            return []  # issued already: the charge that issues it ran before
        issued = command.issued
        if issued.total != sum(line.amount for line in command.lines) or \
                issued.tax != sum(line.tax for line in command.lines):
            raise ValueError("an invoice's totals are the sums of its lines")
        return [InvoiceOpened(issued=issued, therapist_id=command.therapist_id,
                              lines=list(command.lines))]
    if state is None:
        raise InvoiceNotFoundError(f"invoice {command.invoice_id} does not exist",
                                   invoice_id=str(command.invoice_id))
    if isinstance(command, RecordPayment):
        return _pay(command, state)
    if isinstance(command, IssueRefund):
        return _refund(command, state)
    if isinstance(command, IssueCreditNote):
        return _credit(command, state)
    if state.outstanding <= 0:
        return []  # settled: nothing to remind of, nothing overdue
    if isinstance(command, RemindPayment):
        if command.reminder <= state.reminders:
            return []
        return [public.InvoiceReminderDue(**_ids(state), reminder=command.reminder,
                                          outstanding=state.outstanding,
                                          due_on=state.issued.due_on, at=command.now)]
    if state.overdue:
        return []
    return [public.InvoiceOverdue(**_ids(state), outstanding=state.outstanding,
                                  due_on=state.issued.due_on, at=command.now)]


# Money these methods report has left the patient's account already: refusing it would keep
# it out of the ledger, the takings and the refund path, not out of the clinic's bank.
CAPTURED_ELSEWHERE: frozenset[public.PaymentMethod] = frozenset({"provider"})


def _seen(state: Invoice, change_id: UUID, kind: str, amount: int) -> bool:
    """Whether this payment, refund or credit note was recorded already (a repeat, which
    changes nothing); the same id with another kind or amount is refused."""
    recorded = state.changes.get(change_id)
    if recorded is None:
        return False
    if recorded != (kind, amount):
        raise IdempotencyKeyReusedError(
            f"{change_id} was recorded as a {recorded[0].replace('_', ' ')} of {recorded[1]}: "
            "send a new Idempotency-Key for a new request", id=str(change_id))
    return True


def _through_pack(state: Invoice, through_pack: bool, what: str) -> None:
    """A change that takes back a pack's price must come from the pack, which closes it:
    otherwise the refunded or credited sessions would stay usable."""
    pack_id = state.issued.pack_id
    if state.issued.kind == "pack" and not through_pack:
        raise RefundThroughPackError(
            f"invoice {state.invoice_id} is the price of pack {pack_id}, whose sessions stay "
            f"usable: {what} by closing the pack (POST /packs/{pack_id}/refund)",
            pack_id=str(pack_id), refund=f"/packs/{pack_id}/refund")


def _pay(c: RecordPayment, state: Invoice) -> list[BaseModel]:
    amount = _positive(state, c.amount)
    if _seen(state, c.payment_id, "payment", amount):
        return []
    if amount > state.outstanding and c.method not in CAPTURED_ELSEWHERE:
        raise OverpaymentError(
            f"the invoice asks {max(state.outstanding, 0)}, the payment is {amount}",
            outstanding=max(state.outstanding, 0), amount=amount)
    return [PaymentTaken(payment=public.PaymentRecorded(
        **_ids(state), payment_id=c.payment_id, appointment_id=state.issued.appointment_id,
        amount=amount, method=c.method, outstanding=state.outstanding - amount,
        recorded_at=c.now), reference=c.reference, by=c.by)]


def _refund(c: IssueRefund, state: Invoice) -> list[BaseModel]:
    amount = _positive(state, c.amount)
    if _seen(state, c.refund_id, "refund", amount):
        return []
    refundable = state.paid - state.refunded
    if amount > refundable:
        raise RefundExceedsPaidError(
            f"{refundable} was paid and not yet refunded; the refund is {amount}",
            refundable=refundable, amount=amount)
    in_credit = max(0, -state.outstanding)
    credited = max(0, amount - in_credit)
    if credited > 0:  # repaying what the patient holds in credit leaves the price alone
        _through_pack(state, c.through_pack,
                      f"only the {in_credit} the patient holds in credit can be refunded here; "
                      "the rest is refunded")
    if credited > state.total - state.credited:
        raise CreditExceedsInvoiceError(
            f"the refund would credit {credited}, the invoice asks only "
            f"{state.total - state.credited}", amount=amount)
    outstanding = state.outstanding + amount - credited
    return [RefundPaid(refund=public.RefundIssued(
        **_ids(state), refund_id=c.refund_id, amount=amount, credited=credited,
        outstanding=outstanding, issued_at=c.now), reason=c.reason, by=c.by)]


def _credit(c: IssueCreditNote, state: Invoice) -> list[BaseModel]:
    amount = _positive(state, c.amount)
    if _seen(state, c.credit_note_id, "credit_note", amount):
        return []
    _through_pack(state, c.through_pack, "it is credited")
    creditable = state.total - state.credited
    if amount > creditable:
        raise CreditExceedsInvoiceError(
            f"the invoice can be credited {creditable} more; the credit note is {amount}",
            creditable=creditable, amount=amount)
    return [CreditNoted(credit=public.InvoiceCredited(
        **_ids(state), credit_note_id=c.credit_note_id, amount=amount,
        reason_code=c.reason_code, appointment_id=state.issued.appointment_id,
        outstanding=state.outstanding - amount, credited_at=c.now), reason=c.reason, by=c.by)]
