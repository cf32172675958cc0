"""The care plan of one episode, as an event-sourced aggregate (``decide``/``evolve``).

Drafted from the initial evaluation, edited by the therapist, activated once it states an end
point (§3.1), then lived: sessions logged with the progression each one proposes (§3.4),
results that meet milestones, stall checks that call for a reassessment (§3.2) which the
clinician must answer before the plan goes on, stage advances the clinician confirms (§3.3)
and a discharge only on the criteria or an explicit override (§3.5). An episode that ends
before its plan is active (referred out, the patient withdrew, nothing to treat) is closed
with its reason, from a draft or with no plan at all; its stream then holds only that.

Pure: every fact from outside (the rule set, today's date, the session's number, what was
measured) arrives in the command. The rules live in the sibling modules; this module keeps
the record and says which rule-set version each decision used.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
import re
from typing import Annotated, ClassVar, Literal, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kinetic_contracts.assessment.v1.events import FindingIndex, MeasureScore
from kinetic_contracts.plan.v1 import events as public
from kinetic_contracts.problems import ConflictError, NotFoundError, RuleViolationError
from plan.domain import discharge, progression, scales, stages
from plan.domain.content import Baseline, PlanContent, require_gain_baselines
from plan.domain.discharge import Closure
from plan.domain.exercises import UnknownExerciseError
from plan.domain.criteria import Criterion, CriterionResult, Text, judge, read_value
from plan.domain.prescription import Prescription, SessionPerformance
from plan.domain.rules import PlanRules
from plan.domain.stalls import (
    EpisodeProgress,
    Milestone,
    ReassessmentDecision,
    SessionReading,
    StallFlag,
    StallThresholds,
    TrackedMeasure,
    evaluate_stalls,
    stall_3_runs,
    stall_4,
)

Status = Literal["draft", "active", "discharged"]


# -- errors --------------------------------------------------------------------------------

class PlanNotFoundError(NotFoundError):
    type_slug = "plan-not-found"
    title = "The episode has no care plan yet"


class PlanStatusError(ConflictError):
    type_slug = "plan-status"
    title = "The plan is not in a state that allows this"


class ReassessmentOutstandingError(ConflictError):
    type_slug = "reassessment-outstanding"
    title = "A reassessment is due: record its outcome before the plan goes on"


class NoReassessmentDueError(RuleViolationError):
    type_slug = "no-reassessment-due"
    title = "No reassessment is due"


class SessionAlreadyLoggedError(ConflictError):
    type_slug = "session-already-logged"
    title = "This session is already logged"


class UnprescribedExerciseError(RuleViolationError):
    type_slug = "unprescribed-exercise"
    title = "The exercise is not in the plan's prescriptions"


class UnknownCriterionError(RuleViolationError):
    type_slug = "unknown-criterion"
    title = "The plan has no such criterion"


class ProposalSupersededError(ConflictError):
    type_slug = "proposal-superseded"
    title = "The plan moved on since this session was logged: its proposals no longer apply"


class StageChangedError(ConflictError):
    type_slug = "stage-changed"
    title = "The plan is no longer in the stage you advanced from"


class SessionNotLoggedError(RuleViolationError):
    type_slug = "session-not-logged"
    title = "The session has not been logged"


class NotATaskCriterionError(RuleViolationError):
    type_slug = "criterion-not-a-task"
    title = ("The criterion reads a scored questionnaire or a recorded finding, not a task the "
             "therapist records")


# -- the session log ------------------------------------------------------------------------

class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# JSON as FastAPI parses it accepts NaN and Infinity; refused here they are a 422 naming the
# field instead of a failure deep in the decision.
Finite = Annotated[float, Field(allow_inf_nan=False)]


class ExerciseDone(_Frozen):
    """One prescribed exercise as done today: the actual sets, reps and load, with RPE and
    pain (pain-monitoring model)."""

    exercise: str
    reps_per_set: tuple[int, ...] = Field(min_length=1, max_length=20)
    load_kg: float = Field(default=0, ge=0, le=500)
    rpe: float = Field(ge=0, le=10)
    pain_during: int = Field(ge=0, le=10)


class ManualTherapy(_Frozen):
    """Manual therapy is recorded only on the session, linked to an active-program goal
    (§3.3 d): it serves the loading, never replaces it."""

    technique: Text
    goal: str = Field(min_length=1, max_length=100,
                      description="The id of the active criterion it serves")


class SessionLog(_Frozen):
    what_was_done: str = Field(default="", max_length=4000)
    exercises: tuple[ExerciseDone, ...] = ()
    # Asked at the start of the session about the week before (§3.4's regress row).
    morning_worse_than_last_week: bool = False
    # Known the day after; None until the patient says (progress waits for it).
    settled_next_morning: bool | None = None
    # Each within its measure's scale too, but that is the decision's check (``scales``), not
    # the model's: a session logged before the check existed must still load.
    quick_measures: dict[str, Finite] = Field(default_factory=dict,
                                              examples=[{"nprs": 3, "psfs": 5.3}])
    manual_therapy: ManualTherapy | None = None

    @model_validator(mode="after")
    def _one_entry_per_exercise(self) -> SessionLog:
        codes = [e.exercise for e in self.exercises]
        if len(set(codes)) != len(codes):
            raise ValueError("an exercise is logged twice in one session")
        return self


class LoggedSession(_Frozen):
    appointment_id: UUID
    number: int
    log: SessionLog
    proposals: tuple[progression.Proposal, ...]
    logged_by: UUID
    logged_at: datetime
    decided: bool = False  # the therapist accepted or changed the proposals


class OpenReassessment(_Frozen):
    flags: tuple[StallFlag, ...]
    keys: tuple[str, ...]
    raised_at: datetime
    ruleset_version: int


class Discharge(_Frozen):
    basis: Literal["criteria_met", "override"]
    override: discharge.DischargeOverride | None
    unmet: tuple[str, ...]
    by: UUID
    at: datetime


# -- events (internal; the ones partners see say so in ``to_public``) ---------------------

class _Ids(_Frozen):
    episode_id: UUID
    patient_id: UUID
    location_id: UUID

    def as_dict(self) -> dict[str, UUID]:
        return {"episode_id": self.episode_id, "patient_id": self.patient_id,
                "location_id": self.location_id}


class _Event(_Frozen):
    plan_id: UUID


class _Course(Protocol):
    """What plan.created/revised tell booking: how often, how many, until when."""

    @property
    def sessions_per_week(self) -> float: ...
    @property
    def expected_sessions(self) -> int | None: ...
    @property
    def target_date(self) -> date | None: ...


def _revised(plan_id: UUID, ids: _Ids, course: _Course, revision: int, at: datetime
             ) -> public.PlanRevised:
    return public.PlanRevised(**ids.as_dict(), plan_id=plan_id,
                              sessions_per_week=course.sessions_per_week,
                              expected_sessions=course.expected_sessions or 1,
                              target_date=course.target_date or at.date(), revision=revision,
                              revised_at=at)


class PlanDrafted(_Event):
    event_type: ClassVar[str] = "kinetic.plan.plan.drafted.v1"
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    evaluation_id: UUID
    therapist_id: UUID | None = None
    content: PlanContent
    ruleset_version: int
    drafted_on: date
    drafted_at: datetime


class PlanEdited(_Event):
    """The draft changed, or (once active) a revision: prescriptions, stages, criteria."""

    event_type: ClassVar[str] = "kinetic.plan.plan.edited.v1"
    content: PlanContent
    revision: int  # 0 while a draft
    reason: str = ""
    by: UUID
    at: datetime
    ids: _Ids | None = None

    def to_public(self) -> public.PlanRevised | None:
        if self.revision < 2 or self.ids is None:
            return None
        return _revised(self.plan_id, self.ids, self.content, self.revision, self.at)


class PlanActivated(_Event):
    event_type: ClassVar[str] = "kinetic.plan.plan.activated.v1"
    ids: _Ids
    sessions_per_week: float
    expected_sessions: int
    target_date: date
    by: UUID
    at: datetime

    def to_public(self) -> public.PlanCreated:
        return public.PlanCreated(**self.ids.as_dict(), plan_id=self.plan_id,
                                  sessions_per_week=self.sessions_per_week,
                                  expected_sessions=self.expected_sessions,
                                  target_date=self.target_date, created_at=self.at)


class SessionRecorded(_Event):
    event_type: ClassVar[str] = "kinetic.plan.session.recorded.v1"
    ids: _Ids
    session: LoggedSession
    ruleset_version: int

    def to_public(self) -> public.SessionLogged:
        return public.SessionLogged(**self.ids.as_dict(), plan_id=self.plan_id,
                                    appointment_id=self.session.appointment_id,
                                    session_number=self.session.number,
                                    logged_at=self.session.logged_at)


class NextMorningRecorded(_Event):
    event_type: ClassVar[str] = "kinetic.plan.session.next_morning_recorded.v1"
    appointment_id: UUID
    settled: bool
    proposals: tuple[progression.Proposal, ...]
    ruleset_version: int
    at: datetime


class ProgressionDecided(_Event):
    """The therapist accepted the proposals or set other parameters: a plan revision."""

    event_type: ClassVar[str] = "kinetic.plan.progression.decided.v1"
    ids: _Ids
    appointment_id: UUID
    prescriptions: tuple[Prescription, ...]  # the plan's prescriptions after the decision
    changed: tuple[str, ...]  # exercises whose parameters the therapist changed from the proposal
    revision: int
    sessions_per_week: float
    expected_sessions: int
    target_date: date
    by: UUID
    at: datetime

    def to_public(self) -> public.PlanRevised:
        return _revised(self.plan_id, self.ids, self, self.revision, self.at)


class Reading(_Frozen):
    key: str  # the score's key: "lefs", "nprs", "koos_pain", "psfs_01"
    value: float = Field(allow_inf_nan=False)


class ResultsRecorded(_Event):
    """Numbers arrived (a session's quick measures, assessment's measures and findings, a task
    the therapist recorded): the readings the stall rules track and the criteria results."""

    event_type: ClassVar[str] = "kinetic.plan.results.recorded.v1"
    source: Literal["session", "assessment", "therapist"]
    session_number: int  # the session the readings belong to (the latest completed one)
    readings: tuple[Reading, ...] = ()
    results: tuple[CriterionResult, ...] = ()
    at: datetime


class _MilestoneStep(_Event):
    ids: _Ids
    milestone_id: str
    stage: str
    at: datetime


class MilestoneMet(_MilestoneStep):
    event_type: ClassVar[str] = "kinetic.plan.milestone.met.v1"
    target_date: date | None

    def to_public(self) -> public.MilestoneMet:
        return public.MilestoneMet(**self.ids.as_dict(), plan_id=self.plan_id,
                                   milestone_id=self.milestone_id, stage=self.stage,
                                   target_date=self.target_date, met_at=self.at)


class MilestoneOverdue(_MilestoneStep):
    event_type: ClassVar[str] = "kinetic.plan.milestone.overdue.v1"
    target_date: date

    def to_public(self) -> public.MilestoneOverdue:
        return public.MilestoneOverdue(**self.ids.as_dict(), plan_id=self.plan_id,
                                       milestone_id=self.milestone_id, stage=self.stage,
                                       target_date=self.target_date, overdue_at=self.at)


class ReassessmentFlagged(_Event):
    event_type: ClassVar[str] = "kinetic.plan.reassessment.flagged.v1"
    ids: _Ids
    flags: tuple[StallFlag, ...]
    keys: tuple[str, ...]  # what makes each flag new, so it is raised once
    due_by: date
    ruleset_version: int
    at: datetime

    def to_public(self) -> public.ReassessmentDue:
        numbers = {f"{f.rule}.{k}": list(v) if isinstance(v, tuple) else v
                   for f in self.flags for k, v in f.numbers.items()}
        return public.ReassessmentDue(**self.ids.as_dict(), reason=self.flags[0].due_reason,
                                      due_by=self.due_by, raised_at=self.at,
                                      rules=[f.rule for f in self.flags], numbers=numbers,
                                      ruleset_version=self.ruleset_version)


class ReassessmentResolved(_Event):
    event_type: ClassVar[str] = "kinetic.plan.reassessment.resolved.v1"
    ids: _Ids
    outcome: ReassessmentDecision
    rules: tuple[str, ...]
    free_text: str
    by: UUID
    at: datetime

    def to_public(self) -> public.ReassessmentResolved:
        return public.ReassessmentResolved(**self.ids.as_dict(), plan_id=self.plan_id,
                                           outcome=self.outcome, rules=list(self.rules),
                                           resolved_by=self.by, resolved_at=self.at)


class StageChanged(_Event):
    event_type: ClassVar[str] = "kinetic.plan.stage.changed.v1"
    ids: _Ids
    transition: stages.StageTransition
    to_position: int  # 1 = the first stage

    def to_public(self) -> public.StageAdvanced | None:
        t = self.transition
        if t.direction != "advance":
            return None
        return public.StageAdvanced(**self.ids.as_dict(), plan_id=self.plan_id,
                                    from_stage=t.from_stage, to_stage=t.to_stage,
                                    advanced_by=t.by, advanced_at=t.at)


class Discharged(_Event):
    event_type: ClassVar[str] = "kinetic.plan.episode.discharged.v1"
    ids: _Ids
    discharge: Discharge

    def to_public(self) -> public.EpisodeDischarged:
        d = self.discharge
        return public.EpisodeDischarged(
            **self.ids.as_dict(), plan_id=self.plan_id, discharged_at=d.at, basis=d.basis,
            override_reason=d.override.reason_code if d.override else None, discharged_by=d.by)


class EpisodeClosed(_Event):
    """The episode ended before its plan was active: from a draft (``drafted``), or before any
    plan was drafted, when this is the stream's first event. Nothing was judged against
    criteria, so the public discharge says why instead of a basis."""

    event_type: ClassVar[str] = "kinetic.plan.episode.closed.v1"
    ids: _Ids
    drafted: bool
    closure: Closure

    def to_public(self) -> public.EpisodeDischarged:
        c = self.closure
        return public.EpisodeDischarged(
            **self.ids.as_dict(), plan_id=self.plan_id if self.drafted else None,
            discharged_at=c.at, discharged_by=c.by, ended_before_plan=c.reason)


PlanEvent = (PlanDrafted | PlanEdited | PlanActivated | SessionRecorded | NextMorningRecorded
             | ProgressionDecided | ResultsRecorded | MilestoneMet | MilestoneOverdue
             | ReassessmentFlagged | ReassessmentResolved | StageChanged | Discharged
             | EpisodeClosed)

EVENT_TYPES: dict[str, type[BaseModel]] = {e.event_type: e for e in (
    PlanDrafted, PlanEdited, PlanActivated, SessionRecorded, NextMorningRecorded,
    ProgressionDecided, ResultsRecorded, MilestoneMet, MilestoneOverdue, ReassessmentFlagged,
    ReassessmentResolved, StageChanged, Discharged, EpisodeClosed)}


# -- state -----------------------------------------------------------------------------------

class Plan(_Frozen):
    plan_id: UUID
    ids: _Ids
    evaluation_id: UUID
    status: Status = "draft"
    content: PlanContent
    revision: int = 0  # 1 once active; each revision adds one
    drafted_ruleset_version: int
    activated_on: date | None = None
    stage: str
    stage_history: tuple[stages.StageTransition, ...] = ()
    sessions: tuple[LoggedSession, ...] = ()
    readings: dict[str, tuple[SessionReading, ...]] = Field(default_factory=dict)
    results: tuple[CriterionResult, ...] = ()
    met: frozenset[str] = frozenset()
    overdue: frozenset[str] = frozenset()
    raised: frozenset[str] = frozenset()  # stall keys already raised
    open_reassessment: OpenReassessment | None = None
    resolutions: tuple[ReassessmentResolved, ...] = ()
    discharge: Discharge | None = None
    drafted_at: datetime | None = None
    # A field of this model is named ``discharge``: the module's class is imported by name.
    closure: Closure | None = None  # closed while a draft (status "discharged")

    @property
    def stage_state(self) -> stages.StageState:
        return stages.StageState(stages=self.content.stages, current=self.stage,
                                 history=self.stage_history)

    @property
    def stage_position(self) -> int:
        return self.content.stage_position(self.stage)

    def session(self, appointment_id: UUID) -> LoggedSession | None:
        return next((s for s in self.sessions if s.appointment_id == appointment_id), None)

    def verdicts(self) -> dict[str, bool]:
        return {v.criterion.id: v.met for v in judge(self.content.all_criteria(), self.results)}

    def active_goals(self) -> set[str]:
        """What manual therapy may serve: the current stage's exit criteria and the
        discharge criteria."""
        current = self.content.stages[self.stage_position - 1]
        return {c.id for c in current.exit_criteria} | {
            c.id for c in self.content.discharge_criteria}

    def discharge_decision(self, override: discharge.DischargeOverride | None = None
                           ) -> discharge.DischargeDecision:
        return discharge.discharge_allowed(self.content.discharge_criteria, self.results,
                                           override)


class ClosedWithoutPlan(_Frozen):
    """An episode closed before any plan was drafted: a late evaluation drafts nothing for
    it, and nothing else applies."""

    plan_id: UUID
    ids: _Ids
    closure: Closure
    status: Literal["discharged"] = "discharged"


PlanState = Plan | ClosedWithoutPlan | None
INITIAL: PlanState = None


def evolve(state: PlanState, event: BaseModel) -> PlanState:
    if isinstance(event, PlanDrafted):
        return Plan(plan_id=event.plan_id, ids=_Ids(episode_id=event.episode_id,
                                                    patient_id=event.patient_id,
                                                    location_id=event.location_id),
                    evaluation_id=event.evaluation_id, content=event.content,
                    drafted_ruleset_version=event.ruleset_version,
                    stage=event.content.stages[0].code, drafted_at=event.drafted_at)
    if isinstance(event, EpisodeClosed) and state is None:
        return ClosedWithoutPlan(plan_id=event.plan_id, ids=event.ids, closure=event.closure)
    assert isinstance(state, Plan), \
        "a plan's first event is its draft, or the closure of an episode that had none"
    match event:
        case PlanEdited():
            stage = state.stage if any(s.code == state.stage for s in event.content.stages) \
                else event.content.stages[0].code
            return state.model_copy(update={"content": event.content, "stage": stage,
                                            "revision": event.revision})
        case PlanActivated():
            return state.model_copy(update={"status": "active", "revision": 1,
                                            "activated_on": event.at.date()})
        case SessionRecorded():
            return state.model_copy(update={"sessions": (*state.sessions, event.session)})
        case NextMorningRecorded():
            return _replace_session(state, event.appointment_id, lambda s: s.model_copy(
                update={"proposals": event.proposals, "log": s.log.model_copy(
                    update={"settled_next_morning": event.settled}),
                    "decided": s.decided and not _proposes_otherwise(s, event)}))
        case ProgressionDecided():
            content = state.content.model_copy(update={"prescriptions": event.prescriptions})
            moved = _replace_session(state, event.appointment_id,
                                     lambda s: s.model_copy(update={"decided": True}))
            return moved.model_copy(update={"content": content, "revision": event.revision})
        case ResultsRecorded():
            readings = dict(state.readings)
            for r in event.readings:
                before = [x for x in readings.get(r.key, ()) if x.session != event.session_number]
                readings[r.key] = (*before, SessionReading(session=event.session_number,
                                                           value=r.value))
            return state.model_copy(update={"readings": readings,
                                            "results": (*state.results, *event.results)})
        case MilestoneMet():
            return state.model_copy(update={"met": state.met | {event.milestone_id}})
        case MilestoneOverdue():
            return state.model_copy(update={"overdue": state.overdue | {event.milestone_id}})
        case ReassessmentFlagged():
            open_ = state.open_reassessment
            flags = (*(open_.flags if open_ else ()), *event.flags)
            keys = (*(open_.keys if open_ else ()), *event.keys)
            return state.model_copy(update={
                "raised": state.raised | set(event.keys),
                "open_reassessment": OpenReassessment(
                    flags=flags, keys=keys, raised_at=open_.raised_at if open_ else event.at,
                    ruleset_version=event.ruleset_version)})
        case ReassessmentResolved():
            return state.model_copy(update={"open_reassessment": None,
                                            "resolutions": (*state.resolutions, event)})
        case StageChanged():
            return state.model_copy(update={"stage": event.transition.to_stage,
                                            "stage_history": (*state.stage_history,
                                                              event.transition)})
        case Discharged():
            return state.model_copy(update={"status": "discharged",
                                            "discharge": event.discharge})
        case EpisodeClosed():
            return state.model_copy(update={"status": "discharged",
                                            "closure": event.closure})
    return state


def _proposes_otherwise(session: LoggedSession, answered: NextMorningRecorded) -> bool:
    """Whether the next-morning answer changed the parameters proposed. Sessions are mostly
    logged before it is known, so their proposals are provisional holds, and a therapist
    who accepts one has decided only to hold until then: when the answer turns the hold into
    a regress (not settled, §3.4) or a progress, the decision is open again so that the new
    proposal is offered, not lost behind "decided"."""
    return [x.next for x in answered.proposals] != [x.next for x in session.proposals]


def _replace_session(state: Plan, appointment_id: UUID, change: object) -> Plan:
    sessions = tuple(change(s) if s.appointment_id == appointment_id else s  # type: ignore[operator]
                     for s in state.sessions)
    return state.model_copy(update={"sessions": sessions})


# -- commands --------------------------------------------------------------------------------

class _Command(_Frozen):
    plan_id: UUID
    now: datetime


class DraftPlan(_Command):
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    evaluation_id: UUID
    therapist_id: UUID | None = None
    content: PlanContent
    rules: PlanRules


class EditPlan(_Command):
    content: PlanContent
    reason: str = Field(default="", max_length=2000)
    by: UUID
    # The organization's exercise library: a prescription names one of them.
    known_exercises: frozenset[str]


class ActivatePlan(_Command):
    by: UUID


class LogSession(_Command):
    appointment_id: UUID
    session_number: int = Field(ge=1)
    log: SessionLog
    rules: PlanRules
    by: UUID


class RecordNextMorning(_Command):
    appointment_id: UUID
    settled: bool
    rules: PlanRules


class DecideProgression(_Command):
    """Accept the session's proposals; ``changes`` are the exercises whose next parameters
    the therapist set otherwise."""

    appointment_id: UUID
    changes: tuple[Prescription, ...] = ()
    by: UUID


class RecordMeasures(_Command):
    """Assessment measured (``outcome.measured``, ``reassessment.completed``)."""

    session_number: int = Field(ge=1)
    measures: tuple[MeasureScore, ...] = ()
    findings: tuple[FindingIndex, ...] = ()


class RecordTaskResult(_Command):
    criterion_id: str
    value: float = Field(allow_inf_nan=False)
    session_number: int = Field(ge=1)
    by: UUID


class CheckProgress(_Command):
    """Run the stall rules as of ``today`` (the episode's clock) with ``sessions_used``
    completed sessions; announces overdue milestones and raises what is newly stalled."""

    today: date
    sessions_used: int = Field(ge=0)
    rules: PlanRules


class ResolveReassessment(_Command):
    outcome: ReassessmentDecision
    free_text: Text
    by: UUID


class AdvanceStage(_Command):
    by: UUID
    # The stage the clinician confirmed the advance from. A repeat of an advance already made
    # (a double submit, a retry) then changes nothing, where without it the repeat would close
    # the next stage too once its criteria pass. None: from wherever the plan is (clients
    # that predate it).
    from_stage: str | None = Field(default=None, max_length=100)


class MoveStageBack(_Command):
    reason: str | None
    to: str | None = None
    by: UUID


class DischargePatient(_Command):
    by: UUID
    override: discharge.DischargeOverride | None = None


class CloseEpisode(_Command):
    """End an episode whose plan never became active (none drafted, or only a draft): by a
    clinician (``by``, with the reason in words), or by assessment's referral out (``by``
    None, with the red flags and ``referred_at``). The episode's ids are the command's
    because there may be no plan to read them from."""

    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    reason: discharge.ClosureReason
    free_text: str = Field(default="", max_length=2000)
    red_flags: tuple[str, ...] = ()
    by: UUID | None = None
    referred_at: datetime | None = None

    @model_validator(mode="after")
    def _clinician_says_why(self) -> CloseEpisode:
        if self.by is not None and not self.free_text.strip():
            raise ValueError("closing an episode, say why in words")
        return self


PlanCommand = (DraftPlan | EditPlan | ActivatePlan | LogSession | RecordNextMorning
               | DecideProgression | RecordMeasures | RecordTaskResult | CheckProgress
               | ResolveReassessment | AdvanceStage | MoveStageBack | DischargePatient
               | CloseEpisode)


def decide(command: PlanCommand, state: PlanState) -> list[BaseModel]:
    if isinstance(command, DraftPlan):
        if state is not None:
            return []  # the evaluation's event delivered again: the plan is drafted once
        require_gain_baselines(command.content)
        return [PlanDrafted(plan_id=command.plan_id, episode_id=command.episode_id,
                            patient_id=command.patient_id, location_id=command.location_id,
                            evaluation_id=command.evaluation_id,
                            therapist_id=command.therapist_id, content=command.content,
                            ruleset_version=command.rules.version,
                            drafted_on=command.now.date(), drafted_at=command.now)]
    if isinstance(command, CloseEpisode):
        return _close(command, state)
    if state is None:
        raise PlanNotFoundError(f"plan {command.plan_id} has not been drafted")
    if state.status == "discharged":
        if isinstance(command, (CheckProgress, RecordMeasures)):
            return []  # late numbers for a closed episode change nothing
        if isinstance(state, ClosedWithoutPlan):
            raise PlanStatusError("the episode was closed before a plan was drafted")
        raise PlanStatusError("the episode is discharged; its plan is closed")
    match command:
        case EditPlan():
            return _edit(command, state)
        case ActivatePlan():
            return _activate(command, state)
        case LogSession():
            return _log_session(command, _active(state))
        case RecordNextMorning():
            return _next_morning(command, _active(state))
        case DecideProgression():
            return _decide_progression(command, _going_on(_active(state)))
        case RecordMeasures():
            return _record_measures(command, state)
        case RecordTaskResult():
            return _record_task(command, state)
        case CheckProgress():
            return _check(command, state) if state.status == "active" else []
        case ResolveReassessment():
            return _resolve(command, state)
        case AdvanceStage():
            if command.from_stage is not None and command.from_stage != state.stage:
                return _advanced_already(command, _active(state))
            s = _going_on(_active(state))
            moved = stages.advance(s.stage_state, s.results, command.by, at=command.now)
            return [_stage_changed(s, moved)]
        case MoveStageBack():
            s = _active(state)
            moved = stages.move_back(s.stage_state, command.reason, command.by,
                                     at=command.now, to=command.to)
            return [_stage_changed(s, moved)]
        case DischargePatient():
            if state.status == "draft":
                # The draft was never a plan of care: there are no criteria to meet or
                # override. An episode ending here is closed with its reason instead.
                raise PlanStatusError("the plan is still a draft: activate it, or close the "
                                      "episode with the reason if it ends before treatment")
            return _discharge(command, state)
    raise AssertionError(command)


def _advanced_already(c: AdvanceStage, state: Plan) -> list[BaseModel]:
    """An advance from a stage the plan is no longer in: nothing if the plan has advanced
    past it (the same advance asked again), else 409 (the page was stale: the plan moved
    back, or never reached that stage)."""
    assert c.from_stage is not None
    moves = state.stage_state
    moves.index(c.from_stage)  # 422 for a stage the plan does not have
    left = [t for t in state.stage_history if t.from_stage == c.from_stage]
    if (left and left[-1].direction == "advance"
            and moves.index(state.stage) > moves.index(c.from_stage)):
        return []
    raise StageChangedError(f"the plan is in {state.stage}, not {c.from_stage}: reload it and "
                            f"confirm the advance from where it is", stage=state.stage,
                            from_stage=c.from_stage)


def _stage_changed(state: Plan, moved: stages.StageState) -> StageChanged:
    return StageChanged(plan_id=state.plan_id, ids=state.ids, transition=moved.history[-1],
                        to_position=state.content.stage_position(moved.current))


def _active(state: Plan) -> Plan:
    if state.status != "active":
        raise PlanStatusError("activate the plan first: it is still a draft")
    return state


def _going_on(state: Plan) -> Plan:
    """§3.2: the clinician must record the reassessment's outcome before the plan goes on."""
    if state.open_reassessment is not None:
        rules = ", ".join(f.rule for f in state.open_reassessment.flags)
        raise ReassessmentOutstandingError(
            f"a reassessment is due ({rules}): record its outcome first", rules=rules)
    return state


