"""Evaluation: the one-hour initial evaluation, or a reassessment against its baseline.

A draft collects history, red-flag screening, goals, scored outcome measures, objective
findings, clinical reasoning and the patient's explanation; each part can be recorded
again while it is a draft (the latest wins). Completing checks that the evaluation is whole
and publishes it (``evaluation.completed`` or ``reassessment.completed``, and one
``outcome.measured`` per measure). A completed evaluation never changes: corrections are
addenda with a reason. A positive red flag ends it another way: the patient is referred out.
Pure: scores and indices are computed here from what the clinician entered, never typed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal, assert_never
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from assessment.domain import measures
from assessment.domain.episode import EpisodeFacts, symptom_weeks, type_episode
from assessment.domain.errors import (
    BaselineMissingError,
    EpisodeTypeContradictedError,
    EvaluationClosedError,
    EvaluationExistsError,
    EvaluationIncompleteError,
    EvaluationNotFoundError,
    RedFlagsPositiveError,
    UnknownFindingError,
    UnknownMeasureError,
)
from assessment.domain.findings import FindingThresholds, ObjectiveFindings, compute
from assessment.domain.history import RED_FLAGS, History, RedFlagScreen
from assessment.domain.reasoning import Reasoning, unknown_findings
from assessment.domain.ruleset import RuleSet
from kinetic_contracts.assessment.v1 import events as public
from kinetic_contracts.assessment.v1.events import EpisodeType, FindingIndex, Goal, MeasureScore

Kind = Literal["initial", "reassessment"]


class _Internal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    evaluation_id: UUID


class EvaluationOpened(_Internal):
    event_type: ClassVar[str] = "kinetic.assessment.evaluation.opened.v1"
    kind: Kind
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    appointment_id: UUID | None = None
    therapist_id: UUID | None = None
    baseline_evaluation_id: UUID | None = None
    opened_at: datetime


class HistoryRecorded(_Internal):
    event_type: ClassVar[str] = "kinetic.assessment.evaluation.history_recorded.v1"
    history: History
    at: datetime


class RedFlagsScreened(_Internal):
    event_type: ClassVar[str] = "kinetic.assessment.evaluation.red_flags_screened.v1"
    screen: RedFlagScreen
    at: datetime


class GoalsRecorded(_Internal):
    event_type: ClassVar[str] = "kinetic.assessment.evaluation.goals_recorded.v1"
    goals: list[Goal]
    at: datetime


class MeasureRecorded(_Internal):
    event_type: ClassVar[str] = "kinetic.assessment.evaluation.measure_recorded.v1"
    measure: str
    version: str
    answers: dict[str, int | None]
    labels: dict[str, str] = Field(default_factory=dict)  # PSFS: the patient's activities
    scores: dict[str, float]
    at: datetime

    def rated_labels(self) -> dict[str, str]:
        """The activity each rated PSFS slot held (a name given to a slot left unrated is not
        an activity the patient rated)."""
        return {k: v for k, v in self.labels.items() if self.answers.get(k) is not None}


class FindingsRecorded(_Internal):
    event_type: ClassVar[str] = "kinetic.assessment.evaluation.findings_recorded.v1"
    findings: ObjectiveFindings
    indices: list[FindingIndex]
    thresholds: FindingThresholds  # what the pass/fail verdicts were judged by …
    ruleset_version: int = 1  # … and which version of the organization's numbers that was
    at: datetime


class ReasoningRecorded(_Internal):
    event_type: ClassVar[str] = "kinetic.assessment.evaluation.reasoning_recorded.v1"
    reasoning: Reasoning
    at: datetime


class ExplanationWritten(_Internal):
    event_type: ClassVar[str] = "kinetic.assessment.evaluation.explanation_written.v1"
    text: str
    at: datetime


class AddendumRecorded(_Internal):
    """The stored addendum keeps its text and reason; the public copy says only that one
    was added."""

    event_type: ClassVar[str] = "kinetic.assessment.evaluation.addendum_added.v1"
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    addendum_id: UUID
    reason: str
    text: str
    by: str
    added_at: datetime

    def to_public(self) -> public.AddendumAdded:
        return public.AddendumAdded(
            evaluation_id=self.evaluation_id, episode_id=self.episode_id,
            patient_id=self.patient_id, location_id=self.location_id,
            addendum_id=self.addendum_id, added_at=self.added_at)


# -- commands ------------------------------------------------------------------------------

class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    evaluation_id: UUID
    now: datetime


class OpenEvaluation(Command):
    kind: Kind
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    appointment_id: UUID | None = None
    therapist_id: UUID | None = None
    baseline_evaluation_id: UUID | None = None
    # Opening is idempotent: the same draft asked for again (a redelivered booking) is kept.


class RecordHistory(Command):
    history: History


class ScreenRedFlags(Command):
    screen: RedFlagScreen


class RecordGoals(Command):
    goals: list[Goal] = Field(min_length=1, max_length=10)


class RecordMeasure(Command):
    measure: str
    answers: dict[str, int | None]
    labels: dict[str, str] | None = None


class RecordFindings(Command):
    findings: ObjectiveFindings
    rules: RuleSet = RuleSet()


class RecordReasoning(Command):
    reasoning: Reasoning


class WriteExplanation(Command):
    text: str = Field(min_length=1, max_length=5000)


class BaselineMeasure(MeasureScore):
    """A baseline measure as a reassessment compares with it: its scores and the activity
    each rated PSFS slot held. Assessment's own: the public ``MeasureScore`` has no labels."""

    # from_attributes: a plain MeasureScore is read as one whose activities are not known.
    model_config = ConfigDict(frozen=True, extra="ignore", from_attributes=True)
    labels: dict[str, str] = Field(default_factory=dict)


