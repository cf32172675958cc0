"""EpisodeOfCareWorkflow: one per episode, started when booking opens the episode.

This first slice holds the episode's place in the plan lifecycle: it waits for the initial
evaluation (signal ``evaluation_completed``) and answers ``status`` queries. Milestone
timers, stall rules and discharge gating build on it (CLINICAL.md §3).
Deterministic by construction: no clock, randomness or I/O here.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel
from temporalio import workflow


class EpisodeOfCareInput(BaseModel):
    tenant_id: UUID
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    symptom_site: str
    goal_target_date: date | None = None
    opened_at: datetime


class EpisodeOfCareStatus(BaseModel):
    episode_id: UUID
    stage: str


AWAITING_EVALUATION = "awaiting_evaluation"
EVALUATED = "evaluated"


def workflow_id(episode_id: UUID) -> str:
    return f"episode-of-care-{episode_id}"


@workflow.defn(name="EpisodeOfCareWorkflow")
class EpisodeOfCareWorkflow:
    def __init__(self) -> None:
        self._stage = AWAITING_EVALUATION
        self._episode_id: UUID | None = None

    @workflow.run
    async def run(self, inp: EpisodeOfCareInput) -> EpisodeOfCareStatus:
        self._episode_id = inp.episode_id
        await workflow.wait_condition(lambda: self._stage != AWAITING_EVALUATION)
        return EpisodeOfCareStatus(episode_id=inp.episode_id, stage=self._stage)

    @workflow.signal(name="evaluation_completed")
    def evaluation_completed(self) -> None:
        self._stage = EVALUATED

    @workflow.query(name="status")
    def status(self) -> EpisodeOfCareStatus:
        assert self._episode_id is not None
        return EpisodeOfCareStatus(episode_id=self._episode_id, stage=self._stage)