def _edit(c: EditPlan, state: Plan) -> list[BaseModel]:
    unknown = sorted({x.exercise for x in c.content.prescriptions} - c.known_exercises)
    if unknown:
        raise UnknownExerciseError(f"no exercise {unknown[0]!r} in the library",
                                   exercise=unknown[0])
    require_gain_baselines(c.content)
    if state.status == "active":
        _going_on(state)
        discharge.require_activatable(c.content)
    revision = state.revision + 1 if state.status == "active" else 0
    return [PlanEdited(plan_id=state.plan_id, content=c.content, revision=revision,
                       reason=c.reason, by=c.by, at=c.now, ids=state.ids)]


def _activate(c: ActivatePlan, state: Plan) -> list[BaseModel]:
    if state.status == "active":
        return []
    content = state.content
    discharge.require_activatable(content)
    # A draft edited before edits were checked for this may still lack a baseline.
    require_gain_baselines(content)
    assert content.expected_sessions is not None and content.target_date is not None
    return [PlanActivated(plan_id=state.plan_id, ids=state.ids,
                          sessions_per_week=content.sessions_per_week,
                          expected_sessions=content.expected_sessions,
                          target_date=content.target_date, by=c.by, at=c.now)]


def _proposals(state: Plan, log: SessionLog, on: date, rules: PlanRules,
               judged: dict[str, Prescription] | None = None
               ) -> tuple[progression.Proposal, ...]:
    """§3.4 for each exercise done, against the prescription it was done to: the plan's
    current one, or ``judged`` (the one the session's proposals were first judged against)
    when it is decided again."""
    out = []
    for done in log.exercises:
        p = (judged or {}).get(done.exercise) or state.content.prescription(done.exercise)
        assert p is not None
        perf = SessionPerformance(performed_on=on, reps_per_set=done.reps_per_set,
                                  load_kg=done.load_kg, rpe=done.rpe,
                                  pain_during=done.pain_during,
                                  settled_next_morning=log.settled_next_morning,
                                  morning_worse_than_last_week=log.morning_worse_than_last_week)
        out.append(progression.decide_progression(p, perf, rules.progression,
                                                  state.stage_position))
    return tuple(out)


