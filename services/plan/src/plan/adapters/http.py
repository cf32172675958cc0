"""Plan's HTTP API: the caseload and the live state of each episode's workflow."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel

from kinetic_contracts.problems import NotFoundError
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import Staff
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


CLINICIANS = (Role.THERAPIST, Role.OPERATOR)


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["plan"], route_class=AuditedRoute)

    async def entry(request: Request, episode_id: UUID, principal: Principal) -> dict[str, Any]:
        row = await fetch_one(runtime.db, caseload, caseload.c.episode_id, episode_id, principal,
                              EpisodeNotFoundError(f"episode {episode_id} not found"),
                              location=caseload.c.location_id, roles=CLINICIANS)
        note(request).patient_id, note(request).location_id = row["patient_id"], row["location_id"]
        return row

    @api.get("/episodes", response_model=list[CaseloadEntry],
             summary="The caseload at your locations", openapi_extra=audited("list", "episode"))
    async def list_episodes(principal: Staff(*CLINICIANS)) -> list[dict[str, Any]]:
        return await fetch_all(runtime.db, caseload, principal, caseload.c.opened_at.desc(),
                               location=caseload.c.location_id, roles=CLINICIANS)

    @api.get("/episodes/{episode_id}", response_model=CaseloadEntry, summary="One episode",
             openapi_extra=audited("read", "episode"))
    async def get_episode(request: Request, episode_id: UUID, principal: Staff(*CLINICIANS)
                          ) -> dict[str, Any]:
        return await entry(request, episode_id, principal)

    @api.get("/episodes/{episode_id}/workflow", response_model=WorkflowState,
             summary="Where the episode's EpisodeOfCareWorkflow stands",
             openapi_extra=audited("read", "episode_workflow"))
    async def get_workflow(request: Request, episode_id: UUID, principal: Staff(*CLINICIANS)
                           ) -> WorkflowState:
        row = await entry(request, episode_id, principal)
        client = await temporal_client(runtime)
        handle = client.get_workflow_handle(row["workflow_id"])
        status: EpisodeOfCareStatus = await handle.query(EpisodeOfCareWorkflow.status)
        return WorkflowState(workflow_id=row["workflow_id"], stage=status.stage)

    return api
