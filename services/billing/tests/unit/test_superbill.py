"""What a superbill claims: per session only what was charged after credits and actually paid,
a pack session its share of the pack's invoice; the totals are the sums of the lines."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from billing.domain import invoice, pack
from billing.domain import superbill as bill
from billing_builders import NOW, apply, bought, eur, run_pack
from kinetic_contracts.billing.v1 import events as public

DAY = date(2026, 11, 23)


# -- an invoice and a pack as billing's own deciders leave them -----------------------------

def issued(total: int = 9500) -> invoice.Invoice:
    line = invoice.InvoiceLine(description="Treatment session", amount=total, tax_rate_bp=0,
                               tax=0)
    header = public.InvoiceIssued(
        invoice_id=uuid.uuid4(), patient_id=uuid.uuid4(), location_id=uuid.uuid4(),
        currency="EUR", number="2026-000001", kind="session", total=total, tax=0,
        issued_at=NOW, due_on=DAY + timedelta(days=14))
    state = invoice.evolve(None, invoice.InvoiceOpened(issued=header, therapist_id=None,
                                                       lines=[line]))
    assert state is not None
    return state


def pay(state: invoice.Invoice, amount: int) -> invoice.Invoice:
    return apply(state, invoice.RecordPayment(
        invoice_id=state.invoice_id, payment_id=uuid.uuid4(), amount=eur(amount),
        method="card", by="bea", now=NOW))


def refund(state: invoice.Invoice, amount: int) -> invoice.Invoice:
    return apply(state, invoice.IssueRefund(invoice_id=state.invoice_id, refund_id=uuid.uuid4(),
                                            amount=eur(amount), reason="r", by="bea", now=NOW))


def credit(state: invoice.Invoice, amount: int, reason_code: str = "goodwill"
           ) -> invoice.Invoice:
    return apply(state, invoice.IssueCreditNote(
        invoice_id=state.invoice_id, credit_note_id=uuid.uuid4(), amount=eur(amount),
        reason_code=reason_code, reason="r", by="bea", now=NOW))  # type: ignore[arg-type]


def sums(state: invoice.Invoice) -> bill.InvoiceSums:
    return bill.InvoiceSums(total=state.total, paid=state.paid, refunded=state.refunded,
                            credited=state.credited)


def draw(state: pack.Pack, n: int) -> tuple[pack.Pack, list[uuid.UUID]]:
    drawn = []
    for _ in range(n):
        drawn.append(uuid.uuid4())
        state = run_pack(state, pack.DrawSession(pack_id=state.purchased.pack_id,
                                                 appointment_id=drawn[-1], now=NOW))
    return state, drawn


def invoiced(state: invoice.Invoice) -> bill.Session:
    return bill.Session(service_date=DAY, appointment_type="treatment_session",
                        cpt_codes=["97110"], currency="EUR", invoice=sums(state))


def from_pack(state: pack.Pack, pack_invoice: invoice.Invoice,
              reversed_: frozenset[uuid.UUID] = frozenset()) -> bill.Session:
    p = state.purchased
    return bill.Session(service_date=DAY, appointment_type="treatment_session",
                        cpt_codes=["97110"], currency="EUR", pack=bill.PackCover(
                            sessions=p.sessions, price=p.price,
                            covered=state.sessions_paid_for(reversed_),
                            invoice=sums(pack_invoice)))


def claimed(session: bill.Session) -> tuple[int, int]:
    line = bill.line(session)
    return line.charged, line.paid


# -- invoiced sessions ---------------------------------------------------------------------

def test_given_a_session_credited_in_full_when_the_superbill_is_made_then_it_is_waived_at_0(
        ) -> None:
    for reason in ("goodwill", "billing_error"):
        line = bill.line(invoiced(credit(issued(9500), 9500, reason)))
        assert (line.charged, line.paid, line.waived) == (0, 0, True)


def test_given_a_paid_session_then_credited_in_full_then_the_credit_held_is_not_claimed_paid(
        ) -> None:
    # The patient is owed 95.00 back: the superbill claims no payment for a waived session.
    assert claimed(invoiced(credit(pay(issued(9500), 9500), 9500))) == (0, 0)


def test_given_a_partial_credit_note_then_the_session_claims_the_fee_less_the_credit() -> None:
    assert claimed(invoiced(pay(credit(issued(9500), 2000), 7500))) == (7500, 7500)


def test_given_an_unpaid_or_part_paid_invoice_then_only_what_was_paid_is_claimed_paid() -> None:
    assert claimed(invoiced(issued(9500))) == (9500, 0)
    assert claimed(invoiced(pay(issued(9500), 4000))) == (9500, 4000)


def test_given_a_partial_refund_then_the_session_claims_what_was_kept() -> None:
    # A refund credits the invoice by what it paid back: the patient was charged 65.00.
    assert claimed(invoiced(refund(pay(issued(9500), 9500), 3000))) == (6500, 6500)


# -- sessions from a pack ------------------------------------------------------------------

def test_given_a_paid_pack_then_a_session_claims_its_share_of_the_pack_price_not_the_fee(
        ) -> None:
    state, _ = draw(bought(6, 51000), 2)
    assert claimed(from_pack(state, pay(issued(51000), 51000))) == (8500, 8500)


def test_given_an_unpaid_pack_then_its_sessions_claim_nothing_paid() -> None:
    state, _ = draw(bought(6, 51000), 2)
    assert claimed(from_pack(state, issued(51000))) == (8500, 0)


def test_given_a_half_paid_pack_then_a_session_claims_its_share_of_what_was_paid() -> None:
    state, _ = draw(bought(6, 51000), 2)
    assert claimed(from_pack(state, pay(issued(51000), 25500))) == (8500, 4250)


def test_given_a_pack_credited_in_part_then_a_session_claims_its_share_after_credits() -> None:
    state, _ = draw(bought(6, 51000), 1)
    assert claimed(from_pack(state, pay(credit(issued(51000), 5100), 45900))) == (7650, 7650)


def test_given_a_pack_credited_in_full_then_its_sessions_are_waived() -> None:
    state, _ = draw(bought(6, 51000), 1)
    assert bill.line(from_pack(state, credit(issued(51000), 51000))).waived


def test_given_a_pack_closed_with_its_unused_sessions_refunded_then_drawn_ones_keep_share(
        ) -> None:
    state, _ = draw(bought(6, 51000), 2)
    state = run_pack(state, pack.RefundPack(pack_id=state.purchased.pack_id, policy="pro_rata",
                                            now=NOW))
    # Paid in full, then the four unused sessions' 340.00 refunded (which credits the
    # invoice): what is left pays for the two drawn sessions only.
    paid_back = refund(pay(issued(51000), 51000), 34000)
    assert claimed(from_pack(state, paid_back)) == (8500, 8500)
    # Unpaid when closed: the unused sessions' value was credited, the drawn ones still owed.
    assert claimed(from_pack(state, credit(issued(51000), 34000, "other"))) == (8500, 0)


def test_given_a_pack_closed_without_refund_then_its_unused_sessions_are_still_paid_for(
        ) -> None:
    state, _ = draw(bought(6, 51000), 2)
    state = run_pack(state, pack.RefundPack(pack_id=state.purchased.pack_id, policy="none",
                                            now=NOW))
    assert state.sessions_paid_for(frozenset()) == 6
    assert claimed(from_pack(state, pay(issued(51000), 51000))) == (8500, 8500)


def test_given_a_session_reversed_after_its_pack_closed_then_the_others_keep_their_share(
        ) -> None:
    state, (kept, gone) = draw(bought(6, 51000), 2)
    state = run_pack(state, pack.RefundPack(pack_id=state.purchased.pack_id, policy="pro_rata",
                                            now=NOW))
    # Its share went back as a credit: the patient is in credit 85.00, not paid for two.
    bill_ = credit(refund(pay(issued(51000), 51000), 34000), 8500, "appointment_reversed")
    assert state.sessions_paid_for({gone}) == 1 and kept in state.used
    assert claimed(from_pack(state, bill_, frozenset({gone}))) == (8500, 8500)


# -- the totals ----------------------------------------------------------------------------

def test_given_waived_paid_and_pack_sessions_then_the_totals_are_the_sums_of_the_lines(
        ) -> None:
    state, _ = draw(bought(6, 51000), 1)
    made = bill.superbill([invoiced(pay(issued(15000), 15000)),
                           invoiced(credit(issued(9500), 9500)),
                           invoiced(pay(issued(9500), 4000)),
                           from_pack(state, issued(51000))])
    assert [(line.charged, line.paid) for line in made.lines] == [
        (15000, 15000), (0, 0), (9500, 4000), (8500, 0)]
    assert (made.charged, made.paid) == ({"EUR": 33000}, {"EUR": 19000})