def _log_session(c: LogSession, state: Plan) -> list[BaseModel]:
    existing = state.session(c.appointment_id)
    if existing is not None:
        if existing.log == c.log:
            return []  # the same form sent twice
        raise SessionAlreadyLoggedError(f"session {c.session_number} is already logged",
                                        appointment_id=str(c.appointment_id))
    for done in c.log.exercises:
        if state.content.prescription(done.exercise) is None:
            raise UnprescribedExerciseError(
                f"{done.exercise} is not prescribed in this plan", exercise=done.exercise)
    if c.log.manual_therapy is not None:
        progression.check_manual_therapy(c.log.manual_therapy.goal, state.active_goals())
    for key, value in c.log.quick_measures.items():
        scales.check_score(key, value)
    session = LoggedSession(appointment_id=c.appointment_id, number=c.session_number,
                            log=c.log, proposals=_proposals(state, c.log, c.now.date(), c.rules),
                            logged_by=c.by, logged_at=c.now)
    events: list[BaseModel] = [SessionRecorded(plan_id=state.plan_id, ids=state.ids,
                                               session=session,
                                               ruleset_version=c.rules.version)]
    readings = tuple(Reading(key=k, value=v) for k, v in c.log.quick_measures.items())
    return events + _results(state, "session", c.session_number, readings, (), c.now)


