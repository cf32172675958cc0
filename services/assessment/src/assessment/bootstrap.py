"""Assessment's wiring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from assessment.adapters import intake
from assessment.adapters.http import router
from kinetic_infra.service.definition import AdminTable, ServiceDefinition, latest_rows


async def admin_tables(conn: AsyncConnection) -> Sequence[AdminTable]:
    e = intake.episodes
    return [await latest_rows(
        conn, "Episodes awaiting evaluation", ["Opened", "Symptom site", "Evaluation", "Episode"],
        [e.c.opened_at, e.c.symptom_site, e.c.evaluation_status, e.c.episode_id],
        newest_first=e.c.opened_at,
        empty="No episodes yet: they appear when the front desk opens one.")]


SERVICE = ServiceDefinition(
    name="assessment",
    description="Evaluations: history, outcome measures, findings, site versus driver.",
    migrations=Path(__file__).parent / "migrations",
    routers=lambda runtime: [router(runtime)],
    subscriptions=lambda _runtime: [intake.subscription()],
    admin_tables=admin_tables,
)
