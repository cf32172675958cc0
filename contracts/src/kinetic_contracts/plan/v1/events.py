"""Plan's public events, version 1: what the other services and partners learn about an
episode's plan of care. Identifiers, codes and numbers only; clinical free text stays in
plan's own events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal
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
    rules: list[str] = Field(default_factory=list, examples=[["STALL-1"]],
                             description="The progress-stalled rules that fired (CLINICAL.md "
                                         "§3.2); empty for a scheduled reassessment")
    numbers: dict[str, Any] = Field(
        default_factory=dict, examples=[{"STALL-1.sessions_used": 4,
                                         "STALL-1.improvement": 3}],
        description="The values that fired each rule, keyed '<rule>.<name>'")
    ruleset_version: int | None = Field(default=None, ge=1,
                                        description="The organization's plan rule set used")


class EpisodeDischarged(EventData):
    """The episode of care ends: every discharge criterion is met, or a clinician overrode
    (with a reason code; the free text stays in plan), or the episode ended before any plan
    of care was active (``ended_before_plan`` says why)."""

    event_type: ClassVar[str] = "kinetic.plan.episode.discharged.v1"
    aggregate_id_field: ClassVar[str] = "episode_id"

    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    # Optional only because it was added within v1: plan sends it whenever a plan was drafted.
    plan_id: UUID | None = Field(default=None, description="The plan the patient was "
                                 "discharged from")
    discharged_at: datetime
    basis: Literal["criteria_met", "override"] | None = None
    override_reason: Literal["patient_goal_met_early", "patient_withdrew", "referred_out",
                             "plateau_accepted", "other"] | None = None
    discharged_by: UUID | None = None
    # Optional because it was added within v1.
    ended_before_plan: Literal["referred_out", "patient_withdrew", "nothing_to_treat"] | None = (
        Field(default=None, description=(
            "Set when the episode ended before any plan of care was active (none was drafted, "
            "or only a draft): why. basis and override_reason are then absent, as there were "
            "no criteria to meet or override; plan_id is the draft's, absent when none was "
            "drafted; discharged_by is absent when assessment's referral out ended it")))


class _PlanStep(EventData):
    aggregate_id_field: ClassVar[str] = "plan_id"

    plan_id: UUID
    episode_id: UUID
    patient_id: UUID
    location_id: UUID


class MilestoneMet(_PlanStep):
    """A milestone (a stage's exit criterion) has a passing result for the first time."""

    event_type: ClassVar[str] = "kinetic.plan.milestone.met.v1"

    milestone_id: str = Field(examples=["hip_abduction_lsi_85"])
    stage: str = Field(examples=["restore"])
    target_date: date | None = None
    met_at: datetime


class MilestoneOverdue(_PlanStep):
    """A milestone's target date passed without a passing result."""

    event_type: ClassVar[str] = "kinetic.plan.milestone.overdue.v1"

    milestone_id: str = Field(examples=["hip_abduction_lsi_85"])
    stage: str = Field(examples=["restore"])
    target_date: date
    overdue_at: datetime


class StageAdvanced(_PlanStep):
    """Every exit criterion of a stage passed and the clinician confirmed the next stage."""

    event_type: ClassVar[str] = "kinetic.plan.stage.advanced.v1"

    from_stage: str = Field(examples=["calm"])
    to_stage: str = Field(examples=["restore"])
    advanced_by: UUID
    advanced_at: datetime


class SessionLogged(_PlanStep):
    """The therapist logged a treatment session (what was done stays in plan)."""

    event_type: ClassVar[str] = "kinetic.plan.session.logged.v1"

    appointment_id: UUID
    session_number: int = Field(ge=1, description="The episode's nth completed session")
    logged_at: datetime


class ReassessmentResolved(_PlanStep):
    """The clinician recorded the outcome of a due reassessment; the plan continues."""

    event_type: ClassVar[str] = "kinetic.plan.reassessment.resolved.v1"

    outcome: Literal["revise_driver", "revise_plan", "continue_with_reason", "refer_out"]
    rules: list[str] = Field(examples=[["STALL-1"]])
    resolved_by: UUID
    resolved_at: datetime


EVENTS: list[type[EventData]] = [PlanCreated, PlanRevised, ReassessmentDue, EpisodeDischarged,
                                 MilestoneMet, MilestoneOverdue, StageAdvanced, SessionLogged,
                                 ReassessmentResolved]
