"""Assessment's HTTP API: the episodes waiting for (or past) their evaluation."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from assessment.adapters.intake import episodes
from kinetic_contracts.problems import NotFoundError
from kinetic_infra.auth.principal import Role
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import Staff
from kinetic_infra.read_models import fetch_all, fetch_one
from kinetic_infra.service.definition import Runtime


class EpisodeNotFoundError(NotFoundError):
    type_slug = "episode-not-found"
    title = "No such episode of care"


class EpisodeOut(BaseModel):
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    symptom_site: str
    evaluation_status: str = Field(description=(
        "Where the episode's evaluation stands: an open draft if it has one "
        "(initial_evaluation_in_progress, reassessment_in_progress), else how its latest "
        "evaluation ended (evaluated, reassessed, referred_out), else "
        "awaiting_initial_evaluation"), examples=["evaluated"])
    opened_at: datetime


CLINICIANS = (Role.THERAPIST, Role.OPERATOR)


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["assessment"], route_class=AuditedRoute)

    @api.get("/episodes", response_model=list[EpisodeOut],
             summary="Episodes of care at your locations and where their evaluation stands",
             openapi_extra=audited("list", "episode"))
    async def list_episodes(principal: Staff(*CLINICIANS)) -> list[dict[str, Any]]:
        return await fetch_all(runtime.db, episodes, principal, episodes.c.opened_at.desc(),
                               location=episodes.c.location_id, roles=CLINICIANS)

    @api.get("/episodes/{episode_id}", response_model=EpisodeOut, summary="One episode of care",
             openapi_extra=audited("read", "episode"))
    async def get_episode(request: Request, episode_id: UUID, principal: Staff(*CLINICIANS)
                          ) -> dict[str, Any]:
        row = await fetch_one(runtime.db, episodes, episodes.c.episode_id, episode_id, principal,
                              EpisodeNotFoundError(f"episode {episode_id} not found"),
                              location=episodes.c.location_id, roles=CLINICIANS)
        note(request).patient_id, note(request).location_id = row["patient_id"], row["location_id"]
        return row

    return api
