"""Plan's HTTP API: the caseload and the live state of each episode's workflow."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from kinetic_contracts.problems import NotFoundError
from kinetic_infra.http.tenancy import TenantId
from kinetic_infra.read_models import fetch_all, fetch_one
from kinetic_infra.service.definition import Runtime
from kinetic_infra.temporal import temporal_client
from plan.adapters.caseload import caseload
from plan.application.workflows import EpisodeOfCareStatus, EpisodeOfCareWorkflow


class EpisodeNotFoundError(NotFoundError):
    type_slug = "episode-not-found"
    title = "No such episode of care"


class CaseloadEntry(BaseModel):
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    symptom_site: str
    plan_status: str
    workflow_id: str
    opened_at: datetime


class WorkflowState(BaseModel):
    workflow_id: str
    stage: str


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["plan"])

    async def entry(episode_id: UUID, tenant: UUID) -> dict[str, Any]:
        return await fetch_one(runtime.db, caseload, caseload.c.episode_id, episode_id, tenant,
                               EpisodeNotFoundError(f"episode {episode_id} not found"))

    @api.get("/episodes", response_model=list[CaseloadEntry], summary="The caseload")
    async def list_episodes(tenant: TenantId) -> list[dict[str, Any]]:
        return await fetch_all(runtime.db, caseload, tenant, caseload.c.opened_at.desc())

    @api.get("/episodes/{episode_id}", response_model=CaseloadEntry, summary="One episode")
    async def get_episode(episode_id: UUID, tenant: TenantId) -> dict[str, Any]:
        return await entry(episode_id, tenant)

    @api.get("/episodes/{episode_id}/workflow", response_model=WorkflowState,
             summary="Where the episode's EpisodeOfCareWorkflow stands")
    async def get_workflow(episode_id: UUID, tenant: TenantId) -> WorkflowState:
        row = await entry(episode_id, tenant)
        client = await temporal_client(runtime)
        handle = client.get_workflow_handle(row["workflow_id"])
        status: EpisodeOfCareStatus = await handle.query(EpisodeOfCareWorkflow.status)
        return WorkflowState(workflow_id=row["workflow_id"], stage=status.stage)

    return api
