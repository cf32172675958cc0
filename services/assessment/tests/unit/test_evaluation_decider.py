"""The evaluation decider as given/when/then with CLINICAL.md §5's runner: pure, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from assessment.domain import evaluation as ev
from assessment.domain import ruleset
from assessment.domain.episode import EpisodeThresholds
from assessment.domain.errors import (
    EpisodeTypeContradictedError,
    EvaluationClosedError,
    EvaluationIncompleteError,
    OnsetInFutureError,
    RedFlagsPositiveError,
    UnknownFindingError,
)
from assessment.domain.findings import (
    ObjectiveFindings,
    SidePair,
    SingleLegSquat,
    SquatSide,
    StrengthTest,
    YBalance,
)
from assessment.domain.history import RED_FLAGS, History, RedFlagScreen
from assessment.domain.measures import AnswerOutOfRangeError, MeasureThresholds
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


# -- CLINICAL.md §3.1 applied at completion --------------------------------------------

def history(weeks_ago: int) -> ev.RecordHistory:
    return ev.RecordHistory(evaluation_id=E, now=NOW, history=History(
        onset=NOW.date() - timedelta(weeks=weeks_ago)))


def reasoning(episode_type: str, *drivers: str) -> ev.RecordReasoning:
    return ev.RecordReasoning(evaluation_id=E, now=NOW, reasoning=Reasoning(
        symptom_sites=["knee_anterior_right"], episode_type=episode_type,
        drivers=[DriverReasoning(code=code, rationale=f"{code} shown",
                                 finding_ids=["strength:hip_abduction"])
                 for code in drivers or ("hip_abductor_weakness",)]))


def tsk(total: int) -> ev.RecordMeasure:
    """TSK-17 answers adding up to ``total`` (17–68): items 4, 8, 12 and 16 are reversed, so
    they are answered 5 − points."""
    answers, extra = {}, total - 17
    for item in range(1, 18):
        points = 1 + min(3, extra)
        extra -= points - 1
        answers[f"tsk17_{item:02d}"] = 5 - points if item in (4, 8, 12, 16) else points
    return ev.RecordMeasure(evaluation_id=E, now=NOW, measure="tsk17", answers=answers)


def complete(state: ev.EvaluationState, rules: ruleset.RuleSet = ruleset.INITIAL) -> list:
    return ev.decide(ev.CompleteEvaluation(evaluation_id=E, now=NOW, rules=rules), state)


def test_given_two_drivers_typed_acute_when_completed_then_refused_naming_chronic():
    state = given(*whole_runner(), reasoning("acute_clear_driver", "hip_abductor_weakness",
                                             "load_spike"))
    with pytest.raises(EpisodeTypeContradictedError) as refused:
        complete(state)
    assert refused.value.extensions == {
        "recorded": "acute_clear_driver", "derived": "chronic_multifactor",
        "because": ["2 drivers"]}


def test_given_two_drivers_typed_chronic_when_completed_then_published_chronic():
    state = given(*whole_runner(), reasoning("chronic_multifactor", "hip_abductor_weakness",
                                             "load_spike"))
    completed, *_ = complete(state)
    assert isinstance(completed, EvaluationCompleted)
    assert completed.episode_type == "chronic_multifactor"


def test_given_one_driver_cited_twice_then_it_counts_once():
    state = given(*whole_runner(), history(10),
                  reasoning("acute_clear_driver", "hip_abductor_weakness",
                            "hip_abductor_weakness"))
    assert complete(state)[0].episode_type == "acute_clear_driver"


def test_given_symptoms_for_12_weeks_typed_acute_when_completed_then_refused():
    state = given(*whole_runner(), history(12))
    with pytest.raises(EpisodeTypeContradictedError) as refused:
        complete(state)
    assert refused.value.extensions["because"] == ["symptoms for 12 weeks (≥ 12)"]


def test_given_tsk_above_37_typed_acute_when_completed_then_refused():
    state = given(*whole_runner(), history(10), tsk(38))
    assert state.measures["tsk17"].scores == {"tsk17": 38.0}
    with pytest.raises(EpisodeTypeContradictedError) as refused:
        complete(state)
    assert refused.value.extensions["because"] == ["TSK-17 38 (> 37)"]


def test_given_tsk_37_and_10_weeks_typed_acute_when_completed_then_published_acute():
    state = given(*whole_runner(), history(10), tsk(37))
    assert state.measures["tsk17"].scores == {"tsk17": 37.0}
    assert complete(state)[0].episode_type == "acute_clear_driver"


def test_given_the_runners_facts_typed_chronic_when_completed_then_refused_naming_acute():
    state = given(*whole_runner(), history(10), reasoning("chronic_multifactor"))
    with pytest.raises(EpisodeTypeContradictedError) as refused:
        complete(state)
    assert refused.value.extensions["derived"] == "acute_clear_driver"


def test_given_no_onset_and_one_driver_when_completed_then_the_therapists_type_stands():
    assert complete(given(*whole_runner()))[0].episode_type == REASONING.episode_type
    chronic = given(*whole_runner(), reasoning("chronic_multifactor"))
    assert complete(chronic)[0].episode_type == "chronic_multifactor"


def test_given_the_organizations_shorter_cutoff_when_completed_then_10_weeks_is_chronic():
    rules = ruleset.RuleSet(version=2, episode=EpisodeThresholds(acute_weeks_cutoff=8))
    with pytest.raises(EpisodeTypeContradictedError):
        complete(given(*whole_runner(), history(10)), rules)


def test_given_a_future_onset_when_history_recorded_then_refused_and_nothing_recorded():
    with pytest.raises(OnsetInFutureError):
        ev.decide(ev.RecordHistory(evaluation_id=E, now=NOW, history=History(
            onset=NOW.date() + timedelta(days=5))), given())


def test_given_episode_cutoffs_when_ruleset_changed_then_a_new_version_keeps_them():
    cutoffs = EpisodeThresholds(acute_weeks_cutoff=10, tsk_high=40)
    [changed] = ruleset.decide(ruleset.ChangeRuleSet(
        organization_id="org", episode=cutoffs, changed_by="Olivia", now=NOW),
        ruleset.INITIAL)
    after = ruleset.evolve(ruleset.INITIAL, changed)
    assert (after.version, after.episode) == (2, cutoffs)
    assert ruleset.decide(ruleset.ChangeRuleSet(
        organization_id="org", episode=cutoffs, changed_by="Olivia", now=NOW), after) == []


def test_given_a_ruleset_change_recorded_before_episode_cutoffs_then_defaults_apply():
    old = {"organization_id": "org", "version": 2, "measures": {}, "findings": {},
           "changed_by": "Olivia", "changed_at": NOW.isoformat()}
    assert ruleset.RuleSetChanged.model_validate(old).episode == EpisodeThresholds()


def test_given_an_addendum_when_added_again_with_its_id_then_nothing_changes():
    state = given(*whole_runner(), ev.CompleteEvaluation(evaluation_id=E, now=NOW))
    again = ev.AddAddendum(evaluation_id=E, now=NOW, addendum_id=uuid.uuid4(), reason="typo",
                           text="Hip ER was 9.0 kgf", by="Tara")
    for event in ev.decide(again, state):
        state = ev.evolve(state, event)
    assert ev.decide(again, state) == []
    assert len(state.addenda) == 1


# -- a driver cites recorded findings, at completion too ------------------------------------

def y_balance_only() -> ev.RecordFindings:
    return ev.RecordFindings(evaluation_id=E, now=NOW, findings=ObjectiveFindings(
        y_balance=[YBalance(anterior_cm=SidePair(left=63, right=58))]))


def test_given_findings_saved_again_without_a_cited_finding_when_completed_then_refused():
    state = given(*whole_runner(), reasoning("acute_clear_driver"), y_balance_only())
    with pytest.raises(UnknownFindingError) as refused:
        complete(state)
    assert refused.value.type_slug == "unknown-finding"
    assert refused.value.extensions == {"finding_id": "strength:hip_abduction",
                                        "finding_ids": ["strength:hip_abduction"]}
    assert "strength:hip_abduction" in refused.value.detail


def test_given_the_cited_finding_recorded_again_when_completed_then_published():
    state = given(*whole_runner(), reasoning("acute_clear_driver"), y_balance_only(),
                  runner_findings())
    completed, *_ = complete(state)
    assert completed.drivers[0].finding_ids == ["strength:hip_abduction"]


def test_given_a_reassessments_findings_saved_without_a_cited_one_when_completed_then_refused():
    state = given(ev.ScreenRedFlags(evaluation_id=E, now=NOW, screen=NEGATIVE), lefs(),
                  runner_findings(), reasoning("acute_clear_driver"), y_balance_only(),
                  kind="reassessment", baseline=uuid.uuid4())
    baseline = [MeasureScore(measure="lefs", version="1", scores={"lefs": 52.0})]
    with pytest.raises(UnknownFindingError):
        ev.decide(ev.CompleteEvaluation(evaluation_id=E, now=NOW, baseline_measures=baseline),
                  state)


# -- the rule set a completion was judged by --------------------------------------------------

def test_given_findings_judged_by_version_1_when_completed_under_version_3_then_3_is_recorded():
    state = given(*whole_runner(), history(10))
    assert state.findings.ruleset_version == 1
    rules = ruleset.RuleSet(version=3, episode=EpisodeThresholds(acute_weeks_cutoff=11))
    completed, *_ = complete(state, rules)
    assert (completed.episode_type, completed.ruleset_version) == ("acute_clear_driver", 3)


# -- PSFS: the same slot, the same activity ---------------------------------------------------

def psfs(**slots: tuple[str, int]) -> ev.RecordMeasure:
    return ev.RecordMeasure(evaluation_id=E, now=NOW, measure="psfs",
                            answers={k: v for k, (_, v) in slots.items()},
                            labels={k: name for k, (name, _) in slots.items()})


RUNNERS_PSFS = psfs(psfs_01=("run 30 min", 2), psfs_02=("stairs down", 5),
                    psfs_03=("squat to lift child", 4))  # mean 3.7


def reassessed(*measured: ev.RecordMeasure, baseline: list | None = None) -> dict:
    """The reassessment's changes against the runner's initial PSFS, passed as the
    application passes it: the completed initial evaluation's ``baseline()``."""
    if baseline is None:
        baseline = given(ev.ScreenRedFlags(evaluation_id=E, now=NOW, screen=NEGATIVE),
                         RUNNERS_PSFS).baseline()
    state = given(ev.ScreenRedFlags(evaluation_id=E, now=NOW, screen=NEGATIVE), *measured,
                  kind="reassessment", baseline=uuid.uuid4())
    completed, *_ = ev.decide(ev.CompleteEvaluation(evaluation_id=E, now=NOW,
                                                    baseline_measures=baseline), state)
    return {c.score: c for c in completed.changes}


