"""The stage model of a plan (CLINICAL.md §3.3): ordered stages, each closed by exit criteria.
The four DEFAULT stages (calm, restore, build, perform) may be renamed, and a clinic may use
more. Pure: results, the clinician and the time are passed in.

Rules:
(a) a stage closes only when every one of its exit criteria has a result that passes (a
    criterion with no result has not passed);
(b) the clinician confirms the move: ``advance`` needs who confirmed it, and nothing here
    advances on its own, even when every criterion passes;
(c) moving back is allowed, to any earlier stage, with a reason.
The last stage's exit criteria are the discharge criteria: it ends with a discharge
(``discharge.py``), never with an advance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kinetic_contracts.problems import RuleViolationError
from plan.domain.criteria import (
    Criterion,
    CriterionResult,
    Text,
    Verdict,
    judge,
    unique_ids,
    unmet,
)

CODE = r"^[a-z][a-z0-9_]*$"


class ExitCriteriaUnmetError(RuleViolationError):
    type_slug = "exit-criteria-unmet"
    title = "The stage's exit criteria are not all met"


class ConfirmationRequiredError(RuleViolationError):
    type_slug = "stage-confirmation-required"
    title = "A clinician confirms every stage transition"


class LastStageError(RuleViolationError):
    type_slug = "last-stage"
    title = "The last stage ends with discharge, not with an advance"


class MoveBackReasonRequiredError(RuleViolationError):
    type_slug = "move-back-reason-required"
    title = "Moving back a stage needs a reason"


class NotAnEarlierStageError(RuleViolationError):
    type_slug = "not-an-earlier-stage"
    title = "A move back goes to an earlier stage"


class UnknownStageError(RuleViolationError):
    type_slug = "unknown-stage"
    title = "No such stage in the plan"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StageTemplate(_Frozen):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=100)
    goal: str = Field(min_length=1, max_length=500)


# §3.3 DEFAULT structure. The code is the stable key; the name is the clinic's to change.
DEFAULT_STAGES: tuple[StageTemplate, ...] = (
    StageTemplate(code="calm", name="Calm / protect",
                  goal="Settle irritability, educate, start loading"),
    StageTemplate(code="restore", name="Restore capacity",
                  goal="Range of motion, motor control, baseline strength of the driver"),
    StageTemplate(code="build", name="Build strength / load tolerance",
                  goal="Heavy progressive loading of driver and site"),
    StageTemplate(code="perform", name="Return to performance",
                  goal="Speed, power, sport/work-specific load"),
)


class Stage(_Frozen):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=100)
    goal: str = Field(default="", max_length=500)
    # When its exit criteria (its milestones) should be met; a milestone not met by then is
    # watched by STALL-4.
    target_date: date | None = None
    # At least one: a stage with no exit criteria would close on nothing (rule a).
    exit_criteria: tuple[Criterion, ...] = Field(min_length=1)

    @field_validator("exit_criteria")
    @classmethod
    def _unique(cls, v: tuple[Criterion, ...]) -> tuple[Criterion, ...]:
        unique_ids(v)
        return v


class StageTransition(_Frozen):
    from_stage: str
    to_stage: str
    direction: Literal["advance", "back"]
    by: UUID  # the clinician who confirmed it
    reason: str | None  # required for a move back
    # The exit criteria that had passed, for an advance: what the confirmation rested on.
    passed_criteria: tuple[str, ...] = ()
    at: datetime


class StageState(_Frozen):
    stages: tuple[Stage, ...] = Field(min_length=1)
    current: str
    history: tuple[StageTransition, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> StageState:
        codes = [s.code for s in self.stages]
        if len(set(codes)) != len(codes):
            raise ValueError("two stages share a code")
        if self.current not in codes:
            raise ValueError(f"no stage {self.current!r}")
        return self

    @property
    def position(self) -> int:
        """The current stage's position, from 1 (what milestones and STALL-1 refer to)."""
        return self.index(self.current) + 1

    @property
    def stage(self) -> Stage:
        return self.stages[self.index(self.current)]

    def index(self, code: str) -> int:
        for i, s in enumerate(self.stages):
            if s.code == code:
                return i
        raise UnknownStageError(f"the plan has no stage {code!r}", stage=code)