class CompleteEvaluation(Command):
    # For a reassessment: the baseline evaluation's measures (its ``baseline()``).
    baseline_measures: list[BaselineMeasure] | None = None
    rules: RuleSet = RuleSet()  # the organization's MCID/MDC numbers for the changes


class AddAddendum(Command):
    # The same id again is the same addendum asked for twice (a retry): it is kept once.
    addendum_id: UUID
    reason: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1, max_length=5000)
    by: str


class ReferOut(Command):
    pass


EvaluationCommand = (OpenEvaluation | RecordHistory | ScreenRedFlags | RecordGoals
                     | RecordMeasure | RecordFindings | RecordReasoning | WriteExplanation
                     | CompleteEvaluation | AddAddendum | ReferOut)


# -- state ---------------------------------------------------------------------------------

class NoEvaluation(BaseModel):
    model_config = ConfigDict(frozen=True)


class Evaluation(BaseModel):
    model_config = ConfigDict(frozen=True)
    opened: EvaluationOpened
    status: Literal["draft", "completed", "referred_out"] = "draft"
    history: History | None = None
    screen: RedFlagScreen | None = None
    goals: list[Goal] = Field(default_factory=list)
    measures: dict[str, MeasureRecorded] = Field(default_factory=dict)
    findings: FindingsRecorded | None = None
    reasoning: Reasoning | None = None
    explanation: str | None = None
    addenda: list[AddendumRecorded] = Field(default_factory=list)
    completed_at: datetime | None = None

    def has_addendum(self, addendum_id: UUID) -> bool:
        return any(a.addendum_id == addendum_id for a in self.addenda)

    def baseline(self) -> list[BaselineMeasure]:
        """What a reassessment compares with: each measure's scores and PSFS activities."""
        return [BaselineMeasure(measure=m.measure, version=m.version, scores=m.scores,
                                labels=m.rated_labels())
                for m in self.measures.values()]

    def published_baseline(self) -> list[MeasureScore]:
        """The baseline as ``evaluation.completed`` publishes it: codes and numbers only."""
        return [MeasureScore(measure=m.measure, version=m.version, scores=m.scores)
                for m in self.measures.values()]


EvaluationState = NoEvaluation | Evaluation
EvaluationEvent = (EvaluationOpened | HistoryRecorded | RedFlagsScreened | GoalsRecorded
                   | MeasureRecorded | FindingsRecorded | ReasoningRecorded | ExplanationWritten
                   | public.EvaluationCompleted | public.ReassessmentCompleted
                   | public.OutcomeMeasured | public.ClinicalNotesRecorded | AddendumRecorded
                   | public.AddendumTextRecorded | public.ReferredOut)
INITIAL: EvaluationState = NoEvaluation()
EVENT_TYPES: dict[str, type[EvaluationEvent]] = {e.event_type: e for e in (  # type: ignore[misc]
    EvaluationOpened, HistoryRecorded, RedFlagsScreened, GoalsRecorded, MeasureRecorded,
    FindingsRecorded, ReasoningRecorded, ExplanationWritten, public.EvaluationCompleted,
    public.ReassessmentCompleted, public.OutcomeMeasured, public.ClinicalNotesRecorded,
    AddendumRecorded, public.AddendumTextRecorded, public.ReferredOut)}