def test_given_the_same_psfs_activities_when_reassessed_then_each_and_the_mean_are_compared():
    changes = reassessed(psfs(psfs_01=("Run 30 min", 6), psfs_02=("stairs  down", 8),
                              psfs_03=("squat to lift child", 5)))  # mean 6.3
    assert sorted(changes) == ["psfs", "psfs_01", "psfs_02", "psfs_03"]
    assert (changes["psfs_01"].baseline, changes["psfs_01"].current) == (2, 6)
    assert (changes["psfs"].baseline, changes["psfs"].current) == (3.7, 6.3)
    assert changes["psfs"].passed_mcid is True


def test_given_a_psfs_slot_holding_another_activity_when_reassessed_then_it_is_not_compared():
    changes = reassessed(psfs(psfs_01=("swim", 8), psfs_02=("stairs down", 8),
                              psfs_03=("squat to lift child", 7)))
    assert "psfs_01" not in changes, "a swim rated 8 is no change from a run rated 2"
    assert "psfs" not in changes, "the mean of other activities is not compared"
    assert (changes["psfs_02"].improvement, changes["psfs_02"].passed_mcid) == (3.0, True)
    assert changes["psfs_03"].improvement == 3.0


def test_given_a_psfs_activity_dropped_when_reassessed_then_the_mean_is_not_compared():
    changes = reassessed(psfs(psfs_02=("stairs down", 8), psfs_03=("squat to lift child", 7),
                              psfs_04=("hop", 6)))
    assert sorted(changes) == ["psfs_02", "psfs_03"]


