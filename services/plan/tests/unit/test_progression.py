"""The load-progression rule (CLINICAL.md §3.4) row by row with its boundaries, the
stale-stimulus flag, the manual-therapy link rule (§3.3 d) and the §5 worked example's
prescriptions. Pure: no I/O."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from kinetic_contracts.problems import RuleViolationError
from plan.domain.prescription import (
    InvalidPerformanceError,
    InvalidPrescriptionError,
    Prescription,
    SessionPerformance,
)
from plan.domain.progression import (
    DEFAULT_THRESHOLDS,
    RULE_AWAITING_NEXT_MORNING,
    RULE_HOLD,
    RULE_HOLD_UNMATCHED,
    RULE_PROGRESS,
    RULE_REGRESS,
    InvalidStageError,
    InvalidThresholdsError,
    ManualTherapyNotLinkedError,
    ProgressionThresholds,
    Proposal,
    check_manual_therapy,
    decide_progression,
    stimulus_stale,
)

SET_ON = date(2025, 3, 3)
SESSION = SET_ON + timedelta(days=2)


def rx(**overrides) -> Prescription:
    """§5 stage 3: cable hip abduction 3×8 @ 6 kg, 3-0-1, for the hip-abductor driver."""
    values = dict(exercise="cable_hip_abduction", sets=3, reps=8, load_kg=6.0, tempo="3-0-1",
                  rest_seconds=90, frequency_per_week=3, progression="load",
                  driver="hip_abductor_weakness", changed_on=SET_ON)
    return Prescription(**(values | overrides))


def did(p: Prescription, reps: tuple[int, ...] | None = None, **overrides) -> SessionPerformance:
    """A clean session on ``p`` unless overridden: every set at target, RPE 6, pain 2/10,
    settled by next morning, morning symptoms not worse."""
    values = dict(performed_on=SESSION, reps_per_set=reps or (p.reps,) * p.sets,
                  load_kg=p.load_kg, rpe=6, pain_during=2, settled_next_morning=True,
                  morning_worse_than_last_week=False)
    return SessionPerformance(**(values | overrides))


def decide(p: Prescription, perf: SessionPerformance, stage: int = 3,
           thresholds: ProgressionThresholds = DEFAULT_THRESHOLDS) -> Proposal:
    return decide_progression(p, perf, thresholds, stage)


def assert_unchanged(proposal: Proposal, p: Prescription) -> None:
    assert proposal.next == p  # same parameters and the same changed_on


# --- §6 defaults -----------------------------------------------------------------------------

def test_section6_default_thresholds():
    t = DEFAULT_THRESHOLDS
    assert (t.load_step_pct, t.regress_pct) == ((5, 10), (10, 20))
    assert (t.rpe_max_progress, t.pain_max_progress, t.pain_max_hold) == (7, 3, 5)
    assert t.stale_weeks == 2


def test_thresholds_with_lower_step_above_upper_rejected():
    with pytest.raises(InvalidThresholdsError) as caught:
        ProgressionThresholds(load_step_pct=(10, 5))
    assert caught.value.extensions["field"] == "load_step_pct"


def test_thresholds_with_pain_progress_above_pain_hold_rejected():
    with pytest.raises(InvalidThresholdsError):
        ProgressionThresholds(pain_max_progress=6, pain_max_hold=5)


# --- §5 worked example -----------------------------------------------------------------------

def test_section5_clean_session_3x8_at_6kg_proposes_6_3_rounded_up_to_6_5kg():
    proposal = decide(rx(), did(rx()))
    assert (proposal.action, proposal.rule) == ("progress", RULE_PROGRESS)
    assert proposal.next.load_kg == 6.5
    assert (proposal.next.sets, proposal.next.reps, proposal.next.tempo) == (3, 8, "3-0-1")
    assert "6 → 6.5 kg (+8.3%" in proposal.reason
    assert "+5–10% is 6.3–6.6 kg" in proposal.reason  # the range is said
    assert "rounded up to the next 0.5 kg" in proposal.reason


def test_section5_cable_abduction_6_to_8kg_in_four_clean_sessions_each_within_5_to_10pct():
    p, loads = rx(), []
    for week in range(4):
        perf = did(p, performed_on=SET_ON + timedelta(weeks=week, days=2))
        p = decide(p, perf).next
        loads.append(p.load_kg)
    assert loads == [6.5, 7.0, 7.5, 8.0]  # 6.3→6.5, 6.825→7, 7.35→7.5, 7.875→8


def test_section5_single_leg_rdl_12_to_16kg_with_1kg_dumbbell_steps():
    p = rx(exercise="single_leg_rdl", load_kg=12.0, load_increment_kg=1.0)
    loads = []
    for week in range(4):
        p = decide(p, did(p, performed_on=SET_ON + timedelta(weeks=week, days=2))).next
        loads.append(p.load_kg)
    assert loads == [13.0, 14.0, 15.0, 16.0]  # 12.6→13, 13.65→14, 14.7→15, 15.75→16


def test_section5_stage2_cable_3x12_at_4kg_no_half_kg_step_in_4_2_to_4_4_progresses_reps():
    p = rx(reps=12, load_kg=4.0, tempo="2-0-2")
    proposal = decide(p, did(p), stage=2)
    assert proposal.action == "progress"
    assert (proposal.next.load_kg, proposal.next.reps) == (4.0, 13)
    assert "no 0.5 kg step fits" in proposal.reason
    assert "4.5 kg, +12.5%" in proposal.reason


def test_section5_stage1_side_lying_hip_abduction_3x15_bodyweight_progresses_reps_to_16():
    p = rx(exercise="side_lying_hip_abduction", sets=3, reps=15, load_kg=0.0, bodyweight=True,
           tempo="2-1-2")
    proposal = decide(p, did(p), stage=1)
    assert proposal.action == "progress"
    assert (proposal.next.reps, proposal.next.load_kg, proposal.next.bodyweight) == (16, 0, True)
    assert "+1–2 reps" in proposal.reason


# --- §3.4 progress row: rounding -----------------------------------------------------------

def test_progress_rounding_lower_step_already_on_a_half_kg_is_kept_10_to_10_5kg():
    p = rx(load_kg=10.0)
    assert decide(p, did(p)).next.load_kg == 10.5  # exactly +5%


def test_progress_rounding_is_up_never_below_5pct_13kg_to_14_not_13_5():
    p = rx(load_kg=13.0)  # +5% = 13.65; the nearest half kg (13.5) would be only +3.8%
    proposal = decide(p, did(p))
    assert proposal.next.load_kg == 14.0
    assert "+7.7%" in proposal.reason


def test_progress_rounding_to_a_2_5kg_plate_step_40_to_42_5kg():
    p = rx(exercise="trap_bar_deadlift", load_kg=40.0, load_increment_kg=2.5)
    assert decide(p, did(p)).next.load_kg == 42.5  # 42 rounded up to 42.5 (+6.3%)


def test_progress_organization_lower_step_8pct_6kg_to_6_5():
    t = ProgressionThresholds(load_step_pct=(8, 10))
    assert decide(rx(), did(rx()), thresholds=t).next.load_kg == 6.5  # 6.48 → 6.5


def test_progress_restarts_the_stimulus_clock_on_the_session_day():
    proposal = decide(rx(), did(rx()))
    assert proposal.next.changed_on == SESSION
    assert not stimulus_stale(proposal.next, SESSION + timedelta(days=13), stage=3)


# --- §3.4 progress row: reps -----------------------------------------------------------------

def test_progress_reps_exactly_target():
    assert decide(rx(), did(rx(), reps=(8, 8, 8))).action == "progress"


def test_progress_reps_two_over_target():
    assert decide(rx(), did(rx(), reps=(10, 10, 10))).action == "progress"


def test_hold_reps_three_over_target_matches_no_row():
    proposal = decide(rx(), did(rx(), reps=(8, 11, 8)))
    assert (proposal.action, proposal.rule) == ("hold", RULE_HOLD_UNMATCHED)
    assert "set 2: 11 reps, more than 2 over the target of 8" in proposal.reason
    assert_unchanged(proposal, rx())


def test_hold_one_set_short_of_target_reps_with_pain_fine():
    proposal = decide(rx(), did(rx(), reps=(8, 8, 7)))
    assert (proposal.action, proposal.rule) == ("hold", RULE_HOLD_UNMATCHED)
    assert "set 3 short: 7 of 8 reps" in proposal.reason
    assert_unchanged(proposal, rx())


def test_hold_one_set_missing_with_pain_fine():
    proposal = decide(rx(), did(rx(), reps=(8, 8)))
    assert (proposal.action, proposal.rule) == ("hold", RULE_HOLD_UNMATCHED)
    assert "2 of 3 prescribed sets done" in proposal.reason


def test_hold_when_done_below_the_prescribed_load():
    proposal = decide(rx(), did(rx(), load_kg=5.0))
    assert (proposal.action, proposal.rule) == ("hold", RULE_HOLD_UNMATCHED)
    assert "done at 5 kg, prescribed 6 kg" in proposal.reason


# --- §3.4 RPE boundaries -------------------------------------------------------------------

def test_progress_rpe_7():
    assert decide(rx(), did(rx(), rpe=7)).action == "progress"


def test_hold_rpe_8():
    proposal = decide(rx(), did(rx(), rpe=8))
    assert (proposal.action, proposal.rule) == ("hold", RULE_HOLD)
    assert "RPE 8" in proposal.reason
    assert_unchanged(proposal, rx())


def test_hold_rpe_9():
    assert decide(rx(), did(rx(), rpe=9)).rule == RULE_HOLD


def test_hold_rpe_7_5_is_above_the_progress_limit():
    assert decide(rx(), did(rx(), rpe=7.5)).rule == RULE_HOLD


def test_hold_rpe_10_with_pain_fine_matches_no_row():
    proposal = decide(rx(), did(rx(), rpe=10))
    assert (proposal.action, proposal.rule) == ("hold", RULE_HOLD_UNMATCHED)
    assert "RPE 10 > 9" in proposal.reason


# --- §3.4 pain boundaries (Silbernagel: ≤5 acceptable, >5 high risk) --------------------------

def test_progress_pain_3():
    assert decide(rx(), did(rx(), pain_during=3)).action == "progress"


def test_hold_pain_4():
    proposal = decide(rx(), did(rx(), pain_during=4))
    assert (proposal.action, proposal.rule) == ("hold", RULE_HOLD)
    assert "pain during 4/10 (4–5: acceptable)" in proposal.reason
    assert_unchanged(proposal, rx())


def test_hold_pain_5():
    assert decide(rx(), did(rx(), pain_during=5)).rule == RULE_HOLD


def test_regress_pain_6():
    proposal = decide(rx(), did(rx(), pain_during=6))
    assert (proposal.action, proposal.rule) == ("regress", RULE_REGRESS)
    assert "pain during 6/10 > 5/10" in proposal.reason


def test_hold_pain_4_with_a_set_short_still_holds_and_says_both():
    proposal = decide(rx(), did(rx(), pain_during=4, reps=(8, 8, 6)))
    assert proposal.rule == RULE_HOLD
    assert "set 3 short" in proposal.reason


def test_hold_organization_pain_max_progress_2_holds_pain_3():
    t = ProgressionThresholds(pain_max_progress=2)
    assert decide(rx(), did(rx(), pain_during=3), thresholds=t).rule == RULE_HOLD


# --- §3.4 regress row --------------------------------------------------------------------------

def test_regress_not_settled_by_next_morning_even_with_a_clean_session():
    proposal = decide(rx(), did(rx(), settled_next_morning=False))
    assert (proposal.action, proposal.rule) == ("regress", RULE_REGRESS)
    assert "not settled by next morning" in proposal.reason


def test_regress_morning_pain_stiffness_worse_than_previous_week():
    proposal = decide(rx(), did(rx(), morning_worse_than_last_week=True))
    assert (proposal.action, proposal.rule) == ("regress", RULE_REGRESS)
    assert "worse than the previous week" in proposal.reason


def test_regress_holding_zone_pain_4_but_morning_worse():
    assert decide(rx(), did(rx(), pain_during=4, morning_worse_than_last_week=True)
                  ).action == "regress"


def test_regress_load_10pct_rounded_down_6_to_5_4_to_5kg():
    proposal = decide(rx(), did(rx(), pain_during=7))
    assert proposal.next.load_kg == 5.0  # 5.4 rounded down to the half kg: −16.7%
    assert (proposal.next.sets, proposal.next.reps) == (3, 8)
    assert "6 → 5 kg (−16.7%; −10–20%" in proposal.reason
    assert "record it" in proposal.reason
    assert proposal.next.changed_on == SESSION


def test_regress_load_exact_10pct_20_to_18kg():
    p = rx(load_kg=20.0)
    assert decide(p, did(p, pain_during=6)).next.load_kg == 18.0


def test_regress_volume_when_no_load_step_fits_2kg_reduces_reps_8_to_7():
    p = rx(load_kg=2.0)  # −10% = 1.8 → 1.5 kg would be −25%, beyond −20%
    proposal = decide(p, did(p, pain_during=6))
    assert (proposal.next.load_kg, proposal.next.reps) == (2.0, 7)
    assert "reps 8 → 7" in proposal.reason


def test_regress_bodyweight_reduces_reps_15_to_13():
    p = rx(exercise="side_lying_hip_abduction", reps=15, load_kg=0.0, bodyweight=True)
    proposal = decide(p, did(p, settled_next_morning=False), stage=1)
    assert proposal.action == "regress"
    assert proposal.next.reps == 13  # 13.5 down: −13.3%
    assert "−13.3%" in proposal.reason


def test_regress_single_rep_reduces_sets():
    p = rx(exercise="wall_sit", sets=5, reps=1, load_kg=0.0, bodyweight=True, tempo=None)
    assert decide(p, did(p, pain_during=6)).next.sets == 4


# --- settled by next morning not yet known ----------------------------------------------------

def test_unknown_next_morning_is_a_provisional_hold_never_a_progress():
    proposal = decide(rx(), did(rx(), settled_next_morning=None))
    assert (proposal.action, proposal.rule) == ("hold", RULE_AWAITING_NEXT_MORNING)
    assert proposal.provisional
    assert_unchanged(proposal, rx())
    assert "waits for the next-morning answer" in proposal.reason
    assert "If the pain settled by next morning: progress → 3×8 @ 6.5 kg" in proposal.reason
    assert "if not: regress → 3×8 @ 5 kg" in proposal.reason


def test_unknown_next_morning_in_the_hold_zone_is_provisional_hold():
    proposal = decide(rx(), did(rx(), rpe=8, settled_next_morning=None))
    assert proposal.provisional
    assert "settled by next morning: hold → 3×8 @ 6 kg" in proposal.reason


def test_unknown_next_morning_with_pain_6_regresses_now_not_provisional():
    proposal = decide(rx(), did(rx(), pain_during=6, settled_next_morning=None))
    assert (proposal.action, proposal.provisional) == ("regress", False)


def test_unknown_next_morning_with_morning_worse_regresses_now():
    proposal = decide(rx(), did(rx(), settled_next_morning=None,
                                morning_worse_than_last_week=True))
    assert (proposal.action, proposal.provisional) == ("regress", False)


def test_settled_answer_clears_provisional():
    assert not decide(rx(), did(rx())).provisional


# --- non-load progression rules ----------------------------------------------------------------

def test_progress_reps_rule_adds_one_rep_even_with_load():
    p = rx(exercise="leg_press", reps=12, load_kg=60.0, progression="reps")
    proposal = decide(p, did(p))
    assert (proposal.next.reps, proposal.next.load_kg) == (13, 60.0)


def test_progress_tempo_rule_slows_the_eccentric_2_1_2_to_3_1_2():
    p = rx(progression="tempo", tempo="2-1-2")
    proposal = decide(p, did(p))
    assert proposal.next.tempo == "3-1-2"
    assert proposal.next.load_kg == 6.0


def test_progress_tempo_rule_with_explosive_eccentric_leaves_a_note():
    p = rx(progression="tempo", tempo="X-0-1")
    proposal = decide(p, did(p))
    assert proposal.action == "progress"
    assert_unchanged(proposal, p)
    assert "the clinician sets the new tempo" in proposal.reason


def test_progress_complexity_rule_leaves_parameters_and_a_note():
    p = rx(exercise="step_down", reps=10, load_kg=0.0, bodyweight=True,
           progression="complexity")
    proposal = decide(p, did(p))
    assert proposal.action == "progress"
    assert_unchanged(proposal, p)
    assert "complexity" in proposal.reason


# --- STIMULUS_STALE --------------------------------------------------------------------------

def test_stimulus_stale_not_at_13_days():
    assert not stimulus_stale(rx(), SET_ON + timedelta(days=13), stage=3)


def test_stimulus_stale_at_14_days():
    assert stimulus_stale(rx(), SET_ON + timedelta(days=14), stage=3)


@pytest.mark.parametrize("stage", [2, 3, 4])
def test_stimulus_stale_in_stages_2_to_4(stage):
    assert stimulus_stale(rx(), SET_ON + timedelta(days=14), stage=stage)


def test_stimulus_stale_never_in_stage_1():
    assert not stimulus_stale(rx(), SET_ON + timedelta(days=60), stage=1)


def test_stimulus_stale_organization_3_weeks():
    t = ProgressionThresholds(stale_weeks=3)
    assert not stimulus_stale(rx(), SET_ON + timedelta(days=20), 3, t)
    assert stimulus_stale(rx(), SET_ON + timedelta(days=21), 3, t)


def test_stimulus_stale_hold_keeps_the_clock_running():
    proposal = decide(rx(), did(rx(), rpe=8))
    assert stimulus_stale(proposal.next, SET_ON + timedelta(days=14), stage=3)


# --- validation (422) ----------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "field"), [
    ({"load_kg": -2.5}, "load_kg"),
    ({"load_kg": float("nan")}, "load_kg"),
    ({"sets": 0}, "sets"),
    ({"reps": 0}, "reps"),
    ({"reps": -3}, "reps"),
    ({"bodyweight": True, "load_kg": 5.0}, "load_kg"),
    ({"tempo": "slow"}, "tempo"),
    ({"exercise": "Cable Hip Abduction"}, "exercise"),
    ({"frequency_per_week": 0}, "frequency_per_week"),
    ({"load_increment_kg": 0.0}, "load_increment_kg"),
])
def test_invalid_prescription_rejected_naming_the_field(overrides, field):
    with pytest.raises(InvalidPrescriptionError) as caught:
        rx(**overrides)
    assert caught.value.extensions["field"] == field
    assert caught.value.detail.startswith(f"{field}:")


def test_negative_load_rejected_as_422_rule_violation():
    with pytest.raises(RuleViolationError) as caught:
        rx(load_kg=-1.0)
    assert caught.value.type_slug == "invalid-prescription"
    assert "must not be negative" in caught.value.detail


@pytest.mark.parametrize(("overrides", "field"), [
    ({"rpe": 11}, "rpe"),
    ({"rpe": -1}, "rpe"),
    ({"pain_during": 11}, "pain_during"),
    ({"reps_per_set": (8, 0, 8)}, "reps_per_set[1]"),
    ({"load_kg": -1.0}, "load_kg"),
])
def test_invalid_performance_rejected_naming_the_field(overrides, field):
    with pytest.raises(InvalidPerformanceError) as caught:
        did(rx(), **overrides)
    assert caught.value.extensions["field"] == field


def test_performance_before_the_prescription_changed_rejected():
    with pytest.raises(InvalidPerformanceError) as caught:
        decide(rx(), did(rx(), performed_on=SET_ON - timedelta(days=1)))
    assert caught.value.extensions["field"] == "performed_on"


def test_stage_0_rejected():
    with pytest.raises(InvalidStageError):
        decide(rx(), did(rx()), stage=0)


# --- §3.3 (d) manual therapy -------------------------------------------------------------------

GOALS = {"stairs_pain_le_2", "walk_30_min"}


def test_manual_therapy_without_a_goal_rejected():
    with pytest.raises(ManualTherapyNotLinkedError) as caught:
        check_manual_therapy(None, GOALS)
    assert isinstance(caught.value, RuleViolationError)
    assert caught.value.type_slug == "manual-therapy-not-linked"


def test_manual_therapy_with_a_blank_goal_rejected():
    with pytest.raises(ManualTherapyNotLinkedError):
        check_manual_therapy("  ", GOALS)


def test_manual_therapy_linked_to_a_goal_outside_the_active_program_rejected():
    with pytest.raises(ManualTherapyNotLinkedError) as caught:
        check_manual_therapy("run_45_min", GOALS)
    assert "not a goal of the active program" in caught.value.detail


def test_manual_therapy_linked_to_an_active_goal_accepted():
    assert check_manual_therapy("stairs_pain_le_2", GOALS) is None