def _next_morning(c: RecordNextMorning, state: Plan) -> list[BaseModel]:
    session = state.session(c.appointment_id)
    if session is None:
        raise SessionNotLoggedError(f"no logged session {c.appointment_id}")
    if session.log.settled_next_morning == c.settled:
        return []
    log = session.log.model_copy(update={"settled_next_morning": c.settled})
    # Against what the patient did the session to, not what the plan holds now (a later
    # session's progression may have moved it on).
    judged = {x.next.exercise: b for x in session.proposals if (b := _basis(x)) is not None}
    return [NextMorningRecorded(plan_id=state.plan_id, appointment_id=c.appointment_id,
                                settled=c.settled,
                                proposals=_proposals(state, log, session.logged_at.date(),
                                                     c.rules, judged),
                                ruleset_version=c.rules.version, at=c.now)]


def _decide_progression(c: DecideProgression, state: Plan) -> list[BaseModel]:
    session = state.session(c.appointment_id)
    if session is None:
        raise SessionNotLoggedError(f"no logged session {c.appointment_id}")
    proposed = {p.next.exercise: p.next for p in session.proposals}
    changed = {p.exercise: p for p in c.changes}
    if unknown := sorted(set(changed) - {p.exercise for p in state.content.prescriptions}):
        raise UnprescribedExerciseError(f"{unknown[0]} is not prescribed in this plan",
                                        exercise=unknown[0])
    after = tuple(changed.get(p.exercise) or proposed.get(p.exercise) or p
                  for p in state.content.prescriptions)
    if after == state.content.prescriptions and session.decided:
        return []
    if why := _supersession(state, session, frozenset(changed)):
        raise ProposalSupersededError(why, session=session.number)
    content = state.content
    assert content.expected_sessions is not None and content.target_date is not None
    return [ProgressionDecided(plan_id=state.plan_id, ids=state.ids,
                               appointment_id=c.appointment_id, prescriptions=after,
                               changed=tuple(sorted(e for e in changed
                                                    if changed[e] != proposed.get(e))),
                               revision=state.revision + 1,
                               sessions_per_week=content.sessions_per_week,
                               expected_sessions=content.expected_sessions,
                               target_date=content.target_date, by=c.by, at=c.now)]


