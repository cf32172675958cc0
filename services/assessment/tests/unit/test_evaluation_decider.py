"""The evaluation decider as given/when/then with CLINICAL.md §5's runner: pure, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from assessment.domain import evaluation as ev
from assessment.domain.errors import (
    EvaluationClosedError,
    EvaluationIncompleteError,
    RedFlagsPositiveError,
    UnknownFindingError,
)
from assessment.domain.findings import ObjectiveFindings, SingleLegSquat, SquatSide, StrengthTest
from assessment.domain.history import RED_FLAGS, RedFlagScreen
from assessment.domain.measures import AnswerOutOfRangeError
from assessment.domain.reasoning import DriverReasoning, Reasoning, draft_explanation
from kinetic_contracts.assessment.v1.events import (
    AddendumTextRecorded,
    ClinicalNotesRecorded,
    EvaluationCompleted,
    Goal,
    MeasureScore,
    OutcomeMeasured,
    ReassessmentCompleted,
)

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
E = uuid.uuid4()
NEGATIVE = RedFlagScreen(answers={q: False for q in RED_FLAGS})
POOR = SquatSide(overall="poor", trunk="fair", pelvis="poor", hip="poor", knee="poor")
GOOD = SquatSide(overall="good", trunk="good", pelvis="good", hip="good", knee="good")


def given(*commands, kind="initial", baseline=None) -> ev.EvaluationState:
    state: ev.EvaluationState = ev.INITIAL
    opened = ev.OpenEvaluation(evaluation_id=E, now=NOW, kind=kind, episode_id=uuid.uuid4(),
                               patient_id=uuid.uuid4(), location_id=uuid.uuid4(),
                               baseline_evaluation_id=baseline)
    for command in (opened, *commands):
        for event in ev.decide(command, state):
            state = ev.evolve(state, event)
    return state


def lefs() -> ev.RecordMeasure:
    """LEFS 52/80, the runner's baseline: twelve items at 3, eight at 2."""
    answers = {f"lefs_{n:02d}": 3 for n in range(1, 21)}  # 60
    for n in range(1, 9):
        answers[f"lefs_{n:02d}"] = 2  # 60 − 8 = 52
    return ev.RecordMeasure(evaluation_id=E, now=NOW, measure="lefs", answers=answers)


def runner_findings() -> ev.RecordFindings:
    return ev.RecordFindings(evaluation_id=E, now=NOW, findings=ObjectiveFindings(
        strength=[StrengthTest(muscle_group="hip_abduction", unit="kgf", involved_side="right",
                               trials_right=(13.6, 14.2, 13.9), trials_left=(17.5, 18.0, 17.8))],
        movement=[SingleLegSquat(right=POOR, left=GOOD)]))


REASONING = Reasoning(
    symptom_sites=["knee_anterior_right"], episode_type="acute_clear_driver",
    working_diagnosis="Patellofemoral pain", working_diagnosis_icd10="M22.2",
    drivers=[DriverReasoning(code="hip_abductor_weakness",
                             rationale="Hip abduction LSI 79%; knee valgus on the SLS",
                             finding_ids=["strength:hip_abduction", "movement:sls"])])


def whole_runner() -> list:
    return [ev.ScreenRedFlags(evaluation_id=E, now=NOW, screen=NEGATIVE), lefs(),
            ev.RecordGoals(evaluation_id=E, now=NOW, goals=[Goal(
                activity="running", level="45 min at pre-injury pace, 3 times a week")]),
            runner_findings(), ev.RecordReasoning(evaluation_id=E, now=NOW, reasoning=REASONING),
            ev.WriteExplanation(evaluation_id=E, now=NOW, text="Your knee hurts; the hip drives it.")]


def test_the_runners_evaluation_completes_with_site_driver_and_baseline():
    state = given(*whole_runner())
    hip = next(i for i in state.findings.indices
               if (i.finding_id, i.index) == ("strength:hip_abduction", "lsi_pct"))
    assert round(hip.value) == 79 and hip.passed is False
    assert state.measures["lefs"].scores == {"lefs": 52.0}
    completed, measured, notes = ev.decide(ev.CompleteEvaluation(evaluation_id=E, now=NOW),
                                           state)
    assert isinstance(completed, EvaluationCompleted) and isinstance(measured, OutcomeMeasured)
    assert completed.symptom_sites == ["knee_anterior_right"]
    assert [d.code for d in completed.drivers] == ["hip_abductor_weakness"]
    assert completed.baseline_measures == [MeasureScore(measure="lefs", version="1",
                                                        scores={"lefs": 52.0})]
    # The free text leaves once, restricted, and no public event carries it.
    assert isinstance(notes, ClinicalNotesRecorded) and notes.data_class == "clinical_free_text"
    assert notes.explanation == "Your knee hurts; the hip drives it."
    assert [d.code for d in notes.drivers] == ["hip_abductor_weakness"]
    assert notes.drivers[0].rationale and notes.drivers[0].rationale not in (
        completed.model_dump_json() + measured.model_dump_json())


def test_an_incomplete_evaluation_says_what_is_missing():
    with pytest.raises(EvaluationIncompleteError) as refused:
        ev.decide(ev.CompleteEvaluation(evaluation_id=E, now=NOW), given(lefs()))
    assert "red-flag screening" in str(refused.value) and "goals" in str(refused.value)


