"""Billing's aggregates as its own deciders leave them, for the unit tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from billing.domain import invoice, pack
from billing.domain.money import Money
from kinetic_contracts.billing.v1 import events as public

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def eur(amount: int) -> Money:
    return Money(amount=amount, currency="EUR")


def apply(state: invoice.Invoice, command: invoice.InvoiceCommand) -> invoice.Invoice:
    for e in invoice.decide(command, state):
        state = invoice.evolve(state, e)  # type: ignore[arg-type, assignment]
    return state


def bought(sessions: int = 6, price: int = 51000) -> pack.Pack:
    p = public.PackPurchased(pack_id=uuid.uuid4(), patient_id=uuid.uuid4(),
                             location_id=uuid.uuid4(), offer="six", sessions=sessions,
                             price=price, currency="EUR", invoice_id=uuid.uuid4(),
                             purchased_at=NOW)
    state = pack.evolve(None, pack.PackBought(purchased=p, by="olivia"))
    assert state is not None
    return state


def run_pack(state: pack.Pack, command: pack.PackCommand) -> pack.Pack:
    for e in pack.decide(command, state):
        state = pack.evolve(state, e)  # type: ignore[arg-type, assignment]
    return state
