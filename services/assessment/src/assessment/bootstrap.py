"""Assessment's wiring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from assessment.adapters import admin_pages, drafts, intake
from assessment.adapters.http import router
from assessment.adapters.http_evaluations import router as evaluations_router
from assessment.adapters.projections import clinic, evaluations
from kinetic_infra.service.definition import AdminTable, ServiceDefinition, latest_rows


async def admin_tables(conn: AsyncConnection) -> Sequence[AdminTable]:
    e = intake.episodes
    return [await latest_rows(
        conn, "Episodes and their evaluation", ["Opened", "Symptom site", "Evaluation", "Episode"],
        [e.c.opened_at, e.c.symptom_site, e.c.evaluation_status, e.c.episode_id],
        newest_first=e.c.opened_at,
        empty="No episodes yet: they appear when the front desk opens one."),
        await latest_rows(
            conn, "Evaluations", ["Opened", "Kind", "Status", "Evaluation", "Episode"],
            [evaluations.c.opened_at, evaluations.c.kind, evaluations.c.status,
             evaluations.c.evaluation_id, evaluations.c.episode_id],
            newest_first=evaluations.c.opened_at, empty="No evaluations yet.")]


SERVICE = ServiceDefinition(
    name="assessment",
    description="Evaluations: history, outcome measures, findings, site versus driver.",
    migrations=Path(__file__).parent / "migrations",
    projections=[clinic],
    routers=lambda runtime: [router(runtime), evaluations_router(runtime)],
    subscriptions=drafts.subscriptions,
    admin_tables=admin_tables,
    admin_pages=admin_pages.router,
    admin_templates=Path(__file__).parent / "adapters" / "templates",
    admin_menu=admin_pages.MENU,
)
