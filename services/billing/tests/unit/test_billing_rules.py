"""Billing's rules on the pure domain: money, the price in force, fees, packs, invoices and
the ledger."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from billing.domain import charge, invoice, ledger, pack, price_list
from billing.domain.money import (
    CurrencyMismatchError,
    Money,
    contained_tax,
    pro_rata,
)
from billing.domain.price_list import CancellationPolicy, Fees, Tariff
from billing_builders import NOW, apply, bought, eur, run_pack
from kinetic_contracts.billing.v1 import events as public
from kinetic_contracts.problems import IdempotencyKeyReusedError

TODAY = NOW.date()


def tariff(**changes: object) -> Tariff:
    base = dict(effective_from=date(2026, 1, 1), currency="EUR", tax_rate_bp=0,
                fees=Fees(initial_assessment=15000, treatment_session=9500,
                          reassessment=12000),
                policy=CancellationPolicy(late_cancel_hours=24, late_cancel_fee=4000,
                                          no_show_fee=9500))
    return Tariff(**{**base, **changes})  # type: ignore[arg-type]


def occurrence(outcome: str = "completed", *, notice_hours: float = 0,
               appointment_type: str = "treatment_session") -> charge.Occurrence:
    starts = NOW + timedelta(hours=notice_hours)
    return charge.Occurrence(
        appointment_id=uuid.uuid4(), patient_id=uuid.uuid4(), location_id=uuid.uuid4(),
        therapist_id=uuid.uuid4(), appointment_type=appointment_type,  # type: ignore[arg-type]
        starts_at=starts, outcome=outcome, at=NOW)  # type: ignore[arg-type]


# -- money ---------------------------------------------------------------------------------

def test_money_adds_in_minor_units_and_refuses_another_currency() -> None:
    assert (eur(1999) + eur(1)).amount == 2000
    with pytest.raises(CurrencyMismatchError):
        eur(100) + Money(amount=100, currency="USD")


def test_an_unknown_currency_code_is_refused() -> None:
    with pytest.raises(ValidationError):
        Money(amount=1, currency="XQZ")


def test_money_displays_in_the_currencys_own_minor_units() -> None:
    assert eur(9550).display() == "€95.50"
    assert Money(amount=9550, currency="JPY").display() == "¥9,550"
    assert Money(amount=9550, currency="KWD").display().endswith("9.550")


def test_contained_tax_rounds_half_up_to_the_minor_unit() -> None:
    assert contained_tax(11900, 1900) == 1900  # 119.00 gross at 19 % holds 19.00
    assert contained_tax(10000, 1900) == 1597  # 15.966… rounds up
    assert contained_tax(10000, 0) == 0
    assert contained_tax(1, 2000) == 0  # 0.1667 rounds down


def test_pro_rata_never_pays_out_a_fraction_more() -> None:
    assert pro_rata(50000, 4, 6) == 33333
    assert pro_rata(50000, 0, 6) == 0


# -- the price in force --------------------------------------------------------------------

def schedule(state: price_list.PriceList, t: Tariff, today: date = TODAY
             ) -> price_list.PriceList:
    for e in price_list.decide(price_list.ScheduleTariff(
            location_id=uuid.uuid4(), tariff=t, today=today, by="olivia", now=NOW), state):
        state = price_list.evolve(state, e)
    return state


def test_a_price_change_effective_tomorrow_leaves_todays_sessions_at_the_old_price() -> None:
    prices = schedule(price_list.INITIAL, tariff())
    tomorrow = TODAY + timedelta(days=1)
    raised = tariff(effective_from=tomorrow,
                    fees=Fees(initial_assessment=16000, treatment_session=10500,
                              reassessment=13000))
    prices = schedule(prices, raised)
    assert prices.in_force(TODAY).fees.treatment_session == 9500  # type: ignore[union-attr]
    assert prices.in_force(tomorrow).fees.treatment_session == 10500  # type: ignore[union-attr]


def test_a_new_tariff_cannot_start_in_the_past_but_the_first_may() -> None:
    prices = schedule(price_list.INITIAL, tariff(effective_from=date(2020, 1, 1)))
    with pytest.raises(price_list.TariffInThePastError):
        schedule(prices, tariff(effective_from=TODAY - timedelta(days=1)))


def test_no_tariff_before_the_first_starts() -> None:
    prices = schedule(price_list.INITIAL, tariff(effective_from=TODAY))
    assert prices.in_force(TODAY - timedelta(days=1)) is None


def test_a_cpt_code_must_have_five_characters() -> None:
    with pytest.raises(ValidationError):
        tariff(cpt_codes={"treatment_session": ["9711"]})


# -- fees ----------------------------------------------------------------------------------

def test_a_completed_session_costs_the_flat_fee_of_its_type() -> None:
    fee = charge.fee_for(occurrence(appointment_type="initial_assessment"), tariff())
    assert fee == charge.Fee(kind="session", amount=15000)


def test_a_late_cancellation_inside_the_window_costs_the_late_fee() -> None:
    assert charge.fee_for(occurrence("cancelled", notice_hours=5), tariff()) == \
        charge.Fee(kind="late_cancellation", amount=4000)


def test_a_cancellation_outside_the_window_costs_nothing() -> None:
    why = charge.fee_for(occurrence("cancelled", notice_hours=30), tariff())
    assert isinstance(why, str) and "outside the 24 h" in why


def test_a_no_show_costs_the_no_show_fee() -> None:
    assert charge.fee_for(occurrence("no_show"), tariff()) == \
        charge.Fee(kind="no_show", amount=9500)


def test_no_fee_where_the_policy_has_none() -> None:
    none = tariff(policy=CancellationPolicy())
    assert isinstance(charge.fee_for(occurrence("no_show"), none), str)
    assert isinstance(charge.fee_for(occurrence("cancelled", notice_hours=1), none), str)


def charged(state: charge.Charge, command: charge.ChargeSession | charge.ReverseCharge
            ) -> charge.Charge:
    for e in charge.decide(command, state):
        state = charge.evolve(state, e)  # type: ignore[arg-type]
    return state


def test_an_appointment_is_charged_once() -> None:
    command = charge.ChargeSession(occurrence=occurrence(), tariff=tariff(),
                                   service_date=TODAY, invoice_id=uuid.uuid4(), now=NOW)
    state = charged(charge.INITIAL, command)
    assert state.charged is not None and state.charged.paid_by == "invoice"
    assert charge.decide(command, state) == []


def test_a_reversal_before_the_charge_prevents_it() -> None:
    occ = occurrence()
    state = charged(charge.INITIAL, charge.ReverseCharge(
        appointment_id=occ.appointment_id, reason_code="recorded_in_error", now=NOW))
    assert charge.decide(charge.ChargeSession(
        occurrence=occ, tariff=tariff(), service_date=TODAY, invoice_id=uuid.uuid4(),
        now=NOW), state) == []


def test_a_pack_pays_for_sessions_but_not_for_fees() -> None:
    pack_id = uuid.uuid4()
    session = charged(charge.INITIAL, charge.ChargeSession(
        occurrence=occurrence(), tariff=tariff(), service_date=TODAY, pack_id=pack_id,
        invoice_id=uuid.uuid4(), now=NOW))
    assert session.charged and session.charged.paid_by == "pack"
    assert session.charged.pack_id == pack_id
    fee = charged(charge.INITIAL, charge.ChargeSession(
        occurrence=occurrence("no_show"), tariff=tariff(), service_date=TODAY,
        pack_id=pack_id, invoice_id=uuid.uuid4(), now=NOW))
    assert fee.charged and fee.charged.paid_by == "invoice"


# -- packs ---------------------------------------------------------------------------------

def test_a_pack_of_six_covers_six_sessions_and_a_draw_is_counted_once() -> None:
    state = bought()
    for _ in range(6):
        a = uuid.uuid4()
        state = run_pack(state, pack.DrawSession(pack_id=state.purchased.pack_id,
                                                 appointment_id=a, now=NOW))
        state = run_pack(state, pack.DrawSession(pack_id=state.purchased.pack_id,
                                                 appointment_id=a, now=NOW))
    assert state.remaining == 0
    with pytest.raises(pack.PackUsedUpError):
        pack.decide(pack.DrawSession(pack_id=state.purchased.pack_id,
                                     appointment_id=uuid.uuid4(), now=NOW), state)


def test_a_returned_session_goes_back_into_the_pack() -> None:
    state = bought()
    a = uuid.uuid4()
    state = run_pack(state, pack.DrawSession(pack_id=state.purchased.pack_id,
                                             appointment_id=a, now=NOW))
    state = run_pack(state, pack.ReturnSession(pack_id=state.purchased.pack_id,
                                               appointment_id=a, now=NOW))
    assert state.remaining == 6


def test_unused_sessions_are_refunded_pro_rata_by_policy() -> None:
    state = bought(sessions=6, price=50000)
    for _ in range(2):
        state = run_pack(state, pack.DrawSession(pack_id=state.purchased.pack_id,
                                                 appointment_id=uuid.uuid4(), now=NOW))
    [refund] = pack.decide(pack.RefundPack(pack_id=state.purchased.pack_id,
                                           policy="pro_rata", now=NOW), state)
    assert isinstance(refund, public.PackRefunded)
    assert (refund.unused, refund.amount) == (4, 33333)
    assert pack.refund_due(state, "none") == 0


def test_a_session_reversed_after_its_pack_was_refunded_is_owed_its_share() -> None:
    state = bought(sessions=6, price=51000)
    drawn, returned = uuid.uuid4(), uuid.uuid4()
    for a in (drawn, returned):
        state = run_pack(state, pack.DrawSession(pack_id=state.purchased.pack_id,
                                                 appointment_id=a, now=NOW))
    # Reversed while the pack is open: the session goes back into it, nothing is owed.
    state = run_pack(state, pack.ReturnSession(pack_id=state.purchased.pack_id,
                                               appointment_id=returned, now=NOW))
    assert pack.reversal_credit(state, returned) == 0
    assert pack.reversal_credit(state, drawn) == 0  # still open: it would go back instead
    state = run_pack(state, pack.RefundPack(pack_id=state.purchased.pack_id, policy="none",
                                            now=NOW))
    # Closed (even with no refund of unused sessions): it cannot go back, its share can.
    assert pack.decide(pack.ReturnSession(pack_id=state.purchased.pack_id,
                                          appointment_id=drawn, now=NOW), state) == []
    assert pack.reversal_credit(state, drawn) == 8500
    assert pack.reversal_credit(state, uuid.uuid4()) == 0  # not drawn from this pack


# -- invoices ------------------------------------------------------------------------------

def issued(total: int = 9500, tax_rate_bp: int = 0) -> invoice.Invoice:
    tax = contained_tax(total, tax_rate_bp)
    line = invoice.InvoiceLine(description="Treatment session", amount=total,
                               tax_rate_bp=tax_rate_bp, tax=tax)
    header = public.InvoiceIssued(
        invoice_id=uuid.uuid4(), patient_id=uuid.uuid4(), location_id=uuid.uuid4(),
        currency="EUR", number="2026-000001", kind="session", total=total, tax=tax,
        issued_at=NOW, due_on=TODAY + timedelta(days=14))
    [event] = invoice.decide(invoice.IssueInvoice(issued=header, lines=(line,)), None)
    state = invoice.evolve(None, event)  # type: ignore[arg-type]
    assert state is not None
    return state


def pay(state: invoice.Invoice, amount: int, payment_id: uuid.UUID | None = None
        ) -> invoice.Invoice:
    return apply(state, invoice.RecordPayment(
        invoice_id=state.invoice_id, payment_id=payment_id or uuid.uuid4(), amount=eur(amount),
        method="cash", by="bea", now=NOW))


def refund(state: invoice.Invoice, amount: int) -> invoice.Invoice:
    return apply(state, invoice.IssueRefund(invoice_id=state.invoice_id,
                                            refund_id=uuid.uuid4(), amount=eur(amount),
                                            reason="unhappy", by="bea", now=NOW))


def credit(state: invoice.Invoice, amount: int) -> invoice.Invoice:
    return apply(state, invoice.IssueCreditNote(
        invoice_id=state.invoice_id, credit_note_id=uuid.uuid4(), amount=eur(amount),
        reason_code="goodwill", reason="first visit", by="bea", now=NOW))


def test_partial_payments_settle_an_invoice_and_a_repeat_pays_nothing() -> None:
    state = pay(issued(9500), 5000)
    assert (state.status, state.outstanding) == ("partially_paid", 4500)
    again = uuid.uuid4()
    state = pay(pay(state, 4500, again), 4500, again)
    assert (state.status, state.outstanding, state.paid) == ("paid", 0, 9500)


def test_a_payment_key_sent_again_with_another_amount_is_refused_not_taken_as_a_repeat() -> None:
    key = uuid.uuid4()
    state = pay(issued(9500), 5000, key)
    with pytest.raises(IdempotencyKeyReusedError):
        pay(state, 4500, key)
    refund_key = uuid.uuid4()
    with pytest.raises(IdempotencyKeyReusedError):  # the payment's key for a refund
        apply(state, invoice.IssueRefund(invoice_id=state.invoice_id, refund_id=key,
                                         amount=eur(5000), reason="wrong", by="bea", now=NOW))
    refunded = apply(state, invoice.IssueRefund(
        invoice_id=state.invoice_id, refund_id=refund_key, amount=eur(1000), reason="wrong",
        by="bea", now=NOW))
    with pytest.raises(IdempotencyKeyReusedError):
        apply(refunded, invoice.IssueRefund(
            invoice_id=state.invoice_id, refund_id=refund_key, amount=eur(2000),
            reason="wrong", by="bea", now=NOW))
    assert (refunded.paid, refunded.refunded) == (5000, 1000)


def test_a_payment_above_what_is_owed_is_refused() -> None:
    with pytest.raises(invoice.OverpaymentError):
        pay(issued(9500), 9501)


def provider_pay(state: invoice.Invoice, amount: int, event: str = "evt_1"
                 ) -> invoice.Invoice:
    return apply(state, invoice.RecordPayment(
        invoice_id=state.invoice_id, payment_id=uuid.uuid5(uuid.NAMESPACE_URL, event),
        amount=eur(amount), method="provider", reference="ch_1", by="payment-provider",
        now=NOW))


def test_given_a_paid_invoice_when_the_provider_reports_a_payment_then_the_patient_is_in_credit(
        ) -> None:
    state = provider_pay(pay(issued(9500), 9500), 9500)
    assert (state.paid, state.outstanding, state.status) == (19000, -9500, "paid")


def test_given_a_provider_payment_above_what_is_owed_then_a_desk_payment_is_still_refused(
        ) -> None:
    state = provider_pay(issued(9500), 12000)
    assert state.outstanding == -2500
    with pytest.raises(invoice.OverpaymentError):
        pay(state, 1)


def test_given_a_provider_overpayment_when_refunded_then_it_settles_with_nothing_credited(
        ) -> None:
    state = refund(provider_pay(pay(issued(9500), 9500), 9500), 9500)
    assert (state.outstanding, state.credited, state.status) == (0, 0, "paid")


def test_a_payment_in_another_currency_is_refused() -> None:
    state = issued()
    with pytest.raises(CurrencyMismatchError):
        invoice.decide(invoice.RecordPayment(
            invoice_id=state.invoice_id, payment_id=uuid.uuid4(),
            amount=Money(amount=100, currency="USD"), method="card", by="bea", now=NOW), state)


def test_a_negative_or_zero_payment_is_refused() -> None:
    with pytest.raises(invoice.NotPositiveError):
        pay(issued(), 0)


def test_a_refund_is_never_above_what_was_paid() -> None:
    state = pay(issued(9500), 3000)
    with pytest.raises(invoice.RefundExceedsPaidError):
        refund(state, 3001)
    state = refund(state, 3000)
    # the refunded 3000 also came off what the invoice asks: 9500 − 3000 credited − 0 net paid
    assert (state.refunded, state.credited, state.outstanding) == (3000, 3000, 6500)


def test_a_refund_after_a_credit_repays_the_credit_and_credits_nothing_more() -> None:
    state = credit(pay(issued(9500), 9500), 9500)  # the session was reversed after payment
    assert state.outstanding == -9500
    state = refund(state, 9500)
    assert (state.outstanding, state.credited, state.status) == (0, 9500, "void")


def test_a_credit_note_is_never_above_what_the_invoice_asks() -> None:
    with pytest.raises(invoice.CreditExceedsInvoiceError):
        credit(issued(9500), 9501)


def test_reminders_and_overdue_only_while_something_is_owed() -> None:
    state = apply(issued(), invoice.RemindPayment(invoice_id=uuid.uuid4(), reminder=1, now=NOW))
    assert state.reminders == 1
    state = apply(state, invoice.MarkOverdue(invoice_id=state.invoice_id, now=NOW))
    assert state.status == "overdue"
    paid = pay(issued(), 9500)
    assert invoice.decide(invoice.MarkOverdue(invoice_id=paid.invoice_id, now=NOW), paid) == []


def test_an_invoices_tax_is_stated_per_line() -> None:
    state = issued(11900, 1900)
    assert (state.issued.total, state.issued.tax) == (11900, 1900)


# -- the ledger ----------------------------------------------------------------------------

operations = st.lists(st.tuples(st.sampled_from(["charge", "pay", "provider", "refund",
                                                 "credit"]),
                                st.integers(min_value=0, max_value=4),
                                st.integers(min_value=1, max_value=20000)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_the_balance_is_the_sum_of_the_entries_after_any_sequence(
        ops: list[tuple[str, int, int]]) -> None:
    """Charges, payments (the provider's beyond what is owed too), refunds and credits in any
    order (refused ones change nothing): the account's balance is the sum of its entries,
    equals what the invoices still ask, and no invoice is ever refunded above what was
    paid."""
    invoices: list[invoice.Invoice] = []
    entries: list[ledger.Entry] = []
    for op, which, amount in ops:
        if op == "charge" or not invoices:
            state = None
            line = invoice.InvoiceLine(description="Session", amount=amount, tax_rate_bp=0,
                                       tax=0)
            header = public.InvoiceIssued(
                invoice_id=uuid.uuid4(), patient_id=uuid.uuid4(), location_id=uuid.uuid4(),
                currency="EUR", number="n", kind="session", total=amount, tax=0,
                issued_at=NOW, due_on=TODAY)
            command: invoice.InvoiceCommand = invoice.IssueInvoice(issued=header, lines=(line,))
        else:
            state = invoices[which % len(invoices)]
            common = dict(invoice_id=state.invoice_id, amount=eur(amount), by="bea", now=NOW)
            command = {
                "pay": lambda: invoice.RecordPayment(**common, payment_id=uuid.uuid4(),
                                                     method="card"),
                "provider": lambda: invoice.RecordPayment(**common, payment_id=uuid.uuid4(),
                                                          method="provider"),
                "refund": lambda: invoice.IssueRefund(**common, refund_id=uuid.uuid4(),
                                                      reason="r"),
                "credit": lambda: invoice.IssueCreditNote(**common, credit_note_id=uuid.uuid4(),
                                                          reason_code="other", reason="r"),
            }[op]()
        try:
            events = invoice.decide(command, state)
        except (invoice.OverpaymentError, invoice.RefundExceedsPaidError,
                invoice.CreditExceedsInvoiceError):
            continue
        for e in events:
            entries.extend(ledger.entries_of(e))
            state = invoice.evolve(state, e)  # type: ignore[arg-type]
        assert state is not None
        if op == "charge" or len(invoices) == 0:
            invoices.append(state)
        else:
            invoices[which % len(invoices)] = state
        assert state.refunded <= state.paid
    assert ledger.balance(entries) == sum(i.outstanding for i in invoices)
    assert ledger.balance(entries) == sum(e.amount for e in entries)
