"""Plan's HTTP API: the caseload, the live state of each episode's workflow, and closing an
episode that never had an active plan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.service import RPCError, RPCStatusCode

from kinetic_contracts.problems import NotFoundError
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.commands import run_command
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import Staff
from kinetic_infra.read_models import fetch_all, fetch_one
from kinetic_infra.service.definition import Runtime
from kinetic_infra.temporal import temporal_client
from plan.adapters.caseload import caseload
from plan.adapters.http_plans import clinician_id
from plan.application import plans
from plan.application.workflows import (
    DISCHARGED,
    EpisodeOfCareStatus,
    EpisodeOfCareWorkflow,
)
from plan.domain import plan
from plan.domain.criteria import Text
from plan.domain.discharge import Closure, ClosureReason


class EpisodeNotFoundError(NotFoundError):
    type_slug = "episode-not-found"
    title = "No such episode of care"


class EpisodeWorkflowNotFoundError(NotFoundError):
    """The episode is on the caseload and not over, yet Temporal has no workflow for it
    (deleted by hand, or a lost namespace): nothing to report rather than a guess."""

    type_slug = "episode-workflow-not-found"
    title = "The episode's workflow does not exist"


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


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ClosureReason
    free_text: Text = Field(description="Why, in words (kept in plan: the published discharge "
                                        "carries the reason code only)")


class ClosureOut(BaseModel):
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    plan_id: UUID | None = Field(description="The draft's, when one was drafted")
    status: str
    closure: Closure


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
        try:
            status: EpisodeOfCareStatus = await handle.query(EpisodeOfCareWorkflow.status)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            # No workflow: an episode that ended before plan heard it open never had one, and
            # a finished one is purged after Temporal's retention. Either way the plan's record
            # says how it ended, which is what the workflow's last query answered.
            async with runtime.db.read(principal.tenant_id) as conn:
                ended = await plans.ended(conn, runtime.store, episode_id, principal.tenant_id)
            if not ended:
                raise EpisodeWorkflowNotFoundError(
                    f"episode {episode_id} has no workflow running and its plan has not "
                    "ended") from exc
            return WorkflowState(workflow_id=row["workflow_id"], stage=DISCHARGED)
        return WorkflowState(workflow_id=row["workflow_id"], stage=status.stage)

    async def episode_ids(conn: AsyncConnection, state: plan.PlanState,
                          episode_id: UUID) -> dict[str, UUID] | None:
        """Who and where the episode is: from its plan, or, with none drafted, from the
        caseload."""
        if state is not None:
            return state.ids.as_dict()
        row = (await conn.execute(select(caseload.c.patient_id, caseload.c.location_id).where(
            caseload.c.episode_id == episode_id))).mappings().one_or_none()
        return None if row is None else {"episode_id": episode_id, **row}

    @api.post("/episodes/{episode_id}/close", response_model=ClosureOut,
              summary="Close an episode whose plan never became active (none was drafted, or "
                      "only a draft), with the reason: referred out, the patient withdrew, or "
                      "nothing to treat. Booking closes the episode; its workflow ends",
              openapi_extra=audited("close", "episode"))
    async def close_episode(request: Request, episode_id: UUID, body: CloseIn,
                            principal: Staff(*CLINICIANS)) -> dict[str, Any]:
        plan_id = plans.plan_id_for(episode_id)

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            state, _ = await plans.loaded(conn, runtime.store, plan_id, principal.tenant_id)
            ids = await episode_ids(conn, state, episode_id)
            if ids is None or not principal.can_at(ids["location_id"], CLINICIANS):
                raise EpisodeNotFoundError(f"episode {episode_id} not found")
            note(request).patient_id, note(request).location_id = (ids["patient_id"],
                                                                   ids["location_id"])
            note(request).resource_id = str(episode_id)
            await plans.run(conn, runtime.store, plan.CloseEpisode(
                plan_id=plan_id, now=datetime.now(UTC), **ids, reason=body.reason,
                free_text=body.free_text, by=clinician_id(principal)),
                plans.context_for(principal.tenant_id, new_id(),
                                  location_id=ids["location_id"], episode_id=episode_id))
            state, _ = await plans.loaded(conn, runtime.store, plan_id, principal.tenant_id)
            assert state is not None and state.closure is not None
            return {**state.ids.as_dict(), "status": state.status, "closure": state.closure,
                    "plan_id": plan_id if isinstance(state, plan.Plan) else None}

        return await run_command(runtime.db, work, tenant_id=principal.tenant_id)

    return api
