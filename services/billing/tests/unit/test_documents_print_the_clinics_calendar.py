"""Invoices, receipts and billing's invoice pages print dates on the clinic's own calendar
(the location's timezone), not UTC's: a Sydney session at 09:00 on 5 March is invoiced at
22:00 UTC on 4 March, and must not read as issued the day before the service."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader

from billing.adapters import documents
from billing.adapters.documents import Place

SYDNEY = ZoneInfo("Australia/Sydney")
# 09:00 on 5 March in Sydney (AEDT, UTC+11) is 22:00 on 4 March in UTC.
ISSUED = datetime(2025, 3, 4, 22, 0, tzinfo=UTC)
PAID = datetime(2025, 3, 4, 23, 30, tzinfo=UTC)  # 10:30 on 5 March in Sydney
TEMPLATES = Path(documents.__file__).parent / "templates"


def sydney() -> Place:
    return Place(location="Harbour Physio", therapist="Sam Strong",
                 patient="Ada Canarysson, born 1996-04-02", zone=SYDNEY)


def detail(issued_at: Any = ISSUED) -> dict[str, Any]:
    """An invoice as the API answers it (a session on 5 March, paid in full that morning)."""
    return {
        "invoice_id": "6f1c1ad8-55f4-4a1f-9d3e-2f1b3c4d5e6f", "number": "2025-000007",
        "patient_id": "0b8d3a55-4e1c-4c1e-8f43-1b2a3c4d5e6f",
        "location_id": "9c0e6a1b-7d3f-4e2a-b1c5-6d7e8f9a0b1c", "therapist_id": None,
        "kind": "session", "currency": "AUD", "total": 9500, "tax": 0, "paid": 9500,
        "refunded": 0, "credited": 0, "outstanding": 0, "status": "paid", "overdue": False,
        "issued_at": issued_at, "due_on": date(2025, 3, 19),
        "lines": [{"description": "Treatment session (60 min)", "amount": 9500, "tax": 0,
                   "tax_rate_bp": 0, "service_date": "2025-03-05", "cpt_codes": ["97110"]}],
        "history": [{"kind": "payment", "id": "pay-1", "amount": 9500,
                     "at": PAID.isoformat(), "method": "card", "reference": None,
                     "reason": None, "by": "desk"}]}


def render(template: str, **context: Any) -> str:
    env = Environment(loader=ChoiceLoader([
        DictLoader({"base.html": "{% block content %}{% endblock %}"}),
        FileSystemLoader(TEMPLATES)]), autoescape=True)
    return env.get_template(template).render(money=documents.money, **context)


def test_an_invoice_issued_before_utc_midnight_in_sydney_is_dated_the_clinics_day():
    page = documents.invoice_page(detail(issued_at=ISSUED.isoformat()), sydney())
    assert "issued 2025-03-05 · due 2025-03-19" in page.lead
    assert "2025-03-04" not in page.lead


def test_an_invoice_read_from_the_database_is_dated_the_clinics_day():
    """The document route hands the stored instant itself, not its ISO text."""
    page = documents.invoice_page(detail(issued_at=ISSUED), sydney())
    assert "issued 2025-03-05" in page.lead


def test_payments_on_the_printed_invoice_are_dated_the_clinics_day():
    page = documents.invoice_page(detail(issued_at=ISSUED.isoformat()), sydney())
    [history] = [lines for title, lines in page.sections if title == "Payments and credits"]
    assert history == ["2025-03-05 payment: A$95.00 by card"]


def test_a_receipt_is_dated_the_clinics_day_of_payment():
    bill = detail()
    page = documents.receipt(bill, bill["history"][0], sydney())
    assert "by card on 2025-03-05 at Harbour Physio" in page.lead


def test_a_location_billing_does_not_know_yet_prints_utc_dates():
    where = Place(location="somewhere", therapist=None, patient="patient x")
    assert where.day(ISSUED) == "2025-03-04"


def test_the_admin_invoice_page_shows_the_clinics_issue_date_and_payment_time():
    bill = detail(issued_at=ISSUED.isoformat())
    html = render("invoice.html", b=bill, where=sydney(), methods=["card"], can_refund=False,
                  keys={"payments": "k1", "refunds": "k2"},
                  v=lambda key, field, default="": default, message=None, warn=False)
    assert '<td id="issued">2025-03-05</td>' in html
    assert "When (Australia/Sydney)" in html and "2025-03-05 10:30" in html
    assert "2025-03-04" not in html


def test_the_admin_invoice_list_shows_the_clinics_issue_date():
    row = {**detail(issued_at=ISSUED.isoformat()), "issued_on": "2025-03-05",
           "patient_name": "Ada Canarysson"}
    html = render("invoices.html", rows=[row], locations=[], names={}, statuses=[],
                  wanted={"location_id": None, "status": None, "patient_id": None},
                  message=None, warn=False)
    assert '<td class="issued">2025-03-05</td>' in html
