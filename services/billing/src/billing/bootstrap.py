"""Billing's wiring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from billing.adapters import accounts
from billing.adapters.http import router
from kinetic_infra.service.definition import AdminTable, ServiceDefinition, latest_rows


async def admin_tables(conn: AsyncConnection) -> Sequence[AdminTable]:
    a = accounts.accounts
    return [await latest_rows(
        conn, "Patient accounts", ["Opened", "Patient", "Episodes"],
        [a.c.opened_at, a.c.patient_id, a.c.episodes],
        newest_first=a.c.opened_at, empty="No accounts yet.")]


SERVICE = ServiceDefinition(
    name="billing",
    description="Flat-fee self-pay sessions: prices, invoices, payments, accounts.",
    migrations=Path(__file__).parent / "migrations",
    routers=lambda runtime: [router(runtime)],
    subscriptions=lambda _runtime: [accounts.subscription()],
    admin_tables=admin_tables,
)
