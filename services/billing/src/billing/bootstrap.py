"""Billing's wiring: API, the provider's webhook, consumers, the inline read models and the
Temporal worker for SessionChargeWorkflow."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from billing.adapters import accounts, admin_pages, charges, directory, payment_provider, seed
from billing.adapters.http import router
from billing.adapters.projections import billing, invoices
from billing.application.workflows import SessionChargeWorkflow
from kinetic_infra.service.definition import AdminTable, ServiceDefinition, latest_rows


async def admin_tables(conn: AsyncConnection) -> Sequence[AdminTable]:
    a, i = accounts.accounts, invoices
    return [
        await latest_rows(conn, "Invoices", ["Issued", "Number", "Kind", "Total", "Currency",
                                             "Status"],
                          [i.c.issued_at, i.c.number, i.c.kind, i.c.total, i.c.currency,
                           i.c.status],
                          newest_first=i.c.issued_at, empty="No invoices yet."),
        await latest_rows(conn, "Patient accounts", ["Opened", "Patient", "Episodes"],
                          [a.c.opened_at, a.c.patient_id, a.c.episodes],
                          newest_first=a.c.opened_at, empty="No accounts yet."),
    ]


SERVICE = ServiceDefinition(
    name="billing",
    description="Flat-fee self-pay sessions: prices, invoices, payments, accounts.",
    migrations=Path(__file__).parent / "migrations",
    projections=[billing],
    routers=lambda runtime: [router(runtime), payment_provider.router(runtime)],
    subscriptions=lambda runtime: [accounts.subscription(), *directory.subscriptions(),
                                   *charges.subscriptions(runtime)],
    admin_tables=admin_tables,
    admin_pages=admin_pages.router,
    admin_templates=Path(__file__).parent / "adapters" / "templates",
    admin_menu=admin_pages.MENU,
    workflows=[SessionChargeWorkflow],
    activities=charges.activities,
    seed=seed.seed_demo,
    secret_settings=("KINETIC_BILLING_WEBHOOK_SECRET",),
)
