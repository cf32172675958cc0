"""Plan's wiring: API, caseload consumer and the Temporal worker for EpisodeOfCareWorkflow."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_infra.service.definition import AdminTable, ServiceDefinition, latest_rows
from plan.adapters import (
    admin_pages,
    caseload,
    episode_watch,
    evaluations,
    referrals,
    sessions,
)
from plan.adapters.http import router
from plan.adapters.http_plans import router as plans_router
from plan.adapters.projections import plan_status
from plan.application.workflows import EpisodeOfCareWorkflow


async def admin_tables(conn: AsyncConnection) -> Sequence[AdminTable]:
    c = caseload.caseload
    return [await latest_rows(
        conn, "Caseload", ["Opened", "Symptom site", "Plan", "Workflow"],
        [c.c.opened_at, c.c.symptom_site, c.c.plan_status, c.c.workflow_id],
        newest_first=c.c.opened_at, empty="No episodes yet.")]


SERVICE = ServiceDefinition(
    name="plan",
    description="Care plans, milestones, progression and the EpisodeOfCareWorkflow.",
    migrations=Path(__file__).parent / "migrations",
    projections=[plan_status],
    routers=lambda runtime: [router(runtime), plans_router(runtime)],
    subscriptions=lambda runtime: [caseload.subscription(runtime),
                                   evaluations.subscription(runtime),
                                   referrals.subscription(runtime),
                                   sessions.subscription(),
                                   *episode_watch.subscriptions(runtime)],
    admin_tables=admin_tables,
    admin_pages=admin_pages.router,
    admin_templates=Path(__file__).parent / "adapters" / "templates",
    admin_menu=admin_pages.MENU,
    workflows=[EpisodeOfCareWorkflow],
    activities=episode_watch.activities,
)
