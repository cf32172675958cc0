"""The stage model (CLINICAL.md §3.3): DEFAULT stages that may be renamed; (a) a stage closes
only when every exit criterion has a passing result; (b) the clinician confirms every move;
(c) moving back is allowed with a reason. Criteria are the §5 runner's."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from kinetic_contracts.problems import RuleViolationError
from plan.domain.criteria import Criterion, CriterionResult, DuplicateCriterionError
from plan.domain.stages import (
    DEFAULT_STAGES,
    ConfirmationRequiredError,
    ExitCriteriaUnmetError,
    LastStageError,
    MoveBackReasonRequiredError,
    NotAnEarlierStageError,
    Stage,
    UnknownStageError,
    advance,
    default_stages,
    exit_verdicts,
    move_back,
    rename,
    start,
)

NOW = datetime(2025, 3, 17, 9, tzinfo=UTC)
CLINICIAN = uuid4()

CALM = (
    Criterion(id="stairs_pain", kind="pain", label="Stairs ≤ 2/10", source="measure",
              ref="nprs", key="stairs_down", op="<=", target=2),
    Criterion(id="program_adherence", kind="other", label="Program done ≥ 80% of days",
              source="task", ref="home_program_adherence_pct", op=">=", target=80),
)
RESTORE = (
    Criterion(id="hip_abd_lsi_85", kind="performance", label="Hip abduction LSI ≥ 85%",
              source="finding", ref="strength:hip_abduction", key="lsi_pct", op=">=",
              target=85),
    # Ratings as numbers (poor 0, fair 1, good 2), as assessment publishes them.
    Criterion(id="sls_fair", kind="performance", label="SLS fair or better", source="finding",
              ref="movement:sls", key="right_rating", op=">=", target=1),
    Criterion(id="step_down_pain", kind="pain", label="Step-down 20 cm 3×10 pain ≤ 2/10",
              source="task", ref="step_down_20cm_pain", op="<=", target=2),
)
BUILD = (
    Criterion(id="hip_abd_lsi_90", kind="performance", label="Hip abduction LSI ≥ 90%",
              source="finding", ref="strength:hip_abduction", key="lsi_pct", op=">=",
              target=90),
)
PERFORM = (
    Criterion(id="lefs", kind="functional", label="LEFS ≥ 70 and +9", source="measure",
              ref="lefs", op=">=", target=70, min_gain=9),
)


def plan_stages() -> tuple[Stage, ...]:
    return default_stages({"calm": CALM, "restore": RESTORE, "build": BUILD,
                           "perform": PERFORM})


def in_stage(code: str):
    state = start(plan_stages())
    return state.model_copy(update={"current": code})


def passing_restore(**override: float) -> list[CriterionResult]:
    values = {"hip_abd_lsi_85": 86.0, "sls_fair": 1.0, "step_down_pain": 2.0, **override}
    return [CriterionResult(criterion_id=k, value=v) for k, v in values.items()]


# -- the DEFAULT structure --------------------------------------------------------------------

def test_default_stages_are_calm_restore_build_perform_in_that_order():
    assert [t.code for t in DEFAULT_STAGES] == ["calm", "restore", "build", "perform"]
    state = start(plan_stages())
    assert state.current == "calm" and state.position == 1


def test_stages_are_renameable_keeping_their_code():
    named = default_stages({"calm": CALM, "restore": RESTORE, "build": BUILD,
                            "perform": PERFORM}, names={"calm": "Settle"})
    assert named[0].name == "Settle" and named[0].code == "calm"
    state = rename(start(plan_stages()), "build", "Load")
    assert state.stages[2].name == "Load" and state.stages[2].exit_criteria == BUILD
    with pytest.raises(ValidationError):
        rename(state, "build", "")


def test_a_clinic_may_add_a_stage():
    extra = Stage(code="maintain", name="Maintain", exit_criteria=PERFORM)
    state = start((*plan_stages()[:3], extra, plan_stages()[3]))
    assert [s.code for s in state.stages][-2:] == ["maintain", "perform"]


def test_a_stage_needs_at_least_one_exit_criterion():
    with pytest.raises(ValidationError):
        Stage(code="calm", name="Calm", exit_criteria=())
    with pytest.raises(ValidationError):
        default_stages({"calm": CALM, "restore": RESTORE, "build": BUILD})


def test_a_stage_refuses_two_exit_criteria_with_one_id():
    with pytest.raises(DuplicateCriterionError):
        Stage(code="calm", name="Calm", exit_criteria=(CALM[0], CALM[0]))


def test_unknown_stage_codes_are_refused():
    with pytest.raises(UnknownStageError):
        default_stages({"warmup": CALM})


# -- rule (a): every exit criterion has a passing result --------------------------------------

def test_rule_a_advance_refused_with_422_listing_the_unmet_criteria():
    state = in_stage("restore")
    with pytest.raises(ExitCriteriaUnmetError) as refused:
        advance(state, passing_restore(hip_abd_lsi_85=84.9, sls_fair=0), CLINICIAN, at=NOW)
    assert isinstance(refused.value, RuleViolationError)  # 422 at the HTTP edge
    assert refused.value.extensions["unmet"] == ["hip_abd_lsi_85", "sls_fair"]
    assert "Hip abduction LSI ≥ 85%" in refused.value.detail


def test_rule_a_a_criterion_without_a_result_has_not_passed():
    results = [r for r in passing_restore() if r.criterion_id != "step_down_pain"]
    with pytest.raises(ExitCriteriaUnmetError) as refused:
        advance(in_stage("restore"), results, CLINICIAN, at=NOW)
    assert refused.value.extensions["unmet"] == ["step_down_pain"]
    verdict = {v.criterion.id: v for v in exit_verdicts(in_stage("restore"), results)}
    assert verdict["step_down_pain"].result is None and not verdict["step_down_pain"].met


def test_rule_a_the_latest_result_counts():
    lost = [*passing_restore(), CriterionResult(criterion_id="sls_fair", value=0)]
    with pytest.raises(ExitCriteriaUnmetError):
        advance(in_stage("restore"), lost, CLINICIAN, at=NOW)
    regained = [*lost, CriterionResult(criterion_id="sls_fair", value=1)]
    assert advance(in_stage("restore"), regained, CLINICIAN, at=NOW).current == "build"


def test_rule_a_at_the_exact_threshold_the_criterion_passes():
    state = advance(in_stage("restore"), passing_restore(hip_abd_lsi_85=85), CLINICIAN, at=NOW)
    assert state.current == "build"


def test_rule_a_and_b_all_met_advances_one_stage_recording_who_and_what():
    state = advance(in_stage("restore"), passing_restore(), CLINICIAN, at=NOW)
    assert (state.current, state.position) == ("build", 3)
    step = state.history[-1]
    assert (step.from_stage, step.to_stage, step.direction) == ("restore", "build", "advance")
    assert step.by == CLINICIAN and step.at == NOW
    assert step.passed_criteria == ("hip_abd_lsi_85", "sls_fair", "step_down_pain")


# -- rule (b): the clinician confirms ---------------------------------------------------------

def test_rule_b_no_advance_without_the_confirming_clinician():
    with pytest.raises(ConfirmationRequiredError):
        advance(in_stage("restore"), passing_restore(), None, at=NOW)


def test_rule_b_the_last_stage_ends_with_discharge_not_an_advance():
    results = [CriterionResult(criterion_id="lefs", value=72, baseline=52)]
    with pytest.raises(LastStageError):
        advance(in_stage("perform"), results, CLINICIAN, at=NOW)


# -- rule (c): moving back with a reason ------------------------------------------------------

def test_rule_c_move_back_one_stage_with_a_reason():
    state = move_back(in_stage("build"), "Flare after a 10 km race", CLINICIAN, at=NOW)
    assert state.current == "restore"
    step = state.history[-1]
    assert (step.direction, step.reason, step.by) == ("back", "Flare after a 10 km race",
                                                      CLINICIAN)


def test_rule_c_move_back_to_a_named_earlier_stage():
    assert move_back(in_stage("perform"), "Pain 7/10 on stairs again", CLINICIAN, at=NOW,
                     to="calm").current == "calm"


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_rule_c_move_back_requires_a_reason(reason):
    with pytest.raises(MoveBackReasonRequiredError):
        move_back(in_stage("build"), reason, CLINICIAN, at=NOW)


def test_rule_c_move_back_goes_to_an_earlier_stage_only():
    with pytest.raises(NotAnEarlierStageError):
        move_back(in_stage("calm"), "no earlier stage", CLINICIAN, at=NOW)
    with pytest.raises(NotAnEarlierStageError):
        move_back(in_stage("restore"), "that is forward", CLINICIAN, at=NOW, to="build")
    with pytest.raises(UnknownStageError):
        move_back(in_stage("restore"), "no such stage", CLINICIAN, at=NOW, to="warmup")


def test_rule_c_after_moving_back_the_stage_is_judged_again_on_the_way_up():
    back = move_back(in_stage("build"), "Lost hip control", CLINICIAN, at=NOW)
    with pytest.raises(ExitCriteriaUnmetError):
        advance(back, passing_restore(sls_fair=0), CLINICIAN, at=NOW)
    assert advance(back, passing_restore(), CLINICIAN, at=NOW).current == "build"
    assert [s.direction for s in advance(back, passing_restore(), CLINICIAN,
                                         at=NOW).history] == ["back", "advance"]