def default_stages(exit_criteria: Mapping[str, Sequence[Criterion]],
                   names: Mapping[str, str] | None = None) -> tuple[Stage, ...]:
    """The four DEFAULT stages with the plan's exit criteria for each (perform's are the
    discharge criteria) and, optionally, the clinic's names for them."""
    names = names or {}
    codes = {t.code for t in DEFAULT_STAGES}
    if unknown := (set(exit_criteria) | set(names)) - codes:
        raise UnknownStageError(f"no default stage {sorted(unknown)}", stages=sorted(unknown))
    return tuple(Stage(code=t.code, name=names.get(t.code, t.name), goal=t.goal,
                       exit_criteria=tuple(exit_criteria.get(t.code, ())))
                 for t in DEFAULT_STAGES)


def start(stages: Sequence[Stage]) -> StageState:
    """A plan begins in its first stage."""
    return StageState(stages=tuple(stages), current=stages[0].code)


def rename(state: StageState, code: str, name: str) -> StageState:
    i = state.index(code)
    # Validated again, so the new name keeps a name's limits.
    renamed = Stage.model_validate({**state.stages[i].model_dump(), "name": name})
    return state.model_copy(update={"stages": (*state.stages[:i], renamed,
                                               *state.stages[i + 1:])})


def exit_verdicts(state: StageState, results: Iterable[CriterionResult]) -> tuple[Verdict, ...]:
    """The current stage's exit criteria, each with its latest result and whether it passes."""
    return judge(state.stage.exit_criteria, results)


def advance(state: StageState, results: Iterable[CriterionResult], confirmed_by: UUID, *,
            at: datetime) -> StageState:
    """Close the current stage and open the next, as the clinician ``confirmed_by`` confirms.
    Refused (422) while any exit criterion lacks a passing result, listing them."""
    if confirmed_by is None:
        raise ConfirmationRequiredError("a stage advances only when a clinician confirms it")
    i = state.index(state.current)
    if i == len(state.stages) - 1:
        raise LastStageError(
            f"{state.stage.name} is the last stage: its exit criteria are the discharge "
            f"criteria, so it ends with a discharge", stage=state.current)
    verdicts = exit_verdicts(state, results)
    if missing := unmet(verdicts):
        raise ExitCriteriaUnmetError(
            f"{state.stage.name} cannot close; not met: "
            + "; ".join(f"{c.label} [{c.id}]" for c in missing),
            stage=state.current, unmet=[c.id for c in missing])
    nxt = state.stages[i + 1].code
    step = StageTransition(from_stage=state.current, to_stage=nxt, direction="advance",
                           by=confirmed_by, reason=None,
                           passed_criteria=tuple(v.criterion.id for v in verdicts), at=at)
    return state.model_copy(update={"current": nxt, "history": (*state.history, step)})


class _MoveBackReason(_Frozen):
    reason: Text


def move_back(state: StageState, reason: str | None, by: UUID, *, at: datetime,
              to: str | None = None) -> StageState:
    """Return to an earlier stage (by default the one before), with a reason (a flare, a
    criterion lost). The criteria of the stages between are judged again on the way up."""
    if reason is None or not reason.strip():
        raise MoveBackReasonRequiredError("say why the patient moves back a stage")
    reason = _MoveBackReason(reason=reason).reason
    if by is None:
        raise ConfirmationRequiredError("a stage moves back only when a clinician confirms it")
    i = state.index(state.current)
    target = state.stages[i - 1].code if to is None and i > 0 else to
    if target is None or state.index(target) >= i:
        raise NotAnEarlierStageError(
            f"{target or 'nothing'} is not before {state.current}", stage=state.current,
            to=target)
    step = StageTransition(from_stage=state.current, to_stage=target, direction="back", by=by,
                           reason=reason, at=at)
    return state.model_copy(update={"current": target, "history": (*state.history, step)})