def evolve(state: EvaluationState, event: EvaluationEvent) -> EvaluationState:
    if isinstance(event, EvaluationOpened):
        return Evaluation(opened=event)
    assert isinstance(state, Evaluation)
    match event:
        case HistoryRecorded():
            return state.model_copy(update={"history": event.history})
        case RedFlagsScreened():
            return state.model_copy(update={"screen": event.screen})
        case GoalsRecorded():
            return state.model_copy(update={"goals": event.goals})
        case MeasureRecorded():
            return state.model_copy(update={"measures": {**state.measures,
                                                         event.measure: event}})
        case FindingsRecorded():
            return state.model_copy(update={"findings": event})
        case ReasoningRecorded():
            return state.model_copy(update={"reasoning": event.reasoning})
        case ExplanationWritten():
            return state.model_copy(update={"explanation": event.text})
        case public.EvaluationCompleted() | public.ReassessmentCompleted():
            return state.model_copy(update={"status": "completed",
                                            "completed_at": event.completed_at})
        case (public.OutcomeMeasured() | public.ClinicalNotesRecorded()
              | public.AddendumTextRecorded()):
            return state
        case AddendumRecorded():
            return state.model_copy(update={"addenda": [*state.addenda, event]})
        case public.ReferredOut():
            return state.model_copy(update={"status": "referred_out"})
        case _:
            assert_never(event)


# -- decisions -----------------------------------------------------------------------------

def decide(command: EvaluationCommand, state: EvaluationState) -> list[EvaluationEvent]:
    if isinstance(command, OpenEvaluation):
        return _open(command, state)
    if not isinstance(state, Evaluation):
        raise EvaluationNotFoundError(f"evaluation {command.evaluation_id} not found")
    if isinstance(command, AddAddendum):
        return _addendum(command, state)
    if state.status != "draft":
        raise EvaluationClosedError(
            f"the evaluation is {state.status.replace('_', ' ')}: add an addendum instead")
    e_id, now = command.evaluation_id, command.now
    match command:
        case RecordHistory():
            if command.history.onset is not None:
                symptom_weeks(command.history.onset, now.date())  # refuses a future onset
            return [HistoryRecorded(evaluation_id=e_id, history=command.history, at=now)]
        case ScreenRedFlags():
            unknown = sorted(set(command.screen.answers) - set(RED_FLAGS))
            if unknown:
                raise EvaluationIncompleteError(f"unknown red-flag question {unknown[0]}")
            return [RedFlagsScreened(evaluation_id=e_id, screen=command.screen, at=now)]
        case RecordGoals():
            return [GoalsRecorded(evaluation_id=e_id, goals=command.goals, at=now)]
        case RecordMeasure():
            return [_measure(command)]
        case RecordFindings():
            return [FindingsRecorded(evaluation_id=e_id, findings=command.findings,
                                     indices=compute(command.findings, command.rules.findings),
                                     thresholds=command.rules.findings,
                                     ruleset_version=command.rules.version, at=now)]
        case RecordReasoning():
            _check_citations(command.reasoning, state)
            return [ReasoningRecorded(evaluation_id=e_id, reasoning=command.reasoning, at=now)]
        case WriteExplanation():
            return [ExplanationWritten(evaluation_id=e_id, text=command.text, at=now)]
        case CompleteEvaluation():
            return _complete(command, state)
        case ReferOut():
            positive = state.screen.positive() if state.screen else []
            if not positive:
                raise EvaluationIncompleteError("refer out follows a positive red flag")
            o = state.opened
            return [public.ReferredOut(evaluation_id=e_id, episode_id=o.episode_id,
                                       patient_id=o.patient_id, location_id=o.location_id,
                                       red_flags=positive, referred_at=now)]
        case _:
            raise AssertionError(command)


def _open(c: OpenEvaluation, state: EvaluationState) -> list[EvaluationEvent]:
    if isinstance(state, Evaluation):
        same = (state.opened.kind, state.opened.episode_id) == (c.kind, c.episode_id)
        if same:
            return []
        raise EvaluationExistsError(f"evaluation {c.evaluation_id} already exists")
    if c.kind == "reassessment" and c.baseline_evaluation_id is None:
        raise BaselineMissingError("a reassessment needs a completed initial evaluation")
    return [EvaluationOpened(**c.model_dump(exclude={"now"}), opened_at=c.now)]


