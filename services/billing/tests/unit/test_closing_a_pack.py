"""Closing a pack gives back its unused sessions' worth whatever else happened to its invoice
(paid twice, a goodwill credit note, partly paid), and a pack's invoice is refunded or
credited only by closing the pack, which takes its sessions away first."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from billing.application import billing
from billing.domain import invoice, pack
from billing.domain.money import contained_tax
from billing_builders import NOW, apply, bought, eur, run_pack
from kinetic_contracts.billing.v1 import events as public

PRICE = 51000  # six sessions at 85.00


def pack_invoice(sold: pack.Pack) -> invoice.Invoice:
    p = sold.purchased
    line = invoice.InvoiceLine(description="Session pack: 6 sessions", amount=p.price,
                               tax_rate_bp=0, tax=contained_tax(p.price, 0))
    header = public.InvoiceIssued(
        invoice_id=p.invoice_id, patient_id=p.patient_id, location_id=p.location_id,
        currency="EUR", number="2026-000001", kind="pack", pack_id=p.pack_id, total=p.price,
        tax=0, issued_at=NOW, due_on=NOW.date() + timedelta(days=14))
    state = invoice.evolve(None, invoice.decide(invoice.IssueInvoice(
        issued=header, lines=(line,)), None)[0])  # type: ignore[arg-type]
    assert state is not None
    return state


def pay(state: invoice.Invoice, amount: int, method: str = "transfer") -> invoice.Invoice:
    return apply(state, invoice.RecordPayment(
        invoice_id=state.invoice_id, payment_id=uuid.uuid4(), amount=eur(amount),
        method=method, by="bea", now=NOW))  # type: ignore[arg-type]


def goodwill(state: invoice.Invoice, amount: int) -> invoice.Invoice:
    """A goodwill credit note on the pack's invoice: refused now (see below), but invoices
    credited before that rule keep theirs."""
    return apply(state, invoice.IssueCreditNote(
        invoice_id=state.invoice_id, credit_note_id=uuid.uuid4(), amount=eur(amount),
        reason_code="goodwill", reason="loyal patient", by="bea", now=NOW, through_pack=True))


def two_drawn() -> pack.Pack:
    state = bought(sessions=6, price=PRICE)
    for _ in range(2):
        state = run_pack(state, pack.DrawSession(pack_id=state.purchased.pack_id,
                                                 appointment_id=uuid.uuid4(), now=NOW))
    return state


# -- the arithmetic ------------------------------------------------------------------------

def close(bill: invoice.Invoice, worth: int) -> invoice.Invoice:
    """The close as refund_pack applies it: credit, then refund, each through the pack."""
    to_credit, to_refund = invoice.settle_unused(bill, worth)
    if to_credit:
        bill = apply(bill, invoice.IssueCreditNote(
            invoice_id=bill.invoice_id, credit_note_id=uuid.uuid4(), amount=eur(to_credit),
            reason_code="other", reason="unused", by="bea", now=NOW, through_pack=True))
    if to_refund:
        bill = apply(bill, invoice.IssueRefund(
            invoice_id=bill.invoice_id, refund_id=uuid.uuid4(), amount=eur(to_refund),
            reason="unused", by="bea", now=NOW, through_pack=True))
    return bill


def net_paid(bill: invoice.Invoice) -> int:
    return bill.paid - bill.refunded


def test_given_a_paid_pack_with_two_sessions_used_when_closed_then_four_are_refunded() -> None:
    bill = close(pay(pack_invoice(two_drawn()), PRICE), 34000)
    assert (bill.credited, bill.refunded, bill.outstanding) == (34000, 34000, 0)
    assert net_paid(bill) == 17000  # two sessions at 85.00


def test_given_a_pack_paid_twice_when_closed_then_the_unused_worth_is_refunded_and_the_double_payment_stays_in_credit(
        ) -> None:
    bill = pay(pay(pack_invoice(two_drawn()), PRICE), PRICE, "provider")
    assert bill.outstanding == -PRICE
    bill = close(bill, 34000)
    assert (bill.credited, bill.refunded) == (34000, 34000)
    assert bill.outstanding == -PRICE  # still for billing staff to refund, as before
    # Once they do, the patient has paid for the two sessions used, no more.
    bill = apply(bill, invoice.IssueRefund(invoice_id=bill.invoice_id, refund_id=uuid.uuid4(),
                                           amount=eur(PRICE), reason="paid twice", by="bea",
                                           now=NOW))
    assert (net_paid(bill), bill.outstanding) == (17000, 0)


def test_given_a_paid_pack_with_a_goodwill_credit_when_closed_then_the_goodwill_is_kept(
        ) -> None:
    bill = goodwill(pay(pack_invoice(two_drawn()), PRICE), 5000)
    assert bill.outstanding == -5000
    bill = close(bill, 34000)
    assert (bill.credited, bill.refunded, bill.outstanding) == (39000, 34000, -5000)
    bill = apply(bill, invoice.IssueRefund(invoice_id=bill.invoice_id, refund_id=uuid.uuid4(),
                                           amount=eur(5000), reason="goodwill", by="bea",
                                           now=NOW))
    assert net_paid(bill) == 12000  # the two sessions used, less the goodwill


def test_given_a_half_paid_pack_when_closed_then_only_what_was_paid_beyond_the_used_sessions_is_refunded(
        ) -> None:
    bill = close(pay(pack_invoice(two_drawn()), 25500), 34000)
    assert (bill.credited, bill.refunded, bill.outstanding) == (34000, 8500, 0)
    assert net_paid(bill) == 17000


def test_given_a_barely_paid_pack_when_closed_then_the_rest_of_the_used_sessions_is_still_owed(
        ) -> None:
    bill = close(pay(pack_invoice(two_drawn()), 10000), 34000)
    assert (bill.credited, bill.refunded, bill.outstanding) == (34000, 0, 7000)


def test_given_an_unpaid_pack_when_closed_then_its_unused_worth_is_only_credited() -> None:
    bill = close(pack_invoice(two_drawn()), 34000)
    assert (bill.credited, bill.refunded, bill.outstanding) == (34000, 0, 17000)


def test_the_credit_never_exceeds_what_the_invoice_still_asks_of_its_total() -> None:
    bill = goodwill(pay(pack_invoice(two_drawn()), 11000), 40000)  # 510 − 400 = 110 paid
    assert invoice.settle_unused(bill, 34000) == (11000, 11000)


# -- the application's close, as it runs ---------------------------------------------------

class Streams:
    """Billing's streams in memory, for the handlers' own load → decide → append."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}

    async def state_of(self, conn: Any, store: Any, stream: Any, aggregate: Any,
                       tenant_id: Any) -> Any:
        return self.states.get(str(stream), aggregate.INITIAL)

    async def run(self, conn: Any, store: Any, stream: Any, aggregate: Any, command: Any,
                  ctx: Any) -> list[Any]:
        state = self.states.get(str(stream), aggregate.INITIAL)
        events = aggregate.decide(command, state)
        for e in events:
            state = aggregate.evolve(state, e)
        self.states[str(stream)] = state
        return [SimpleNamespace(type=e.event_type, data=e.model_dump(mode="json"))
                for e in events]


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> Streams:
    fake = Streams()
    monkeypatch.setattr(billing, "state_of", fake.state_of)
    monkeypatch.setattr(billing, "run", fake.run)

    async def local_date(conn: Any, location_id: Any, instant: Any) -> Any:
        return instant.date()

    async def tariff_on(*args: Any) -> None:
        return None  # no price list: pro rata, as refund_pack falls back to

    monkeypatch.setattr(billing, "local_date", local_date)
    monkeypatch.setattr(billing, "tariff_on", tariff_on)
    return fake


