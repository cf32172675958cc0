"""The partners service's wiring: API, the per-partner feed (one consumer per source
service), and the dispatcher: webhook delivery and the NATS server's auth callout."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_infra.service.definition import (
    AdminTable,
    Runtime,
    ServiceDefinition,
    latest_rows,
)
from partners.adapters import admin_pages, contract_pages, delivery, feed, fhir_api, nats_auth
from partners.adapters.http import router


async def admin_tables(conn: AsyncConnection) -> Sequence[AdminTable]:
    p, d = feed.partners, feed.deliveries
    return [
        await latest_rows(conn, "Partners", ["Registered", "Name", "Webhook", "Event types"],
                          [p.c.registered_at, p.c.name, p.c.webhook_url, p.c.event_types],
                          newest_first=p.c.registered_at, empty="No partners yet."),
        await latest_rows(conn, "Deliveries", ["Created", "Event", "Status", "Attempts",
                                               "Last answer"],
                          [d.c.created_at, d.c.event_type, d.c.status, d.c.attempts,
                           d.c.last_status],
                          newest_first=d.c.created_at, empty="Nothing delivered yet."),
    ]


async def dispatcher(runtime: Runtime, stop: asyncio.Event) -> None:
    await asyncio.gather(delivery.run(runtime, stop), nats_auth.serve(runtime, stop))


SERVICE = ServiceDefinition(
    name="partners",
    description="Partner systems: grants, the per-partner feed and signed webhooks.",
    migrations=Path(__file__).parent / "migrations",
    routers=lambda runtime: [router(runtime), contract_pages.router(),
                             fhir_api.router(runtime.db)],
    subscriptions=lambda _runtime: feed.subscriptions(),
    admin_tables=admin_tables,
    admin_pages=admin_pages.router,
    admin_templates=Path(__file__).parent / "adapters" / "templates",
    admin_menu=admin_pages.MENU,
    dispatcher=dispatcher,
    answers_nats_auth=True,
    start_order=200,  # after the four services: the demo's ports stay where they were
)