def _basis(proposal: progression.Proposal) -> Prescription | None:
    """The prescription a proposal was judged against. Proposals stored before it was kept
    still tell it for a hold, which proposes the parameters unchanged."""
    if proposal.basis is not None:
        return proposal.basis
    return proposal.next if proposal.action == "hold" else None


def _supersession(state: Plan, session: LoggedSession,
                  set_otherwise: frozenset[str] = frozenset()) -> str | None:
    """Why the session's proposals can no longer be accepted, or None. A proposal is
    computed from the prescription the session was done to; accepting it once the plan holds
    another (a later session's progression, a revision) would put the old parameters back,
    and a later session's decision rests on newer information. The exercises the clinician
    sets otherwise (``set_otherwise``) take no proposal, so they cannot be stale."""
    later = [s.number for s in state.sessions
             if s.number > session.number and s.decided and s.proposals]
    if later:
        return (f"session {max(later)}'s progression was decided after session "
                f"{session.number} was logged: progress from the latest session, or revise the "
                f"plan")
    for x in session.proposals:
        code = x.next.exercise
        now = state.content.prescription(code)
        if code in set_otherwise or now is None or now == x.next:
            continue
        basis = _basis(x)
        # Without a basis (stored before it was kept), a prescription dated after the
        # session was set after it.
        moved = now.changed_on > session.logged_at.date() if basis is None else now != basis
        if moved:
            since = f", not the {basis.describe()} it was judged against" if basis else ""
            return (f"{code} is {now.describe()} now{since}: its proposal from session "
                    f"{session.number} no longer applies; set the parameters yourself or log "
                    f"the next session")
    return None


