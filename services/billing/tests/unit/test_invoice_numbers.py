"""An invoice is numbered in the clinic's year of issue, the year its date prints: an evening
session in New York on 31 December is that year's, though it is already January in UTC."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing.application import billing
from billing.domain import invoice


@pytest.mark.parametrize(("zone", "year"), [("America/New_York", 2026), ("UTC", 2027),
                                            ("Asia/Tokyo", 2027)])
async def test_an_invoice_is_numbered_in_the_year_of_issue_where_the_clinic_is(
        monkeypatch: pytest.MonkeyPatch, zone: str, year: int) -> None:
    asked: list[int] = []
    issued: list[invoice.IssueInvoice] = []

    async def location_zone(conn: Any, location_id: Any) -> ZoneInfo:
        return ZoneInfo(zone)

    async def next_number(conn: Any, tenant_id: Any, year: int) -> str:
        asked.append(year)
        return f"{year}-000001"

    async def run(conn: Any, store: Any, stream: Any, aggregate: Any, command: Any,
                  ctx: Any) -> list[Any]:
        issued.append(command)
        return []

    monkeypatch.setattr(billing, "location_zone", location_zone)
    monkeypatch.setattr(billing, "next_number", next_number)
    monkeypatch.setattr(billing, "run", run)
    # 19:30 on 31 December in New York.
    now = datetime(2026, 12, 31, 19, 30, tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)
    assert now.year == 2027
    line = invoice.InvoiceLine(description="Treatment session (60 min)", amount=9500,
                               tax_rate_bp=0, tax=0)
    await billing.issue_invoice(
        None, None, billing.context(uuid.uuid4(), uuid.uuid4()),  # type: ignore[arg-type]
        invoice_id=uuid.uuid4(), kind="session", patient_id=uuid.uuid4(),
        location_id=uuid.uuid4(), lines=[line], currency="USD", terms_days=14, now=now)
    assert asked == [year]
    assert issued[0].issued.number == f"{year}-000001"
