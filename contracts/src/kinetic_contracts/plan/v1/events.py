"""Plan's public events, version 1: what the other services and partners learn about an
episode's plan of care. Identifiers, codes and numbers only; clinical free text stays in
plan's own events."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from kinetic_contracts.envelope import EventData


class _PlanOfCare(EventData):
    aggregate_id_field: ClassVar[str] = "plan_id"

    plan_id: UUID
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    sessions_per_week: float = Field(gt=0, le=7, description="Expected session frequency")
    expected_sessions: int = Field(ge=1, le=200)
    target_date: date


class PlanCreated(_PlanOfCare):
    event_type: ClassVar[str] = "kinetic.plan.plan.created.v1"

    created_at: datetime


class PlanRevised(_PlanOfCare):
    event_type: ClassVar[str] = "kinetic.plan.plan.revised.v1"

    revision: int = Field(ge=2)
    revised_at: datetime


class ReassessmentDue(EventData):
    """The episode needs a reassessment: a milestone date passed, progress stalled, or the
    scheduled interval elapsed (CLINICAL.md §3)."""

    event_type: ClassVar[str] = "kinetic.plan.reassessment.due.v1"
    aggregate_id_field: ClassVar[str] = "episode_id"

    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    reason: Literal["progress_stalled", "milestone_due", "scheduled", "pain_flare"]
    due_by: date
    raised_at: datetime


class EpisodeDischarged(EventData):
    """The discharge criteria are met: the episode of care ends."""

    event_type: ClassVar[str] = "kinetic.plan.episode.discharged.v1"
    aggregate_id_field: ClassVar[str] = "episode_id"

    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    discharged_at: datetime


EVENTS: list[type[EventData]] = [PlanCreated, PlanRevised, ReassessmentDue, EpisodeDischarged]