def superseded(state: Plan, session: LoggedSession) -> str | None:
    """Why a session's progression, still to decide, can no longer be decided (it then
    leaves the therapist's to-decide list), or None."""
    return None if session.decided else _supersession(state, session)


def _record_measures(c: RecordMeasures, state: Plan) -> list[BaseModel]:
    readings = tuple(Reading(key=k, value=v) for m in c.measures for k, v in m.scores.items())
    results = []
    for criterion in state.content.all_criteria():
        value = read_value(criterion, c.measures, c.findings)
        if value is not None:
            results.append(CriterionResult(
                criterion_id=criterion.id, value=value,
                baseline=state.content.criterion_baselines.get(criterion.id)))
    return _results(state, "assessment", c.session_number, readings, tuple(results), c.now,
                    direct=True)


def _record_task(c: RecordTaskResult, state: Plan) -> list[BaseModel]:
    criterion = state.content.criterion(c.criterion_id)
    if criterion is None:
        raise UnknownCriterionError(f"the plan has no criterion {c.criterion_id!r}",
                                    criterion=c.criterion_id)
    if criterion.source != "task":
        # A PROM's number comes scored from its questionnaire (assessment, or a session's
        # quick measure checked against its scale), a finding's from the recorded test: a
        # number typed in here would meet the criterion unchecked.
        where = ("assessment, or as a quick measure of a session" if criterion.source == "measure"
                 else "assessment")
        raise NotATaskCriterionError(
            f"{criterion.label} [{criterion.id}] reads a {criterion.source}: record it in {where}",
            criterion=criterion.id, source=criterion.source)
    result = CriterionResult(criterion_id=criterion.id, value=c.value,
                             baseline=state.content.criterion_baselines.get(criterion.id))
    return _results(state, "therapist", c.session_number, (), (result,), c.now, direct=True)