def _measure(c: RecordMeasure) -> MeasureRecorded:
    definition = measures.CATALOG.get(c.measure)
    if definition is None:
        raise UnknownMeasureError(f"no measure {c.measure!r} in the catalog", measure=c.measure)
    scored = measures.score(definition, c.answers, c.labels)
    return MeasureRecorded(evaluation_id=c.evaluation_id, measure=definition.code,
                           version=definition.version, answers=c.answers,
                           labels=dict(c.labels or {}), scores=dict(scored.values), at=c.now)


def _check_citations(reasoning: Reasoning, state: Evaluation, *, completing: bool = False
                     ) -> None:
    """Every finding a driver cites must be among the findings recorded now. Checked when
    the reasoning is saved and again at completion: findings saved again afterwards may have
    left a cited one out, and a driver must not be published citing a finding that is not
    there."""
    recorded = [i.finding_id for i in state.findings.indices] if state.findings else []
    missing = unknown_findings(reasoning, recorded)
    if missing:
        names = ", ".join(missing)
        detail = (f"a driver cites {names}, which the findings no longer include: record it "
                  "again or correct the clinical reasoning" if completing
                  else f"no finding {names} has been recorded")
        raise UnknownFindingError(detail, finding_id=missing[0], finding_ids=missing)


def _complete(c: CompleteEvaluation, state: Evaluation) -> list[EvaluationEvent]:
    o = state.opened
    missing: list[str] = []
    if state.screen is None or state.screen.missing():
        missing.append("red-flag screening")
    elif state.screen.positive():
        raise RedFlagsPositiveError("red flags are positive: refer the patient out",
                                    red_flags=state.screen.positive())
    if not state.measures:
        missing.append("an outcome measure")
    indices = state.findings.indices if state.findings else []
    ids = dict(evaluation_id=o.evaluation_id, episode_id=o.episode_id,
               patient_id=o.patient_id, location_id=o.location_id)
    measured = [public.OutcomeMeasured(**ids, measure=m.measure, version=m.version,
                                       scores=m.scores, context=o.kind, measured_at=m.at)
                for m in state.measures.values()]
    if o.kind == "reassessment":
        if missing:
            raise EvaluationIncompleteError(f"missing: {', '.join(missing)}", missing=missing)
        if state.reasoning is not None:
            _check_citations(state.reasoning, state, completing=True)
        if c.baseline_measures is None or o.baseline_evaluation_id is None:
            raise BaselineMissingError("the baseline evaluation is not complete")
        return [public.ReassessmentCompleted(
            **ids, baseline_evaluation_id=o.baseline_evaluation_id,
            changes=_changes(c.baseline_measures, state, c.rules), findings=indices,
            ruleset_version=c.rules.version, completed_at=c.now), *measured,
            *_clinical_notes(ids, state, c.now)]
    if not state.goals:
        missing.append("goals")
    if state.reasoning is None:
        missing.append("clinical reasoning (site, driver, episode type)")
    if not state.explanation:
        missing.append("the patient's explanation")
    if missing:
        raise EvaluationIncompleteError(f"missing: {', '.join(missing)}", missing=missing)
    assert state.reasoning is not None
    r = state.reasoning
    _check_citations(r, state, completing=True)
    return [public.EvaluationCompleted(
        **ids, therapist_id=o.therapist_id, symptom_sites=r.symptom_sites,
        drivers=[public.Driver(code=d.code, finding_ids=d.finding_ids) for d in r.drivers],
        working_diagnosis_icd10=r.working_diagnosis_icd10,
        episode_type=_episode_type(state, r, c.now.date(), c.rules),
        goals=state.goals, baseline_measures=state.published_baseline(), findings=indices,
        # The rule set the completion judged by (the episode type's cut-offs). The findings'
        # verdicts keep the version they were judged by when saved (FindingsRecorded).
        ruleset_version=c.rules.version,
        completed_at=c.now), *measured, *_clinical_notes(ids, state, c.now)]