@pytest.mark.parametrize(("payments", "credited", "after"), [
    ([PRICE], 0, (34000, 34000, 0)),  # plain paid pack
    ([PRICE, PRICE], 0, (34000, 34000, -PRICE)),  # paid twice: the double payment stays
    ([PRICE], 5000, (39000, 34000, -5000)),  # the goodwill stays
    ([25500], 0, (34000, 8500, 0)),  # half paid
], ids=["paid", "paid-twice", "goodwill", "half-paid"])
async def test_refund_pack_credits_the_unused_worth_and_refunds_what_of_it_was_paid(
        streams: Streams, payments: list[int], credited: int, after: tuple[int, ...]) -> None:
    sold = two_drawn()
    bill = pack_invoice(sold)
    for amount in payments:
        bill = pay(bill, amount, "provider")
    if credited:
        bill = goodwill(bill, credited)
    streams.states[str(billing.pack_stream(sold.purchased.pack_id))] = sold
    streams.states[str(billing.invoice_stream(bill.invoice_id))] = bill
    closed = await billing.refund_pack(None, None, uuid.uuid4(),  # type: ignore[arg-type]
                                       sold.purchased.pack_id, "bea", NOW)
    assert (closed.refunded, closed.remaining) == (True, 0)
    bill = streams.states[str(billing.invoice_stream(bill.invoice_id))]
    assert (bill.credited, bill.refunded, bill.outstanding) == after


# -- a pack's invoice is not refunded on its own -------------------------------------------

def test_a_refund_of_a_packs_price_on_its_invoice_is_refused_pointing_to_the_pack() -> None:
    sold = two_drawn()
    bill = pay(pack_invoice(sold), PRICE)
    with pytest.raises(invoice.RefundThroughPackError) as refused:
        apply(bill, invoice.IssueRefund(invoice_id=bill.invoice_id, refund_id=uuid.uuid4(),
                                        amount=eur(PRICE), reason="unhappy", by="bea",
                                        now=NOW))
    assert f"POST /packs/{sold.purchased.pack_id}/refund" in refused.value.detail
    assert refused.value.extensions["pack_id"] == str(sold.purchased.pack_id)


def test_a_credit_note_on_a_packs_invoice_is_refused_pointing_to_the_pack() -> None:
    bill = pack_invoice(two_drawn())
    with pytest.raises(invoice.RefundThroughPackError):
        apply(bill, invoice.IssueCreditNote(
            invoice_id=bill.invoice_id, credit_note_id=uuid.uuid4(), amount=eur(PRICE),
            reason_code="goodwill", reason="free pack", by="bea", now=NOW))


def test_what_a_patient_holds_in_credit_on_a_packs_invoice_is_still_refunded_there() -> None:
    """Paid twice, or a session reversed after the pack closed: the price stays, the money
    the patient holds in credit goes back."""
    bill = pay(pay(pack_invoice(two_drawn()), PRICE), PRICE, "provider")
    bill = apply(bill, invoice.IssueRefund(invoice_id=bill.invoice_id, refund_id=uuid.uuid4(),
                                           amount=eur(PRICE), reason="paid twice", by="bea",
                                           now=NOW))
    assert (bill.refunded, bill.credited, bill.outstanding) == (PRICE, 0, 0)
    with pytest.raises(invoice.RefundThroughPackError):  # one cent more is the price
        apply(bill, invoice.IssueRefund(invoice_id=bill.invoice_id, refund_id=uuid.uuid4(),
                                        amount=eur(1), reason="more", by="bea", now=NOW))