def _results(state: Plan, source: Literal["session", "assessment", "therapist"],
             session_number: int, readings: tuple[Reading, ...],
             results: tuple[CriterionResult, ...], now: datetime, *, direct: bool = False
             ) -> list[BaseModel]:
    """Readings become results for the measure criteria that read them (a session's quick
    NPRS is a result for "NPRS ≤ 2"), then milestones newly met are announced."""
    if not direct:
        # A quick measure is keyed by its score ("nprs", "psfs_01"): it is a result for each
        # measure criterion that reads that score.
        by_key = {r.key: r.value for r in readings}
        results = tuple(CriterionResult(
            criterion_id=c.id, value=by_key[c.score_key],
            baseline=state.content.criterion_baselines.get(c.id))
            for c in state.content.all_criteria()
            if c.source == "measure" and c.score_key in by_key)
    if not readings and not results:
        return []
    recorded = ResultsRecorded(plan_id=state.plan_id, source=source,
                               session_number=session_number, readings=readings,
                               results=results, at=now)
    after = evolve(state, recorded)
    assert after is not None
    return [recorded, *_newly_met(after, now)]


def _newly_met(state: Plan, now: datetime) -> list[BaseModel]:
    verdicts = state.verdicts()
    return [MilestoneMet(plan_id=state.plan_id, ids=state.ids, milestone_id=c.id,
                         stage=s.code, target_date=s.target_date, at=now)
            for s in state.content.stages for c in s.exit_criteria
            if verdicts.get(c.id) and c.id not in state.met]


def progress_snapshot(state: Plan, sessions_used: int) -> EpisodeProgress:
    """What the stall rules read, from the plan's record."""
    def tracked(b: Baseline) -> TrackedMeasure:
        return TrackedMeasure(rule=b.rule, baseline=b.value,
                              readings=tuple(sorted(state.readings.get(b.key, ()),
                                                    key=lambda r: r.session)))
    content = state.content
    pain = tuple(b for b in content.tracked if b.rule.measure == "nprs")
    others = tuple(b for b in content.tracked if b.rule.measure != "nprs")
    # A milestone once met stays met for the stall rules (a later quick reading that misses
    # it is STALL-3's to judge), and a closed stage's milestones were met when it closed:
    # neither is overdue. A stage moved back to is current again, and watched again.
    ever_met = {i for i, ok in state.verdicts().items() if ok} | state.met
    milestones = tuple(m for m in content.milestones(ever_met)
                       if m.stage >= state.stage_position)
    return EpisodeProgress(
        episode_type=content.episode_type, started_on=state.activated_on or date.min,
        sessions_used=sessions_used, expected_max_sessions=content.expected_sessions or 1,
        current_stage=state.stage_position, primary=tracked(content.primary),
        pain=tuple(tracked(b) for b in pain), secondary=tuple(tracked(b) for b in others),
        milestones=milestones,
        discharge_criteria_met=state.discharge_decision().basis == "criteria_met")


# -- what makes a stall flag new ---------------------------------------------------------------
#
# §3.2 asks the clinician to answer each stall once; raising the same stall again after it was
# answered blocks the plan (409) and sends assessment and booking a reassessment nobody needs.
# So each flag carries keys, kept in ``Plan.raised`` for the episode:
# - STALL-1, -2 and -5: the rule. They fire once an episode.
# - STALL-3: the measure and the session its run of worse readings began ("STALL-3:nprs:S3").
#   A flare that goes on (S3, S4, S5 …) is one run; only a reading that is not worse ends it,
#   and the next run is a new worsening.
# - STALL-4: one key per milestone and target date ("STALL-4:calm.nprs@2025-05-16"). A milestone
#   answered stays answered while the others are met or not; a new target date set in a
#   revision is a new deadline, and missing it is new.
# Keys raised before this scheme named the whole flag ("STALL-4:a,b", "STALL-3:nprs:(3, 4)"):
# they are read as the milestones and the run they named, so an episode already answered is
# not asked again after an upgrade. Criterion ids hold neither "," nor "@" (their pattern).

_STALL_3_KEY = re.compile(r"S(\d+)|\((\d+)(?:, \d+)*,?\)")


def _stall_3_key(flag: StallFlag) -> str:
    return f"STALL-3:{flag.numbers['measure']}:S{flag.numbers['run_from']}"


def _run_raised(flag: StallFlag, raised: frozenset[str]) -> bool:
    """Whether a key already names this run: one for the same measure from a session at or
    after the run's first (an earlier run ended before it began)."""
    prefix = f"STALL-3:{flag.numbers['measure']}:"
    run_from = int(flag.numbers["run_from"])  # type: ignore[arg-type]
    for key in raised:
        match = _STALL_3_KEY.fullmatch(key[len(prefix):]) if key.startswith(prefix) else None
        if match and int(match.group(1) or match.group(2)) >= run_from:
            return True
    return False