def test_a_positive_red_flag_refuses_completion_and_refers_out():
    screen = RedFlagScreen(answers={**NEGATIVE.answers, "history_of_cancer": True})
    state = given(*whole_runner(), ev.ScreenRedFlags(evaluation_id=E, now=NOW, screen=screen))
    with pytest.raises(RedFlagsPositiveError):
        ev.decide(ev.CompleteEvaluation(evaluation_id=E, now=NOW), state)
    [referred] = ev.decide(ev.ReferOut(evaluation_id=E, now=NOW), state)
    assert referred.red_flags == ["history_of_cancer"]


def test_a_completed_evaluation_rejects_edits_but_takes_an_addendum():
    state = given(*whole_runner(), ev.CompleteEvaluation(evaluation_id=E, now=NOW))
    with pytest.raises(EvaluationClosedError):
        ev.decide(lefs(), state)
    [added, text] = ev.decide(ev.AddAddendum(
        evaluation_id=E, now=NOW, addendum_id=uuid.uuid4(), reason="typo",
        text="Hip ER was 9.0 kgf", by="Tara"), state)
    assert added.to_public().addendum_id == added.addendum_id
    assert not hasattr(added.to_public(), "text")
    # The text travels only restricted, for the partners service to disclose.
    assert isinstance(text, AddendumTextRecorded) and text.data_class == "clinical_free_text"
    assert (text.addendum_id, text.reason, text.text) == (added.addendum_id, "typo",
                                                          "Hip ER was 9.0 kgf")
    assert text.aggregate_id() == added.addendum_id  # kept beside the notes, not over them


def test_out_of_range_answers_are_refused():
    with pytest.raises(AnswerOutOfRangeError):
        ev.decide(ev.RecordMeasure(evaluation_id=E, now=NOW, measure="nprs",
                                   answers={"nprs_01": 11}), given())


def test_a_driver_must_cite_recorded_findings():
    with pytest.raises(UnknownFindingError):
        ev.decide(ev.RecordReasoning(evaluation_id=E, now=NOW, reasoning=REASONING), given())


def test_a_reassessment_reports_change_against_baseline_in_the_good_direction():
    baseline = [MeasureScore(measure="lefs", version="1", scores={"lefs": 52.0}),
                MeasureScore(measure="nprs", version="1", scores={"nprs": 6.0})]
    state = given(ev.ScreenRedFlags(evaluation_id=E, now=NOW, screen=NEGATIVE),
                  ev.RecordMeasure(evaluation_id=E, now=NOW, measure="lefs",
                                   answers={f"lefs_{n:02d}": 3 for n in range(1, 21)} | {
                                       "lefs_01": 4}),  # 61
                  ev.RecordMeasure(evaluation_id=E, now=NOW, measure="nprs",
                                   answers={"nprs_01": 5}),
                  kind="reassessment", baseline=uuid.uuid4())
    completed, *_ = ev.decide(ev.CompleteEvaluation(evaluation_id=E, now=NOW,
                                                    baseline_measures=baseline), state)
    assert isinstance(completed, ReassessmentCompleted)
    changes = {c.measure: c for c in completed.changes}
    assert (changes["lefs"].improvement, changes["lefs"].passed_mcid) == (9.0, True)
    assert (changes["nprs"].improvement, changes["nprs"].passed_mcid) == (1.0, False)
    assert changes["nprs"].possibly_noise is True  # below the MDC of 1.8


def test_the_explanation_draft_names_site_and_driver_in_plain_words():
    text = draft_explanation(REASONING, {"strength:hip_abduction": 21.1})
    assert text.startswith("The front of your right knee is the place that hurts, but it is "
                           "not the cause.")
    assert "about 20% weaker" in text


def test_the_organizations_numbers_judge_the_change_and_their_version_is_recorded():
    from assessment.domain import ruleset
    from assessment.domain.measures import MeasureThresholds

    [changed] = ruleset.decide(ruleset.ChangeRuleSet(
        organization_id="org", measures={"lefs": MeasureThresholds(mcid=12, mdc=9)},
        changed_by="Olivia", now=NOW), ruleset.INITIAL)
    stricter = ruleset.evolve(ruleset.INITIAL, changed)
    assert stricter.version == 2
    baseline = [MeasureScore(measure="lefs", version="1", scores={"lefs": 52.0})]
    state = given(ev.ScreenRedFlags(evaluation_id=E, now=NOW, screen=NEGATIVE),
                  ev.RecordMeasure(evaluation_id=E, now=NOW, measure="lefs",
                                   answers={f"lefs_{n:02d}": 3 for n in range(1, 21)} | {
                                       "lefs_01": 4}),
                  kind="reassessment", baseline=uuid.uuid4())
    completed, *_ = ev.decide(ev.CompleteEvaluation(
        evaluation_id=E, now=NOW, baseline_measures=baseline, rules=stricter), state)
    [lefs_change] = completed.changes
    assert (lefs_change.improvement, lefs_change.mcid, lefs_change.passed_mcid) == (9.0, 12.0,
                                                                                    False)
    assert completed.ruleset_version == 2
    assert ruleset.decide(ruleset.ChangeRuleSet(
        organization_id="org", measures={"lefs": MeasureThresholds(mcid=12, mdc=9)},
        changed_by="Olivia", now=NOW), stricter) == []
