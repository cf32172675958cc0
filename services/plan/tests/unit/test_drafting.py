"""Drafting a care plan from ``evaluation.completed`` (issue #7): the expected course (§3.1),
four dated stages with exit criteria built from what was measured (§3.3), discharge criteria
from the goals with a functional, a performance and a sport/work criterion (§3.5), the
measures the stall rules track (§3.2) and first prescriptions for each driver (§4). The §5
runner is the main fixture."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from kinetic_contracts.assessment.v1.events import (
    Driver,
    EvaluationCompleted,
    FindingIndex,
    Goal,
    MeasureScore,
)
from plan.domain.content import PlanContent
from plan.domain.criteria import Criterion, met
from plan.domain.discharge import missing_kinds, validate_discharge_criteria
from plan.domain.drafting import NothingToTrackError, draft_plan
from plan.domain.exercises import Exercise, Library
from plan.domain.rules import DEFAULT_RULES, CriteriaThresholds, DischargeTarget, PlanRules

TODAY = date(2025, 5, 5)
HIP_ABD = "hip_abductor_weakness"


def score(measure: str, **scores: float) -> MeasureScore:
    return MeasureScore(measure=measure, version="1", scores=scores or {measure: 0})


def finding(finding_id: str, index: str, value: float, unit: str = "%") -> FindingIndex:
    return FindingIndex(finding_id=finding_id, index=index, value=value, unit=unit)


RUNNER_MEASURES = [
    score("nprs", nprs=6),  # running at 3 km; assessment's NPRS is one score
    score("lefs", lefs=52),
    score("psfs", psfs=3.7, psfs_01=2, psfs_02=5, psfs_03=4),
    score("tsk17", tsk17=31),
]
RUNNER_FINDINGS = [
    finding("strength:hip_abduction", "best_left", 18.0, "kgf"),
    finding("strength:hip_abduction", "best_right", 14.2, "kgf"),
    finding("strength:hip_abduction", "lsi_pct", 78.9),
    finding("strength:hip_external_rotation", "lsi_pct", 82),
    finding("strength:quadriceps", "lsi_pct", 92),
    finding("movement:sls", "right_rating", 0, "rating"),
    finding("movement:sls", "bilateral_rating", 0, "rating"),
    finding("y_balance", "anterior_asymmetry_cm", 5, "cm"),
]
RUN_GOAL = Goal(activity="Running", level="45 min at pre-injury pace, 3 times a week")


def evaluation(**changes) -> EvaluationCompleted:
    """The §5 runner: 29 F, right anterior knee pain for 10 weeks, one driver."""
    fields = dict(
        evaluation_id=uuid4(), episode_id=uuid4(), patient_id=uuid4(), location_id=uuid4(),
        therapist_id=uuid4(), symptom_sites=["knee_anterior_right"],
        drivers=[Driver(code=HIP_ABD, finding_ids=["strength:hip_abduction",
                                                   "strength:hip_external_rotation",
                                                   "movement:sls"])],
        working_diagnosis_icd10="M22.2", episode_type="acute_clear_driver", goals=[RUN_GOAL],
        baseline_measures=RUNNER_MEASURES, findings=RUNNER_FINDINGS,
        completed_at=datetime(2025, 5, 5, 10, tzinfo=UTC))
    return EvaluationCompleted(**{**fields, **changes})


def draft(rules: PlanRules = DEFAULT_RULES, library: Library | None = None,
          **changes) -> PlanContent:
    return draft_plan(evaluation(**changes), library or Library.seeded(), rules, TODAY)


@pytest.fixture
def runner() -> PlanContent:
    return draft()


def reading(criteria: tuple[Criterion, ...], ref: str, key: str | None = None
            ) -> list[Criterion]:
    return [c for c in criteria if c.ref == ref and (key is None or c.key == key)]


# -- the expected course (§3.1) -------------------------------------------------------------------

def test_the_expected_sessions_are_the_episode_types_expected_maximum(runner) -> None:
    assert runner.expected_sessions == 8
    assert draft(episode_type="chronic_multifactor").expected_sessions == 20


def test_the_target_date_is_the_end_of_the_expected_span(runner) -> None:
    assert runner.target_date == TODAY + timedelta(weeks=8)
    # 5 months of 30.44 days: 152.2 days, to the whole day.
    assert draft(episode_type="chronic_multifactor").target_date == TODAY + timedelta(days=152)


def test_a_goal_date_before_the_end_of_the_span_brings_the_target_date_forward() -> None:
    wedding = Goal(activity="Dancing", level="a whole evening", target_date=date(2025, 6, 14))
    later = Goal(activity="Hiking", level="a 20 km day", target_date=date(2025, 12, 1))
    plan = draft(goals=[RUN_GOAL, later, wedding])
    assert plan.target_date == date(2025, 6, 14)
    assert plan.stages[-1].target_date == date(2025, 6, 14)


def test_a_goal_date_that_has_passed_does_not_move_the_target_date() -> None:
    past = Goal(activity="Running", level="parkrun", target_date=TODAY)
    assert draft(goals=[past]).target_date == TODAY + timedelta(weeks=8)


def test_sessions_per_week_spread_the_expected_sessions_over_the_span(runner) -> None:
    assert runner.sessions_per_week == 1.0  # 8 sessions over 8 weeks
    assert draft(episode_type="chronic_multifactor").sessions_per_week == 0.9  # 20 / 21.7 wk
    tomorrow = Goal(activity="Running", level="a race", target_date=TODAY + timedelta(days=1))
    assert draft(goals=[tomorrow]).sessions_per_week == 7  # capped: a week has 7 days


# -- what the stall rules track (§3.2) ------------------------------------------------------------

def test_the_primary_measure_is_the_region_prom_with_its_baseline(runner) -> None:
    assert (runner.primary.rule.measure, runner.primary.value) == ("lefs", 52)
    assert runner.primary.rule.mcid == 9


def test_every_other_baseline_score_the_rules_know_is_tracked(runner) -> None:
    # TSK-17 has no MCID (a screen), and PSFS items are criteria, not tracked measures.
    assert {(b.key, b.value) for b in runner.tracked} == {("nprs", 6), ("psfs", 3.7)}


def test_without_a_region_prom_the_psfs_mean_is_primary_and_then_nprs() -> None:
    psfs_first = draft(baseline_measures=[score("nprs", nprs=6),
                                          score("psfs", psfs=3.7, psfs_01=2)])
    assert psfs_first.primary.key == "psfs"
    assert draft(baseline_measures=[score("nprs", nprs=6)]).primary.key == "nprs"


def test_a_koos_primary_is_a_function_subscale_and_the_others_are_tracked() -> None:
    plan = draft(baseline_measures=[score("koos", koos_pain=50, koos_symptoms=60,
                                          koos_adl=70, koos_sport_rec=30, koos_qol=40)])
    assert plan.primary.key == "koos_adl"
    assert {b.key for b in plan.tracked} == {"koos_pain", "koos_symptoms", "koos_sport_rec",
                                             "koos_qol"}
    functional = next(c for c in plan.discharge_criteria if c.kind == "functional")
    assert (functional.ref, functional.key, functional.min_gain) == ("koos", "koos_adl", 10.2)


def test_an_evaluation_without_a_measure_the_rules_know_has_nothing_to_track() -> None:
    with pytest.raises(NothingToTrackError) as caught:
        draft(baseline_measures=[score("tsk17", tsk17=31), score("groc", groc=2)])
    assert caught.value.type_slug == "nothing-to-track"
    with pytest.raises(NothingToTrackError):
        draft(baseline_measures=[])


# -- discharge criteria (§3.5) ------------------------------------------------------------------

def test_the_discharge_criteria_drafted_from_the_goals_have_a_functional_a_performance_and_a_sport_work_criterion(
        runner) -> None:
    validate_discharge_criteria(runner.discharge_criteria)
    assert missing_kinds(runner.discharge_criteria) == ()
    assert not [c for c in runner.discharge_criteria if c.kind == "pain"]


def test_the_functional_criterion_asks_for_the_mcid_from_baseline_and_the_default_target(
        runner) -> None:
    lefs = next(c for c in runner.discharge_criteria if c.kind == "functional")
    assert (lefs.ref, lefs.op, lefs.target, lefs.min_gain) == ("lefs", ">=", 70, 9)
    assert lefs.target >= 52 + 9
    assert runner.criterion_baselines == {lefs.id: 52}
    assert lefs.label == "LEFS ≥ 70 and at least +9 from baseline 52"
    assert not met(lefs, 69, baseline=52) and met(lefs, 70, baseline=52)


def test_without_a_default_target_the_functional_target_is_baseline_plus_mcid() -> None:
    rules = PlanRules(criteria=CriteriaThresholds(discharge_targets=()))
    lefs = next(c for c in draft(rules).discharge_criteria if c.kind == "functional")
    assert (lefs.target, lefs.min_gain) == (61, 9)


def test_a_baseline_within_one_mcid_of_the_scales_end_gets_the_end_as_its_target() -> None:
    plan = draft(baseline_measures=[score("lefs", lefs=76)])
    lefs = next(c for c in plan.discharge_criteria if c.kind == "functional")
    assert (lefs.target, lefs.min_gain) == (80, 4)  # not 85, which no LEFS reaches
    assert lefs.label == "LEFS ≥ 80 (the scale's end) and at least +4 from baseline 76"
    assert plan.criterion_baselines == {lefs.id: 76}
    assert met(lefs, 80, baseline=76) and not met(lefs, 79, baseline=76)


def test_a_baseline_at_the_scales_end_asks_for_the_end_without_a_gain() -> None:
    plan = draft(baseline_measures=[score("lefs", lefs=80)])
    lefs = next(c for c in plan.discharge_criteria if c.kind == "functional")
    assert (lefs.target, lefs.min_gain, lefs.label) == (
        80, None, "LEFS ≥ 80 (the scale's end), as at baseline")
    assert lefs.id not in plan.criterion_baselines
    assert met(lefs, 80, baseline=None) and not met(lefs, 78, baseline=None)


def test_a_lower_better_baseline_near_zero_gets_zero_as_its_target() -> None:
    plan = draft(symptom_sites=["low_back"], drivers=[Driver(code="trunk_endurance_deficit")],
                 baseline_measures=[score("odi", odi=4), score("nprs", nprs=2)], findings=[])
    odi = next(c for c in plan.discharge_criteria if c.kind == "functional")
    assert (odi.op, odi.target, odi.min_gain) == ("<=", 0, 4)


def test_a_psfs_primary_asks_for_the_mean_plus_its_mcid() -> None:
    plan = draft(baseline_measures=[score("psfs", psfs=3.7, psfs_01=2, psfs_02=5, psfs_03=4)])
    functional = next(c for c in plan.discharge_criteria if c.kind == "functional")
    assert (functional.ref, functional.target, functional.min_gain) == ("psfs", 5.7, 2)


def test_a_lower_better_prom_gets_an_upper_target_and_the_gain_in_the_good_direction() -> None:
    plan = draft(symptom_sites=["low_back"], drivers=[Driver(code="trunk_endurance_deficit")],
                 baseline_measures=[score("odi", odi=40), score("nprs", nprs=5)], findings=[])
    odi = next(c for c in plan.discharge_criteria if c.kind == "functional")
    assert (odi.ref, odi.op, odi.target, odi.min_gain) == ("odi", "<=", 30, 10)
    assert plan.criterion_baselines == {odi.id: 40}
    assert met(odi, 30, baseline=40) and not met(odi, 31, baseline=40)


def test_when_only_nprs_was_measured_the_functional_end_point_is_the_psfs_mean() -> None:
    plan = draft(baseline_measures=[score("nprs", nprs=6)])
    functional = next(c for c in plan.discharge_criteria if c.kind == "functional")
    assert (functional.ref, functional.op, functional.target) == ("psfs", ">=", 8)
    assert functional.min_gain is None and plan.criterion_baselines == {}
    validate_discharge_criteria(plan.discharge_criteria)


def test_each_driver_findings_lsi_must_reach_the_pass_mark_at_discharge(runner) -> None:
    hip_abd = reading(runner.discharge_criteria, "strength:hip_abduction", "lsi_pct")
    assert [(c.kind, c.source, c.op, c.target) for c in hip_abd] == [
        ("performance", "finding", ">=", 90)]
    assert reading(runner.discharge_criteria, "strength:hip_external_rotation", "lsi_pct")
    # Quads at 92% are not a driver finding: acceptable, not an end point.
    assert not reading(runner.all_criteria(), "strength:quadriceps")


def test_the_sls_and_y_balance_recorded_at_baseline_are_discharge_criteria(runner) -> None:
    (sls,) = reading(runner.discharge_criteria, "movement:sls", "bilateral_rating")
    assert (sls.op, sls.target) == (">=", 2)  # assessment scores poor 0, fair 1, good 2
    (ybal,) = reading(runner.discharge_criteria, "y_balance", "anterior_asymmetry_cm")
    assert (ybal.op, ybal.target) == ("<", 4)


def test_each_hop_recorded_at_baseline_must_reach_the_pass_mark() -> None:
    hops = [finding("hop_battery", f"{hop}_lsi_pct", value)
            for hop, value in (("single_hop", 84), ("triple_hop", 86), ("crossover_hop", 80))]
    plan = draft(findings=[*RUNNER_FINDINGS, *hops,
                           finding("hop_battery", "battery_lsi_pct", 80)])
    hop_criteria = reading(plan.discharge_criteria, "hop_battery")
    assert [(c.key, c.target) for c in hop_criteria] == [
        ("single_hop_lsi_pct", 90), ("triple_hop_lsi_pct", 90), ("crossover_hop_lsi_pct", 90)]
    assert not reading(plan.stages[2].exit_criteria, "hop_battery")  # hops are stage 4 work


def test_a_heel_raise_must_reach_the_lsi_and_the_minimum_reps() -> None:
    plan = draft(symptom_sites=["achilles_right"],
                 drivers=[Driver(code="calf_endurance_deficit", finding_ids=["heel_raise"])],
                 baseline_measures=[score("visa_a", visa_a=55)],
                 findings=[finding("heel_raise", "lsi_pct", 70),
                           finding("heel_raise", "involved_reps", 17, "reps")])
    heel = reading(plan.discharge_criteria, "heel_raise")
    assert [(c.key, c.op, c.target) for c in heel] == [("lsi_pct", ">=", 90),
                                                       ("involved_reps", ">=", 25)]
    assert plan.primary.key == "visa_a"


def test_without_a_usable_finding_performance_is_a_lift_at_the_prior_load() -> None:
    plan = draft(findings=[])
    (lift,) = [c for c in plan.discharge_criteria if c.kind == "performance"]
    assert (lift.source, lift.op, lift.target) == ("task", ">=", 90)
    validate_discharge_criteria(plan.discharge_criteria)


def test_each_goal_becomes_a_sport_work_task_that_a_result_of_1_achieves(runner) -> None:
    (run,) = [c for c in runner.discharge_criteria if c.source == "task"]
    assert (run.kind, run.ref, run.op, run.target) == ("sport_work", "running", ">=", 1)
    assert run.label == "Running at 45 min at pre-injury pace, 3 times a week"
    assert met(run, 1) and not met(run, 0)


def test_goals_of_one_activity_or_no_plain_letters_still_get_distinct_task_codes() -> None:
    goals = [Goal(activity="Running", level="5 km"), Goal(activity="running!", level="10 km"),
             Goal(activity="Ski-Langlauf über 10 km", level="Rennen"),
             Goal(activity="跑步", level="30 min"), Goal(activity="5-a-side football",
                                                       level="a full match")]
    tasks = [c for c in draft(goals=goals).discharge_criteria if c.source == "task"]
    assert [c.ref for c in tasks] == ["running", "running_2", "ski_langlauf_uber_10_km", "goal",
                                      "goal_5_a_side_football"]


def test_each_psfs_item_rated_at_baseline_must_reach_the_discharge_score(runner) -> None:
    items = reading(runner.discharge_criteria, "psfs")
    assert [(c.kind, c.key, c.op, c.target) for c in items] == [
        ("sport_work", f"psfs_0{n}", ">=", 8) for n in (1, 2, 3)]


# -- stages (§3.3) ------------------------------------------------------------------------------

def test_the_plan_has_the_four_default_stages_each_dated_in_order(runner) -> None:
    assert [s.code for s in runner.stages] == ["calm", "restore", "build", "perform"]
    # §5's weeks 2, 4, 8 and 10 of 10, over this plan's 8 weeks (56 days).
    assert [s.target_date for s in runner.stages] == [
        TODAY + timedelta(days=d) for d in (11, 22, 44, 56)]
    assert runner.stages[-1].target_date == runner.target_date


def test_the_last_stages_exit_criteria_are_the_discharge_criteria(runner) -> None:
    assert runner.stages[-1].exit_criteria == runner.discharge_criteria
    assert all(a is b for a, b in zip(runner.stages[-1].exit_criteria,
                                      runner.discharge_criteria, strict=True))


def test_criterion_ids_are_unique_across_the_plan(runner) -> None:
    in_stages = [c.id for s in runner.stages[:-1] for c in s.exit_criteria]
    ids = in_stages + [c.id for c in runner.discharge_criteria]
    assert len(set(ids)) == len(ids) == len(runner.all_criteria())


def test_stage_1_asks_for_pain_within_the_limit_and_the_home_program(runner) -> None:
    pain, adherence = runner.stages[0].exit_criteria
    assert (pain.kind, pain.ref, pain.op, pain.target) == ("pain", "nprs", "<=", 3)
    assert (adherence.kind, adherence.source, adherence.ref, adherence.op,
            adherence.target) == ("other", "task", "home_program_adherence_pct", ">=", 80)


def test_pain_criteria_never_stand_for_a_functional_performance_or_sport_work_end_point(
        runner) -> None:
    for c in runner.all_criteria():
        assert (c.ref == "nprs") == (c.kind == "pain")


def test_stage_2_asks_for_the_stage_2_lsi_and_a_fair_single_leg_squat(runner) -> None:
    restore = runner.stages[1].exit_criteria
    assert [(c.ref, c.key, c.target) for c in restore] == [
        ("strength:hip_abduction", "lsi_pct", 85),
        ("strength:hip_external_rotation", "lsi_pct", 85),
        ("movement:sls", "bilateral_rating", 1)]


def test_stage_3_asks_for_the_pass_lsi_a_good_single_leg_squat_and_y_balance(runner) -> None:
    build = runner.stages[2].exit_criteria
    assert [(c.ref, c.key, c.op, c.target) for c in build] == [
        ("strength:hip_abduction", "lsi_pct", ">=", 90),
        ("strength:hip_external_rotation", "lsi_pct", ">=", 90),
        ("movement:sls", "bilateral_rating", ">=", 2),
        ("y_balance", "anterior_asymmetry_cm", "<", 4)]


def test_every_stage_has_an_exit_criterion_even_when_nothing_was_tested() -> None:
    plan = draft(baseline_measures=[score("lefs", lefs=40)], findings=[])
    assert all(s.exit_criteria for s in plan.stages)
    assert [c.source for c in plan.stages[0].exit_criteria] == ["task"]  # no NPRS: a task
    assert plan.stages[1].exit_criteria[0].source == "task"
    assert plan.stages[2].exit_criteria[0].source == "task"


def test_every_number_comes_from_the_rule_set() -> None:
    rules = PlanRules(criteria=CriteriaThresholds(
        lsi_pass=95, stage2_lsi_pass=80, ybal_ant_cm=3, psfs_item_discharge=7,
        pain_max_stage1=2, adherence_pct_stage1=70, prior_load_pct=95,
        discharge_targets=(DischargeTarget(score="lefs", target=75),)))
    plan = draft(rules)
    assert [c.target for c in plan.stages[0].exit_criteria] == [2, 70]
    assert plan.stages[1].exit_criteria[0].target == 80
    assert plan.stages[2].exit_criteria[0].target == 95
    targets = {(c.ref, c.key): c.target for c in plan.discharge_criteria}
    assert targets[("lefs", None)] == 75
    assert targets[("strength:hip_abduction", "lsi_pct")] == 95
    assert targets[("y_balance", "anterior_asymmetry_cm")] == 3
    assert targets[("psfs", "psfs_01")] == 7
    (lift,) = [c for c in draft(rules, findings=[]).discharge_criteria
               if c.kind == "performance"]
    assert lift.target == 95


# -- prescriptions (§4, §5) ---------------------------------------------------------------------

def test_the_driver_gets_its_stage_1_exercises_and_the_knee_a_site_exercise(runner) -> None:
    prescribed = {p.exercise: p for p in runner.prescriptions}
    assert list(prescribed) == ["side_lying_hip_abduction", "clamshell", "wall_sit"]
    assert prescribed["side_lying_hip_abduction"].driver == HIP_ABD
    assert prescribed["side_lying_hip_abduction"].describe() == "3×15 @ BW, 2-1-2"
    assert prescribed["wall_sit"].driver is None  # symptom-site work
    assert all(p.changed_on == TODAY for p in runner.prescriptions)


def test_the_organizations_library_is_what_the_draft_prescribes_from() -> None:
    seeded = Library.seeded()
    cable_first = seeded.get("cable_hip_abduction").model_copy(update={"stages": (1, 2, 3)})
    library = Library(exercises=(Exercise.model_validate(cable_first.model_dump()),
                                 *(e for e in seeded.exercises
                                   if e.code != "cable_hip_abduction")))
    plan = draft(library=library)
    cable = plan.prescription("cable_hip_abduction")
    assert cable is not None and cable.driver == HIP_ABD and cable.load_kg == 4


def test_an_unknown_driver_gets_no_exercise() -> None:
    plan = draft(symptom_sites=["elbow_lateral_right"],
                 drivers=[Driver(code="grip_endurance_deficit")])
    assert plan.prescriptions == ()


def test_other_symptom_sites_get_an_exercise_of_their_region() -> None:
    shoulder = draft(symptom_sites=["shoulder_lateral_right"],
                     drivers=[Driver(code="scapular_control_deficit")],
                     baseline_measures=[score("spadi", spadi=48)], findings=[])
    assert [(p.exercise, p.driver) for p in shoulder.prescriptions] == [
        ("side_lying_external_rotation", "scapular_control_deficit"),
        ("prone_y_raise", "scapular_control_deficit"),
        ("isometric_shoulder_external_rotation", None)]
    back = draft(symptom_sites=["low_back"], drivers=[Driver(code="hip_mobility_deficit")],
                 baseline_measures=[score("odi", odi=40)], findings=[])
    assert back.prescriptions[-1].exercise == "cat_camel"


def test_an_exercise_two_drivers_would_pick_is_prescribed_once_for_the_first() -> None:
    def ex(code: str, *drivers: str) -> Exercise:
        return Exercise(code=code, name=code, region="hip", sets=3, reps=10, bodyweight=True,
                        instructions="As shown.", drivers=drivers, stages=(1,))

    library = Library(exercises=(ex("shared", "a_driver", "b_driver"), ex("only_a", "a_driver"),
                                 ex("only_b", "b_driver")))
    plan = draft(library=library, symptom_sites=["elbow"],
                 drivers=[Driver(code="a_driver"), Driver(code="b_driver")])
    assert [(p.exercise, p.driver) for p in plan.prescriptions] == [
        ("shared", "a_driver"), ("only_a", "a_driver"), ("only_b", "b_driver")]