def test_given_a_baseline_without_its_psfs_activities_then_no_psfs_change_is_reported():
    unnamed = [MeasureScore(measure="psfs", version="1",
                            scores={"psfs": 3.7, "psfs_01": 2, "psfs_02": 5, "psfs_03": 4})]
    assert reassessed(psfs(psfs_01=("swim", 8), psfs_02=("stairs down", 8),
                           psfs_03=("squat to lift child", 7)), baseline=unnamed) == {}


def test_the_published_baseline_carries_no_psfs_activity_names():
    state = given(*whole_runner(), RUNNERS_PSFS)
    assert state.baseline()[-1].labels["psfs_01"] == "run 30 min"
    completed, *_ = complete(state)
    assert "run 30 min" not in completed.model_dump_json()


# -- the NDI's two scales read one change one way ---------------------------------------------

def ndi(points: list[int]) -> ev.RecordMeasure:
    return ev.RecordMeasure(evaluation_id=E, now=NOW, measure="ndi",
                            answers={f"ndi_{n:02d}": p for n, p in enumerate(points, start=1)})


def test_given_an_ndi_override_when_reassessed_then_both_scales_give_one_verdict():
    [changed] = ruleset.decide(ruleset.ChangeRuleSet(
        organization_id="org", measures={"ndi": MeasureThresholds(mcid=7.5, mdc=8)},
        changed_by="Olivia", now=NOW), ruleset.INITIAL)
    rules = ruleset.evolve(ruleset.INITIAL, changed)
    state = given(ev.ScreenRedFlags(evaluation_id=E, now=NOW, screen=NEGATIVE),
                  ndi([3] + [2] * 9),  # 21 / 50, 42 %
                  kind="reassessment", baseline=uuid.uuid4())
    baseline = [MeasureScore(measure="ndi", version="1", scores={"ndi": 30, "ndi_pct": 60})]
    completed, *_ = ev.decide(ev.CompleteEvaluation(
        evaluation_id=E, now=NOW, baseline_measures=baseline, rules=rules), state)
    changes = {c.score: c for c in completed.changes}
    assert (changes["ndi"].improvement, changes["ndi"].mcid) == (9.0, 8.0)
    assert (changes["ndi_pct"].improvement, changes["ndi_pct"].mcid) == (18.0, 16.0)
    assert changes["ndi"].passed_mcid is changes["ndi_pct"].passed_mcid is True
