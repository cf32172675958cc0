"""Assessment's HTTP API: the episodes waiting for (or past) their evaluation."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from assessment.adapters.intake import episodes
from kinetic_contracts.problems import NotFoundError
from kinetic_infra.http.tenancy import TenantId
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
    evaluation_status: str
    opened_at: datetime


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["assessment"])

    @api.get("/episodes", response_model=list[EpisodeOut],
             summary="Episodes of care and where their evaluation stands")
    async def list_episodes(tenant: TenantId) -> list[dict[str, Any]]:
        return await fetch_all(runtime.db, episodes, tenant, episodes.c.opened_at.desc())

    @api.get("/episodes/{episode_id}", response_model=EpisodeOut, summary="One episode of care")
    async def get_episode(episode_id: UUID, tenant: TenantId) -> dict[str, Any]:
        return await fetch_one(runtime.db, episodes, episodes.c.episode_id, episode_id, tenant,
                               EpisodeNotFoundError(f"episode {episode_id} not found"))

    return api