def _milestone_key(m: Milestone) -> str:
    return f"STALL-4:{m.id}@{m.target_date.isoformat()}"


def _milestone_raised(m: Milestone, raised: frozenset[str]) -> bool:
    if _milestone_key(m) in raised:
        return True
    return any(m.id in key.removeprefix("STALL-4:").split(",") for key in raised
               if key.startswith("STALL-4:") and "@" not in key)


def _new_flags(progress: EpisodeProgress, raised: frozenset[str],
               thresholds: StallThresholds, today: date
               ) -> list[tuple[StallFlag, tuple[str, ...]]]:
    """The flags that hold today and have not been raised, each with its keys, in rule order.
    STALL-3 is the first measure with a run not yet raised; STALL-4 lists only the overdue
    milestones not yet raised."""
    out: list[tuple[StallFlag, tuple[str, ...]]] = []
    for flag in evaluate_stalls(progress, thresholds, today):
        if flag.rule == "STALL-3":
            run = next((f for f in stall_3_runs(progress, thresholds)
                        if not _run_raised(f, raised)), None)
            if run is not None:
                out.append((run, (_stall_3_key(run),)))
        elif flag.rule == "STALL-4":
            unraised = tuple(m for m in progress.milestones if not _milestone_raised(m, raised))
            overdue = stall_4(progress.model_copy(update={"milestones": unraised}), thresholds,
                              today)
            if overdue is not None:
                ids = set(overdue.numbers["milestone_ids"])  # type: ignore[arg-type]
                out.append((overdue, tuple(_milestone_key(m) for m in unraised
                                           if m.id in ids)))
        elif flag.rule not in raised:
            out.append((flag, (flag.rule,)))
    return out


def _watched(state: Plan) -> list[tuple[stages.Stage, list[Criterion]]]:
    """Each stage with a target date from the current one on, with its milestones not met:
    what can be overdue. The stages before the current one closed with their milestones met,
    and a milestone once met is not overdue when a later reading misses it."""
    verdicts = state.verdicts()
    return [(s, [c for c in s.exit_criteria if not verdicts.get(c.id) and c.id not in state.met])
            for s in state.content.stages[state.stage_position - 1:] if s.target_date is not None]


def _check(c: CheckProgress, state: Plan) -> list[BaseModel]:
    events: list[BaseModel] = []
    for s, unmet in _watched(state):
        assert s.target_date is not None
        if c.today <= s.target_date:
            continue
        for crit in unmet:
            if crit.id not in state.overdue:
                events.append(MilestoneOverdue(plan_id=state.plan_id, ids=state.ids,
                                               milestone_id=crit.id, stage=s.code,
                                               target_date=s.target_date, at=c.now))
    new = _new_flags(progress_snapshot(state, c.sessions_used), state.raised, c.rules.stalls,
                     c.today)
    if new:
        events.append(ReassessmentFlagged(
            plan_id=state.plan_id, ids=state.ids, flags=tuple(f for f, _ in new),
            keys=tuple(k for _, keys in new for k in keys), due_by=c.today,
            ruleset_version=c.rules.version, at=c.now))
    return events


def _resolve(c: ResolveReassessment, state: Plan) -> list[BaseModel]:
    open_ = state.open_reassessment
    if open_ is None:
        raise NoReassessmentDueError("no reassessment is due for this plan")
    return [ReassessmentResolved(plan_id=state.plan_id, ids=state.ids, outcome=c.outcome,
                                 rules=tuple(f.rule for f in open_.flags),
                                 free_text=c.free_text, by=c.by, at=c.now)]


def _close(c: CloseEpisode, state: PlanState) -> list[BaseModel]:
    if (isinstance(state, Plan) and c.referred_at is not None and state.drafted_at is not None
            and state.drafted_at > c.referred_at):
        # The plan was drafted from an evaluation completed after the referral (the patient
        # came back cleared): the referral no longer ends anything.
        return []
    if state is not None and state.closure is not None:
        if state.closure.reason == c.reason:
            return []  # the same closure asked for again: a retry, or the referral after it
        raise PlanStatusError("the episode is already closed",
                              reason=state.closure.reason)
    if isinstance(state, Plan) and state.status == "active":
        raise PlanStatusError("the plan is active: discharge the patient instead, with an "
                              "override and its reason when the criteria are not met")
    if isinstance(state, Plan) and state.status == "discharged":
        raise PlanStatusError("the episode is discharged; its plan is closed")
    ids = state.ids if state is not None else _Ids(
        episode_id=c.episode_id, patient_id=c.patient_id, location_id=c.location_id)
    closure = Closure(reason=c.reason, free_text=c.free_text, red_flags=c.red_flags, by=c.by,
                      at=c.now)
    return [EpisodeClosed(plan_id=c.plan_id, ids=ids, drafted=state is not None,
                          closure=closure)]


def _discharge(c: DischargePatient, state: Plan) -> list[BaseModel]:
    decision = discharge.require_discharge(state.content.discharge_criteria, state.results,
                                           c.override)
    basis: Literal["criteria_met", "override"] = (
        "override" if decision.basis == "override" else "criteria_met")
    return [Discharged(plan_id=state.plan_id, ids=state.ids, discharge=Discharge(
        basis=basis, override=c.override, unmet=decision.unmet, by=c.by, at=c.now))]


def next_check(state: Plan, rules: PlanRules, today: date) -> date | None:
    """The next date after ``today`` a timer should wake the episode for: the day after an
    unmet milestone's target date (it is overdue), the end of its grace (STALL-4), or
    STALL-2's six weeks; None when nothing is waiting."""
    if state.status != "active" or state.activated_on is None:
        return None
    grace = rules.stalls.grace_days(state.content.episode_type)
    dates: list[date] = []
    for s, unmet_here in _watched(state):
        assert s.target_date is not None
        if not unmet_here:
            continue
        if any(c.id not in state.overdue for c in unmet_here):
            dates.append(s.target_date + timedelta(days=1))
        dates.append(s.target_date + timedelta(days=grace))
    if "STALL-2" not in state.raised:
        dates.append(state.activated_on + timedelta(weeks=rules.stalls.stall_weeks_late))
    return min((d for d in dates if d > today), default=None)
