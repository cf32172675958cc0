"""What a care plan says (issue #7 item 1): its stages with their exit criteria and target
dates (a stage's exit criteria are its milestones), the exercise prescriptions, the measures
it tracks against their baselines, the discharge criteria and the expected course.

The same model is drafted from the evaluation, edited by the therapist while the plan is a
draft and revised once it is active; the plan aggregate (``plan.domain.plan``) keeps its
history. Pure.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kinetic_contracts.assessment.v1.events import EpisodeType
from plan.domain.criteria import BaselineRequiredError, Criterion
from plan.domain.prescription import Prescription
from plan.domain.stages import Stage
from plan.domain.stalls import MeasureRule, Milestone


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Baseline(_Frozen):
    """A measure the stall rules track, with the rule it is read by and its value at the
    initial evaluation."""

    rule: MeasureRule
    value: float = Field(allow_inf_nan=False)

    @property
    def key(self) -> str:
        """The score's key in ``outcome.measured`` scores."""
        return self.rule.score or self.rule.measure


class PlanContent(_Frozen):
    episode_type: EpisodeType
    primary: Baseline  # the primary PROM (LEFS in §5): STALL-1 reads it
    tracked: tuple[Baseline, ...] = ()  # NPRS per context and the other PROMs
    stages: tuple[Stage, ...] = Field(min_length=1)
    prescriptions: tuple[Prescription, ...] = ()
    discharge_criteria: tuple[Criterion, ...] = ()
    # The baseline each "at least +N from baseline" criterion is judged against, by id
    # (``require_gain_baselines``).
    criterion_baselines: dict[str, Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=dict)
    expected_sessions: int | None = Field(default=None, ge=1, le=200)
    sessions_per_week: float = Field(default=1, gt=0, le=7)
    target_date: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PlanContent:
        self.all_criteria()  # refuses two different criteria under one id
        codes = [s.code for s in self.stages]
        if len(set(codes)) != len(codes):
            raise ValueError("two stages have the same code")
        exercises = [p.exercise for p in self.prescriptions]
        if len(set(exercises)) != len(exercises):
            raise ValueError("an exercise is prescribed twice; change its parameters instead")
        return self

    def all_criteria(self) -> tuple[Criterion, ...]:
        """Every criterion once: the stages' exit criteria and the discharge criteria (the
        last stage's exit criteria are usually the discharge criteria themselves)."""
        seen: dict[str, Criterion] = {}
        for c in (*(c for s in self.stages for c in s.exit_criteria),
                  *self.discharge_criteria):
            if c.id in seen and seen[c.id] != c:
                raise ValueError(f"two different criteria have the id {c.id!r}")
            seen[c.id] = c
        return tuple(seen.values())

    def gains_without_baseline(self) -> tuple[Criterion, ...]:
        """Criteria that ask for a gain from baseline ("and at least +9") with no baseline
        in ``criterion_baselines``: no result could ever be judged against them."""
        return tuple(c for c in self.all_criteria()
                     if c.min_gain is not None and c.id not in self.criterion_baselines)

    def criterion(self, criterion_id: str) -> Criterion | None:
        return next((c for c in self.all_criteria() if c.id == criterion_id), None)

    def stage_position(self, code: str) -> int:
        return next(i for i, s in enumerate(self.stages, start=1) if s.code == code)

    def milestones(self, met: set[str]) -> tuple[Milestone, ...]:
        """Each stage's exit criteria, due on the stage's target date (a stage without one
        has no due milestones), for the stall rules."""
        return tuple(Milestone(id=c.id, stage=i, target_date=s.target_date, met=c.id in met)
                     for i, s in enumerate(self.stages, start=1) if s.target_date
                     for c in s.exit_criteria)

    def prescription(self, exercise: str) -> Prescription | None:
        return next((p for p in self.prescriptions if p.exercise == exercise), None)


def require_gain_baselines(content: PlanContent) -> None:
    """Refuse (422) a plan with a "+N from baseline" criterion and no baseline for it.

    Such a criterion fails every judgement: each session logging its score would be refused
    and the episode's progress check could never pass. The plan's decisions call this when a
    plan is drafted, edited or activated; it is not a validator of ``PlanContent`` because
    the plans stored before the check existed must still load (and be corrected)."""
    missing = content.gains_without_baseline()
    if missing:
        first = missing[0]
        raise BaselineRequiredError(
            f"{first.label} [{first.id}] asks for a gain from baseline: give its baseline in "
            f"criterion_baselines, or drop the gain", criterion=first.id,
            criteria=[c.id for c in missing])
