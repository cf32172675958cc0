"""Billing's wiring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.adapters import accounts
from billing.adapters.http import router
from kinetic_infra.service.definition import AdminTable, ServiceDefinition


async def admin_tables(conn: AsyncConnection) -> Sequence[AdminTable]:
    a = accounts.accounts
    rows = (await conn.execute(
        select(a.c.opened_at, a.c.patient_id, a.c.episodes)
        .order_by(a.c.opened_at.desc()).limit(50))).all()
    return [AdminTable("Patient accounts", ["Opened", "Patient", "Episodes"],
                       [(r[0].strftime("%Y-%m-%d %H:%M"), *r[1:]) for r in rows],
                       "No accounts yet.")]


SERVICE = ServiceDefinition(
    name="billing",
    description="Flat-fee self-pay sessions: prices, invoices, payments, accounts.",
    migrations=Path(__file__).parent / "migrations",
    routers=lambda runtime: [router(runtime)],
    subscriptions=lambda _runtime: [accounts.subscription()],
    admin_tables=admin_tables,
)
