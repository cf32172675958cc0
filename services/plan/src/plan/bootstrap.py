"""Plan's wiring: API, caseload consumer and the Temporal worker for EpisodeOfCareWorkflow."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_infra.service.definition import AdminTable, ServiceDefinition, latest_rows
from plan.adapters import caseload, evaluations
from plan.adapters.http import router
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
    routers=lambda runtime: [router(runtime)],
    subscriptions=lambda runtime: [caseload.subscription(runtime),
                                   evaluations.subscription(runtime)],
    admin_tables=admin_tables,
    workflows=[EpisodeOfCareWorkflow],
)
