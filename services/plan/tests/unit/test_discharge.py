"""Discharge (CLINICAL.md §3.5) with the §5 runner's criteria: refused while one criterion is
unmet, allowed when all are; the override records who, why and when; pain reduction alone never
satisfies discharge. Also criteria themselves, the §3.1 episode typing and expected course, and
what a plan needs before activation."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

import pytest
from pydantic import BaseModel, ValidationError

from kinetic_contracts.assessment.v1.events import FindingIndex, MeasureScore
from kinetic_contracts.problems import RuleViolationError
from plan.domain.criteria import (
    BaselineRequiredError,
    Criterion,
    CriterionResult,
    DuplicateCriterionError,
    met,
    read_value,
)
from plan.domain.discharge import (
    DischargeCriteriaIncompleteError,
    DischargeOverride,
    DischargeRefusedError,
    EpisodeFactsError,
    PlanNotActivatableError,
    can_activate,
    classify_episode,
    discharge_allowed,
    expected_course,
    require_activatable,
    require_discharge,
    validate_discharge_criteria,
)

NOW = datetime(2025, 5, 12, 16, 30, tzinfo=UTC)

LEFS = Criterion(id="lefs", kind="functional", label="LEFS ≥ 70 and at least +9 from baseline",
                 source="measure", ref="lefs", op=">=", target=70, min_gain=9)
PSFS = tuple(
    Criterion(id=f"psfs_{n}", kind="sport_work", label=f"PSFS {activity} ≥ 8",
              source="measure", ref="psfs", key=f"psfs_0{n}", op=">=", target=8)
    for n, activity in ((1, "run 30 min"), (2, "stairs down"), (3, "squat to lift child")))
HIP_ABD = Criterion(id="hip_abd_lsi", kind="performance", label="Hip abduction LSI ≥ 90%",
                    source="finding", ref="strength:hip_abduction", key="lsi_pct", op=">=",
                    target=90)
Y_BALANCE = Criterion(id="y_balance", kind="performance", label="Y-balance anterior < 4 cm",
                      source="finding", ref="y_balance", key="anterior_asymmetry_cm", op="<",
                      target=4)
RUN = Criterion(id="run_45", kind="sport_work",
                label="45 min at pre-injury pace 3×/week for 2 weeks, NPRS ≤ 2/10",
                source="task", ref="run_45min_pre_injury_pace", op=">=", target=1)
RUNNER = (LEFS, *PSFS, HIP_ABD, Y_BALANCE, RUN)

PAIN_ONLY = (
    Criterion(id="pain_run", kind="pain", label="NPRS running ≤ 2", source="measure",
              ref="nprs", key="running", op="<=", target=2),
    Criterion(id="pain_stairs", kind="pain", label="NPRS stairs ≤ 1", source="measure",
              ref="nprs", key="stairs_down", op="<=", target=1),
)


def results(**values: float) -> list[CriterionResult]:
    passing = {"lefs": 72.0, "psfs_1": 8.0, "psfs_2": 9.0, "psfs_3": 8.0,
               "hip_abd_lsi": 91.0, "y_balance": 3.0, "run_45": 1.0, **values}
    return [CriterionResult(criterion_id=k, value=v, baseline=52 if k == "lefs" else None)
            for k, v in passing.items()]


def override(**changes) -> DischargeOverride:
    fields = dict(clinician_id=uuid4(), reason_code="patient_withdrew",
                  free_text="Moving abroad; home program given", timestamp=NOW)
    return DischargeOverride(**{**fields, **changes})


# -- criteria ---------------------------------------------------------------------------------

def test_criterion_lefs_70_and_plus_9_from_baseline():
    assert met(LEFS, 70, baseline=61)  # both exactly at the bar
    assert not met(LEFS, 69, baseline=52)  # +17 but below 70
    assert not met(LEFS, 70, baseline=62)  # 70 but only +8


def test_criterion_gain_is_read_in_the_direction_the_comparison_names():
    odi = Criterion(id="odi", kind="functional", label="ODI ≤ 20 and 10 better",
                    source="measure", ref="odi", op="<=", target=20, min_gain=10)
    assert met(odi, 20, baseline=30)
    assert not met(odi, 20, baseline=29)


def test_criterion_gain_compares_decimals_as_entered():
    psfs = Criterion(id="psfs_avg", kind="sport_work", label="PSFS avg ≥ 5.7 (+2)",
                     source="measure", ref="psfs", op=">=", target=5.7, min_gain=2)
    assert met(psfs, 5.7, baseline=3.7)


def test_criterion_gain_needs_a_baseline():
    with pytest.raises(BaselineRequiredError):
        met(LEFS, 75)


@pytest.mark.parametrize(("op", "value", "expected"), [
    (">=", 90, True), (">", 90, False), ("<=", 90, True), ("<", 90, False),
    (">", 90.1, True), ("<", 89.9, True)])
def test_criterion_comparisons_at_the_boundary(op, value, expected):
    c = Criterion(id="c", kind="performance", label="c", source="finding", ref="f", key="i",
                  op=op, target=90)
    assert met(c, value) is expected


def test_criterion_nprs_is_always_a_pain_criterion():
    with pytest.raises(ValidationError):
        Criterion(id="x", kind="functional", label="NPRS ≤ 2", source="measure", ref="nprs",
                  op="<=", target=2)


def test_criterion_functional_is_a_prom_target_and_performance_a_test_or_task():
    with pytest.raises(ValidationError):
        Criterion(id="x", kind="functional", label="x", source="finding", ref="f", key="i",
                  op=">=", target=1)
    with pytest.raises(ValidationError):
        Criterion(id="x", kind="performance", label="x", source="measure", ref="lefs",
                  op=">=", target=1)


def test_criterion_value_is_read_from_assessment_event_data():
    measures = [MeasureScore(measure="lefs", version="1", scores={"lefs": 71}),
                MeasureScore(measure="psfs", version="1",
                             scores={"psfs": 8.3, "psfs_01": 8, "psfs_02": 9})]
    findings = [FindingIndex(finding_id="strength:hip_abduction", index="lsi_pct", value=91.5,
                             unit="%")]
    assert read_value(LEFS, measures, findings) == 71
    assert read_value(PSFS[1], measures, findings) == 9
    assert read_value(PSFS[2], measures, findings) is None  # not scored this time
    assert read_value(HIP_ABD, measures, findings) == 91.5
    assert read_value(RUN, measures, findings) is None  # recorded in plan, not assessment


# -- §3.5 discharge ---------------------------------------------------------------------------

def test_discharge_refused_while_one_criterion_is_unmet():
    decision = discharge_allowed(RUNNER, results(y_balance=4))  # < 4 cm needed
    assert not decision.allowed and decision.basis == "refused"
    assert decision.unmet == ("y_balance",)
    assert "Y-balance anterior < 4 cm" in decision.reason
    with pytest.raises(DischargeRefusedError) as refused:
        require_discharge(RUNNER, results(y_balance=4))
    assert isinstance(refused.value, RuleViolationError)
    assert refused.value.extensions["unmet"] == ["y_balance"]


def test_discharge_refused_while_a_criterion_has_no_result():
    partial = [r for r in results() if r.criterion_id != "psfs_3"]
    assert discharge_allowed(RUNNER, partial).unmet == ("psfs_3",)


def test_discharge_allowed_when_every_criterion_is_met():
    decision = discharge_allowed(RUNNER, results())
    assert decision.allowed and decision.basis == "criteria_met"
    assert decision.unmet == () and decision.override is None
    assert all(v.met for v in decision.verdicts)


def test_discharge_refused_then_allowed_as_the_last_criterion_is_met():
    history = results(y_balance=5)
    assert not discharge_allowed(RUNNER, history).allowed
    history.append(CriterionResult(criterion_id="y_balance", value=3.5))
    assert discharge_allowed(RUNNER, history).allowed


def test_discharge_the_latest_result_counts():
    lost = [*results(), CriterionResult(criterion_id="hip_abd_lsi", value=88)]
    assert discharge_allowed(RUNNER, lost).unmet == ("hip_abd_lsi",)


def test_discharge_override_records_who_why_and_when():
    who = uuid4()
    given = override(clinician_id=who, reason_code="plateau_accepted",
                     free_text="Plateau for 4 weeks; patient content with running 30 min")
    decision = discharge_allowed(RUNNER, results(lefs=65), given)
    assert decision.allowed and decision.basis == "override"
    assert decision.unmet == ("lefs",)  # what was overridden stays on the record
    assert decision.override.clinician_id == who
    assert decision.override.reason_code == "plateau_accepted"
    assert decision.override.timestamp == NOW
    assert "plateau_accepted" in decision.reason and str(who) in decision.reason


@pytest.mark.parametrize("code", ["patient_goal_met_early", "patient_withdrew", "referred_out",
                                  "plateau_accepted", "other"])
def test_discharge_override_reason_codes(code):
    assert discharge_allowed(RUNNER, [], override(reason_code=code)).allowed


@pytest.mark.parametrize("bad", [{"reason_code": "insurance_ran_out"}, {"free_text": ""},
                                 {"free_text": "  "}, {"clinician_id": None},
                                 {"timestamp": None}])
def test_discharge_override_needs_clinician_known_reason_text_and_time(bad):
    with pytest.raises(ValidationError):
        override(**bad)


def test_discharge_pain_only_criteria_refused_even_when_all_are_met():
    all_met = [CriterionResult(criterion_id="pain_run", value=0),
               CriterionResult(criterion_id="pain_stairs", value=0)]
    decision = discharge_allowed(PAIN_ONLY, all_met)
    assert not decision.allowed and decision.unmet == ()
    assert decision.missing_kinds == ("functional", "performance", "sport_work")
    assert "pain reduction alone never satisfies discharge" in decision.reason
    with pytest.raises(DischargeCriteriaIncompleteError) as refused:
        validate_discharge_criteria(PAIN_ONLY)
    assert isinstance(refused.value, RuleViolationError)
    assert refused.value.extensions["missing"] == ["functional", "performance", "sport_work"]


def test_discharge_pain_criteria_never_stand_in_for_a_required_kind():
    with_pain = (LEFS, HIP_ABD, *PAIN_ONLY)  # no sport/work criterion
    with pytest.raises(DischargeCriteriaIncompleteError) as refused:
        validate_discharge_criteria(with_pain)
    assert refused.value.extensions["missing"] == ["sport_work"]


@pytest.mark.parametrize("dropped", ["functional", "performance", "sport_work"])
def test_discharge_criteria_need_one_of_each_required_kind(dropped):
    criteria = [c for c in RUNNER if c.kind != dropped]
    with pytest.raises(DischargeCriteriaIncompleteError):
        validate_discharge_criteria(criteria)
    assert not discharge_allowed(criteria, results()).allowed


def test_discharge_pain_criteria_must_be_met_too():
    criteria = (*RUNNER, PAIN_ONLY[0])
    validate_discharge_criteria(criteria)
    decision = discharge_allowed(criteria, [*results(),
                                            CriterionResult(criterion_id="pain_run", value=3)])
    assert decision.unmet == ("pain_run",)


def test_discharge_the_runner_criteria_are_complete():
    validate_discharge_criteria(RUNNER)


def test_discharge_criteria_ids_are_unique():
    with pytest.raises(DuplicateCriterionError):
        validate_discharge_criteria((*RUNNER, LEFS))


def test_discharge_without_criteria_is_refused_unless_overridden():
    assert not discharge_allowed((), []).allowed
    assert discharge_allowed((), [], override()).allowed


# -- §3.1 episode typing and expected course --------------------------------------------------

def test_expected_course_acute_6_to_8_sessions_over_4_to_8_weeks():
    course = expected_course("acute_clear_driver")
    assert (course.sessions_min, course.sessions_max) == (6, 8)
    assert (course.span_min, course.span_max, course.span_unit) == (4, 8, "weeks")


def test_expected_course_chronic_12_to_20_sessions_over_3_to_5_months():
    course = expected_course("chronic_multifactor")
    assert (course.sessions_min, course.sessions_max) == (12, 20)
    assert (course.span_min, course.span_max, course.span_unit) == (3, 5, "months")


def test_classify_episode_section_5_runner_is_acute():
    assert classify_episode(10, 1, 31) == "acute_clear_driver"


@pytest.mark.parametrize(("weeks", "drivers", "tsk", "expected"), [
    (11.9, 1, None, "acute_clear_driver"), (12, 1, None, "chronic_multifactor"),
    (4, 2, None, "chronic_multifactor"),
    (4, 1, 37, "acute_clear_driver"), (4, 1, 38, "chronic_multifactor")])
def test_classify_episode_boundaries(weeks, drivers, tsk, expected):
    assert classify_episode(weeks, drivers, tsk) == expected


def test_classify_episode_cutoffs_are_configurable():
    assert classify_episode(10, 1, None, acute_weeks_cutoff=8) == "chronic_multifactor"
    assert classify_episode(4, 1, 35, tsk_high=34) == "chronic_multifactor"


def test_classify_episode_needs_a_driver():
    with pytest.raises(EpisodeFactsError):
        classify_episode(4, 0, None)


# -- §3.1 activation --------------------------------------------------------------------------

class Draft(BaseModel):
    discharge_criteria: tuple[Criterion, ...] = RUNNER
    expected_sessions: int | None = 8
    target_date: date | None = date(2025, 5, 12)


def test_can_activate_with_end_point_session_count_and_target_date():
    assert can_activate(Draft()).allowed
    require_activatable(Draft())


@pytest.mark.parametrize(("draft", "missing"), [
    (Draft(discharge_criteria=()), ("discharge_criteria",)),
    (Draft(expected_sessions=None), ("expected_sessions",)),
    (Draft(expected_sessions=0), ("expected_sessions",)),
    (Draft(target_date=None), ("target_date",)),
    (Draft(discharge_criteria=PAIN_ONLY, target_date=None),
     ("discharge_criteria.functional", "discharge_criteria.performance",
      "discharge_criteria.sport_work", "target_date")),
])
def test_cannot_activate_without_each(draft, missing):
    activation = can_activate(draft)
    assert not activation.allowed and activation.missing == missing
    with pytest.raises(PlanNotActivatableError) as refused:
        require_activatable(draft)
    assert refused.value.extensions["missing"] == list(missing)
