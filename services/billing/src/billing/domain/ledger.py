"""The patient account as a ledger: each invoice event becomes signed entries, and the
balance is their sum — nothing else stores it. Positive means the patient owes; negative
means the patient is in credit.

Entries: a charge adds the invoice's total, a payment subtracts what was paid, a credit note
subtracts what it credits, a refund adds back the money returned (and subtracts the part of
it that credited the invoice). The balance therefore equals the sum over the patient's
invoices of what each still asks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from billing.domain import invoice as inv

EntryKind = Literal["charge", "payment", "refund", "credit"]


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: EntryKind
    amount: int  # signed minor units
    suffix: str = ""  # tells apart two entries of one event


def entries_of(event: BaseModel) -> list[Entry]:
    if isinstance(event, inv.InvoiceOpened):
        return [Entry(kind="charge", amount=event.issued.total)]
    if isinstance(event, inv.PaymentTaken):
        return [Entry(kind="payment", amount=-event.payment.amount)]
    if isinstance(event, inv.CreditNoted):
        return [Entry(kind="credit", amount=-event.credit.amount)]
    if isinstance(event, inv.RefundPaid):
        refund = [Entry(kind="refund", amount=event.refund.amount)]
        if event.refund.credited:
            refund.append(Entry(kind="credit", amount=-event.refund.credited, suffix="credit"))
        return refund
    return []


def balance(entries: list[Entry]) -> int:
    return sum(e.amount for e in entries)