def _episode_type(state: Evaluation, r: Reasoning, on: date, rules: RuleSet) -> EpisodeType:
    """The therapist's type, if §3.1's criteria as recorded allow it. Refused rather than
    replaced: plan drafts the course (8 sessions or 20) from it, and a type the therapist did
    not sign off must not reach the patient's plan unseen."""
    onset = state.history.onset if state.history else None
    tsk = state.measures.get("tsk17")
    typing = type_episode(EpisodeFacts(
        symptom_weeks=None if onset is None else symptom_weeks(onset, on),
        driver_count=len({d.code for d in r.drivers}),  # one driver cited twice is one
        tsk=tsk.scores.get("tsk17") if tsk else None), rules.episode)
    if typing.episode_type not in (None, r.episode_type):
        raise EpisodeTypeContradictedError(
            f"the recorded criteria make the episode {typing.episode_type} "
            f"({', '.join(typing.because)}), not {r.episode_type}: correct the episode type "
            "in the clinical reasoning, or the finding it follows from",
            recorded=r.episode_type, derived=typing.episode_type, because=list(typing.because))
    return r.episode_type


def _clinical_notes(ids: dict[str, UUID], state: Evaluation, now: datetime
                    ) -> list[public.ClinicalNotesRecorded]:
    """The free text as signed off, once, restricted: the partners service discloses it to a
    partner granted clinical free text whom the patient's consent names."""
    r = state.reasoning
    if r is None and not state.explanation:
        return []
    return [public.ClinicalNotesRecorded(
        **ids, working_diagnosis=r.working_diagnosis if r else "",
        drivers=[public.DriverRationale(code=d.code, rationale=d.rationale)
                 for d in (r.drivers if r else [])],
        explanation=state.explanation or "", recorded_at=now)]


def _changes(baseline: list[BaselineMeasure], state: Evaluation, rules: RuleSet
             ) -> list[public.MeasureChange]:
    """Each score measured both times, against its baseline and the measure's MCID/MDC.

    A patient-named item (a PSFS activity) is only ever compared with the same activity:
    the catalog asks each slot to hold the same activity at every measurement, and a swim
    rated 8 says nothing about a 30-minute run rated 2. So a slot whose activity differs
    from the baseline's reports no change (nor one whose baseline activity is not known);
    the slots that kept their activity are still compared. A score over several activities
    (the PSFS mean) is compared only when the same activities were rated both times: if any
    was changed, dropped or added it is a mean of different things, and reports no change
    either. Names are matched ignoring case and spacing ("Run 30 min" is "run  30 min");
    anything else counts as another activity."""
    before = {m.measure: m for m in baseline}
    out: list[public.MeasureChange] = []
    for code, now in state.measures.items():
        definition = measures.CATALOG[code]
        then = before.get(code)
        if not definition.compare_to_baseline or then is None:
            continue  # GROC is itself a rating of change; or not measured at baseline
        for key, current in now.scores.items():
            thresholds = rules.thresholds(definition, key)
            if key not in then.scores or thresholds is None:
                continue  # not measured at baseline, or no MCID to judge it by (TSK-17)
            if not _same_activities(definition, key, then.labels, now.rated_labels()):
                continue
            moved = measures.change(definition, thresholds, then.scores[key], current,
                                    score=key)
            out.append(public.MeasureChange(
                measure=code, score=key, baseline=then.scores[key], current=current,
                improvement=moved.improvement, mcid=moved.threshold,
                passed_mcid=moved.passed_mcid,
                possibly_noise=moved.possibly_noise, deteriorated=moved.deteriorated))
    return out


def _same_activities(definition: measures.MeasureDefinition, score: str,
                     before: dict[str, str], now: dict[str, str]) -> bool:
    """Whether each patient-named item ``score`` is computed from held the same activity (or
    none) both times."""
    spec = definition.score_spec(score)
    named = [i for i in definition.items if i.patient_named and spec and i.id in spec.items]
    return all(_activity(before.get(i.id)) == _activity(now.get(i.id)) for i in named)


def _activity(label: str | None) -> str | None:
    return None if label is None else " ".join(label.split()).casefold()


def _addendum(c: AddAddendum, state: Evaluation) -> list[EvaluationEvent]:
    if state.has_addendum(c.addendum_id):
        return []  # a retry: the addendum (and its restricted text) is disclosed once
    if state.status != "completed":
        raise EvaluationClosedError("addenda correct a completed evaluation; edit the draft")
    o = state.opened
    ids = {"evaluation_id": c.evaluation_id, "episode_id": o.episode_id,
           "patient_id": o.patient_id, "location_id": o.location_id,
           "addendum_id": c.addendum_id}
    # The text also travels restricted, as the notes it corrects did, for disclosure alone.
    return [AddendumRecorded(**ids, reason=c.reason, text=c.text, by=c.by, added_at=c.now),
            public.AddendumTextRecorded(**ids, reason=c.reason, text=c.text,
                                        recorded_at=c.now)]
