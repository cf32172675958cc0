"""Progress-stalled rules STALL-1 … STALL-5 (CLINICAL.md §3.2) at their boundaries, the noise
guard, the §5 runner's STALL-1, the §6 defaults and the clinician's reassessment outcome."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from plan.domain.stalls import (
    DEFAULT_THRESHOLDS,
    EpisodeProgress,
    MeasureRule,
    Milestone,
    ReassessmentOutcome,
    SessionReading,
    StallThresholds,
    TrackedMeasure,
    evaluate_stalls,
    stall_3_runs,
)

START = date(2025, 3, 3)
LEFS = MeasureRule(measure="lefs", direction="higher_better", mcid=9, mdc=9)
NPRS = MeasureRule(measure="nprs", score="running", direction="lower_better", mcid=2, mdc=1.8,
                   mcid_pct=30)
PSFS = MeasureRule(measure="psfs", direction="higher_better", mcid=2, mdc=2)
ODI = MeasureRule(measure="odi", direction="lower_better", mcid=10, mdc=10)
NDI = MeasureRule(measure="ndi", direction="lower_better", mcid=7.5, mdc=10.2)


def readings(*values: float, first: int = 2) -> tuple[SessionReading, ...]:
    return tuple(SessionReading(session=first + i, value=v) for i, v in enumerate(values))


def lefs(*values: float, baseline: float = 52) -> TrackedMeasure:
    return TrackedMeasure(rule=LEFS, baseline=baseline, readings=readings(*values))


def nprs(*values: float, baseline: float = 6, first: int = 2) -> TrackedMeasure:
    return TrackedMeasure(rule=NPRS, baseline=baseline, readings=readings(*values, first=first))


def runner(**changes) -> EpisodeProgress:
    """The §5 runner: acute_clear_driver, 8 sessions planned, LEFS 52 at baseline, in stage 2
    at session 4 with stage 1 closed."""
    base = dict(episode_type="acute_clear_driver", started_on=START, sessions_used=4,
                expected_max_sessions=8, current_stage=2, primary=lefs(55),
                milestones=(
                    Milestone(id="stairs_pain_le_2", stage=1, target_date=START + timedelta(14),
                              met=True),
                    Milestone(id="hip_abd_lsi_85", stage=2, target_date=START + timedelta(28)),
                    Milestone(id="sls_fair", stage=2, target_date=START + timedelta(28)),
                ))
    return EpisodeProgress(**{**base, **changes})


def fired(progress: EpisodeProgress, today: date = START + timedelta(20),
          thresholds: StallThresholds = DEFAULT_THRESHOLDS) -> dict[str, object]:
    return {f.rule: f for f in evaluate_stalls(progress, thresholds, today)}


# -- §6 defaults ------------------------------------------------------------------------------

def test_thresholds_default_to_section_6():
    t = DEFAULT_THRESHOLDS
    assert (t.stall_session_early, t.stall_session_late, t.stall_weeks_late) == (4, 8, 6)
    assert (t.pain_worse_points, t.pain_worse_consecutive) == (2, 2)
    assert t.grace_days("chronic_multifactor") == 14
    assert t.grace_days("acute_clear_driver") == 7


# -- STALL-1 "no trajectory" ------------------------------------------------------------------

def test_stall_1_section_5_runner_at_s4_lefs_below_61_and_no_stage_2_milestone_met():
    flag = fired(runner(primary=lefs(58)))["STALL-1"]
    assert flag.due_reason == "progress_stalled"
    assert flag.numbers["measure"] == "lefs"
    assert (flag.numbers["baseline"], flag.numbers["latest"]) == (52, 58)
    assert (flag.numbers["improvement"], flag.numbers["threshold"]) == (6, 9)
    assert flag.numbers["current_stage"] == 2
    assert "stage-2 milestone" in flag.reason


def test_stall_1_is_not_checked_at_session_3():
    assert "STALL-1" not in fired(runner(sessions_used=3, primary=lefs(52)))
    assert "STALL-1" in fired(runner(sessions_used=4, primary=lefs(52)))


def test_stall_1_lefs_61_is_baseline_plus_mcid_so_a_trajectory():
    assert "STALL-1" in fired(runner(primary=lefs(60)))
    assert "STALL-1" not in fired(runner(primary=lefs(61)))


def test_stall_1_one_met_stage_2_milestone_is_a_trajectory():
    met = runner().milestones[:2] + (Milestone(id="sls_fair", stage=2,
                                               target_date=START + timedelta(28), met=True),)
    assert "STALL-1" not in fired(runner(primary=lefs(52), milestones=met))


def test_stall_1_in_stage_1_with_no_stage_1_milestone_met():
    milestones = (Milestone(id="stairs_pain_le_2", stage=1, target_date=START + timedelta(14)),)
    progress = runner(current_stage=1, primary=lefs(53), milestones=milestones)
    assert "STALL-1" in fired(progress)


def test_stall_1_does_not_fire_past_stage_2():
    assert "STALL-1" not in fired(runner(current_stage=3, primary=lefs(52)))


def test_stall_1_primary_not_remeasured_counts_as_no_change():
    flag = fired(runner(primary=lefs()))["STALL-1"]
    assert flag.numbers["latest"] == "none"
    assert flag.numbers["improvement"] == 0


def test_stall_1_reads_a_lower_better_prom_in_its_direction():
    # ODI 40 → 50 is worse, not "10 points of change".
    worse = TrackedMeasure(rule=ODI, baseline=40, readings=readings(50))
    better = TrackedMeasure(rule=ODI, baseline=40, readings=readings(30))
    assert "STALL-1" in fired(runner(primary=worse))
    assert "STALL-1" not in fired(runner(primary=better))


def test_stall_1_checkpoint_is_configurable():
    early = StallThresholds(stall_session_early=3)
    assert "STALL-1" in fired(runner(sessions_used=3, primary=lefs(52)), thresholds=early)


# -- STALL-2 "nothing changed" ----------------------------------------------------------------

def flat(**changes) -> EpisodeProgress:
    # Past stage 2 so STALL-1 stays quiet; every measure flat.
    return runner(**{"current_stage": 3, "primary": lefs(55),
                     "pain": (nprs(5.5),), "sessions_used": 5, **changes})


def test_stall_2_at_session_8_not_7():
    early = START + timedelta(days=21)
    assert "STALL-2" not in fired(flat(sessions_used=7), early)
    flag = fired(flat(sessions_used=8), early)["STALL-2"]
    assert flag.numbers["reached_by"] == "sessions"
    assert flag.numbers["lefs.improvement"] == 3
    assert flag.numbers["lefs.threshold"] == 9


def test_stall_2_at_6_weeks_when_that_comes_before_session_8():
    assert "STALL-2" not in fired(flat(sessions_used=5), START + timedelta(days=41))
    flag = fired(flat(sessions_used=5), START + timedelta(days=42))["STALL-2"]
    assert flag.numbers["reached_by"] == "weeks"
    assert flag.numbers["days_since_start"] == 42


def test_stall_2_at_session_8_when_that_comes_before_6_weeks():
    assert "STALL-2" in fired(flat(sessions_used=8), START + timedelta(days=20))


def test_stall_2_any_tracked_measure_improved_by_its_mcid_is_a_change():
    psfs = TrackedMeasure(rule=PSFS, baseline=3.7, readings=readings(5.7))
    assert "STALL-2" not in fired(flat(sessions_used=8, secondary=(psfs,)))
    # NPRS 6 → 4 is 2 points better: pain counts as a tracked measure here.
    assert "STALL-2" not in fired(flat(sessions_used=8, pain=(nprs(4),)))


def test_stall_2_psfs_change_just_under_mcid_is_no_change():
    psfs = TrackedMeasure(rule=PSFS, baseline=3.7, readings=readings(5.6))
    assert "STALL-2" in fired(flat(sessions_used=8, secondary=(psfs,)))


# -- noise guard ------------------------------------------------------------------------------

def test_noise_guard_ndi_change_above_mcid_but_inside_mdc_is_not_improvement():
    # NDI MCID 7.5 < MDC 10.2: an 8-point fall is inside measurement error.
    noise = TrackedMeasure(rule=NDI, baseline=30, readings=readings(22))
    real = TrackedMeasure(rule=NDI, baseline=30, readings=readings(19.8))
    assert NDI.improvement_bar(30) == pytest.approx(10.2)
    assert "STALL-2" in fired(flat(sessions_used=8, primary=noise))
    assert "STALL-2" not in fired(flat(sessions_used=8, primary=real))
    assert "STALL-1" in fired(runner(primary=noise))


def test_noise_guard_uses_the_mcid_when_the_mdc_is_smaller():
    assert NPRS.worsening_bar() == 2  # MCID 2 > MDC 1.8
    assert MeasureRule(measure="x", direction="higher_better", mcid=5).worsening_bar() == 5


def test_noise_guard_lifts_a_relative_mcid_below_the_mdc():
    # NPRS at baseline 4: 30% is 1.2 points, below the MDC of 1.8.
    assert NPRS.improvement_bar(4) == pytest.approx(1.8)
    # At baseline 10: 30% is 3 points, so the absolute 2 points is the lower bar.
    assert NPRS.improvement_bar(10) == 2


def test_noise_guard_applies_to_worsening():
    noisy = TrackedMeasure(rule=NDI, baseline=20, readings=readings(28, 29))
    worse = TrackedMeasure(rule=NDI, baseline=20, readings=readings(30.2, 31))
    assert "STALL-3" not in fired(flat(primary=noisy, pain=()))
    assert "STALL-3" in fired(flat(primary=worse, pain=()))


# -- STALL-3 "worsening" ----------------------------------------------------------------------

def test_stall_3_nprs_2_points_worse_on_one_session_is_not_worsening():
    assert "STALL-3" not in fired(flat(pain=(nprs(5, 8),)))


def test_stall_3_nprs_2_points_worse_on_two_consecutive_sessions():
    flag = fired(flat(pain=(nprs(5, 8, 8.5),)))["STALL-3"]
    assert flag.due_reason == "pain_flare"
    assert flag.numbers["measure"] == "nprs:running"
    assert flag.numbers["sessions"] == (3, 4)
    assert flag.numbers["worse_by"] == (2, 2.5)
    assert flag.numbers["threshold"] == 2


def test_stall_3_worse_by_less_than_2_points_is_not_worsening():
    assert "STALL-3" not in fired(flat(pain=(nprs(7.5, 7.9),)))


def test_stall_3_two_worse_sessions_that_are_not_consecutive():
    assert "STALL-3" not in fired(flat(pain=(nprs(8, 6, 8),)))


def test_stall_3_a_flare_that_has_settled_no_longer_fires():
    assert "STALL-3" not in fired(flat(pain=(nprs(8, 8, 5),)))


def test_stall_3_run_from_is_the_session_the_run_of_worse_readings_began():
    flag = fired(flat(pain=(nprs(5, 8, 8.5, 9),)))["STALL-3"]
    assert flag.numbers["sessions"] == (4, 5)  # the latest two, as before
    assert flag.numbers["run_from"] == 3  # S2 (5) was not worse: the run began at S3


def test_stall_3_a_reading_not_worse_starts_a_new_run():
    flag = fired(flat(pain=(nprs(8, 8, 5, 8, 8),)))["STALL-3"]
    assert flag.numbers["run_from"] == 5


def test_stall_3_runs_lists_every_measure_that_fires_pain_first():
    progress = flat(primary=lefs(43, 42), pain=(nprs(8, 8),))
    runs = stall_3_runs(progress, DEFAULT_THRESHOLDS)
    assert [r.numbers["measure"] for r in runs] == ["nprs:running", "lefs"]
    assert fired(progress)["STALL-3"] == runs[0]


def test_stall_3_consecutive_count_is_configurable():
    three = StallThresholds(pain_worse_consecutive=3)
    assert "STALL-3" not in fired(flat(pain=(nprs(5, 8, 8),)), thresholds=three)
    assert "STALL-3" in fired(flat(pain=(nprs(8, 8, 8),)), thresholds=three)


def test_stall_3_prom_worse_by_its_mcid_on_two_consecutive_readings():
    worse = fired(flat(primary=lefs(43, 42), pain=()))["STALL-3"]
    assert worse.due_reason == "progress_stalled"
    assert worse.numbers["measure"] == "lefs"
    assert "STALL-3" not in fired(flat(primary=lefs(44, 42), pain=()))


# -- STALL-4 "milestone overdue" --------------------------------------------------------------

TARGET = START + timedelta(days=28)


def overdue(episode_type: str, days_past: int) -> bool:
    progress = runner(episode_type=episode_type, current_stage=3, primary=lefs(70),
                      milestones=(Milestone(id="hip_abd_lsi_90", stage=3, target_date=TARGET),))
    return "STALL-4" in fired(progress, TARGET + timedelta(days=days_past))


def test_stall_4_chronic_milestone_overdue_at_14_days_not_13():
    assert not overdue("chronic_multifactor", 13)
    assert overdue("chronic_multifactor", 14)


def test_stall_4_acute_milestone_overdue_at_7_days_not_6():
    assert not overdue("acute_clear_driver", 6)
    assert overdue("acute_clear_driver", 7)


def test_stall_4_a_met_milestone_is_never_overdue():
    progress = runner(current_stage=3, primary=lefs(70), milestones=(
        Milestone(id="hip_abd_lsi_90", stage=3, target_date=TARGET, met=True),))
    assert "STALL-4" not in fired(progress, TARGET + timedelta(days=60))


def test_stall_4_lists_every_overdue_milestone_most_overdue_first():
    progress = runner(current_stage=3, primary=lefs(70), milestones=(
        Milestone(id="sls_good", stage=3, target_date=TARGET),
        Milestone(id="hip_abd_lsi_85", stage=2, target_date=TARGET - timedelta(days=10)),
        Milestone(id="y_balance", stage=3, target_date=TARGET + timedelta(days=5)),
    ))
    flag = fired(progress, TARGET + timedelta(days=7))["STALL-4"]
    assert flag.due_reason == "milestone_due"
    assert flag.numbers["milestone_ids"] == ("hip_abd_lsi_85", "sls_good")
    assert flag.numbers["days_past_target"] == (17, 7)
    assert flag.numbers["grace_days"] == 7


# -- STALL-5 "over budget" --------------------------------------------------------------------

def test_stall_5_over_budget_at_9_of_8_sessions_not_8():
    assert "STALL-5" not in fired(flat(sessions_used=8))
    flag = fired(flat(sessions_used=9))["STALL-5"]
    assert (flag.numbers["sessions_used"], flag.numbers["expected_max_sessions"]) == (9, 8)


def test_stall_5_chronic_budget_of_20():
    chronic = dict(episode_type="chronic_multifactor", expected_max_sessions=20)
    assert "STALL-5" not in fired(flat(sessions_used=20, **chronic))
    assert "STALL-5" in fired(flat(sessions_used=21, **chronic))


def test_stall_5_not_when_the_discharge_criteria_are_met():
    assert "STALL-5" not in fired(flat(sessions_used=9, discharge_criteria_met=True))


# -- all together -----------------------------------------------------------------------------

def test_a_progressing_episode_raises_nothing():
    progress = runner(primary=lefs(63), pain=(nprs(4, 3),))
    assert evaluate_stalls(progress, DEFAULT_THRESHOLDS, START + timedelta(days=20)) == []


def test_evaluate_stalls_returns_every_fired_rule_in_order():
    progress = runner(sessions_used=9, primary=lefs(52, 50, 43, 42), pain=(nprs(8, 9),))
    flags = evaluate_stalls(progress, DEFAULT_THRESHOLDS, START + timedelta(days=60))
    assert [f.rule for f in flags] == ["STALL-1", "STALL-2", "STALL-3", "STALL-4", "STALL-5"]
    assert all(f.reason for f in flags)


def test_pain_series_must_read_a_pain_measure():
    with pytest.raises(ValidationError):
        runner(pain=(lefs(55),))


# -- reassessment outcome ---------------------------------------------------------------------

NOW = datetime(2025, 3, 31, 10, tzinfo=UTC)


@pytest.mark.parametrize("outcome", ["revise_driver", "revise_plan", "continue_with_reason",
                                     "refer_out"])
def test_reassessment_outcome_each_allowed_outcome_with_text_and_clinician(outcome):
    who = uuid4()
    recorded = ReassessmentOutcome(rules=("STALL-1",), outcome=outcome,
                                   free_text=" Foot/ankle driver suspected ",
                                   clinician_id=who, recorded_at=NOW)
    assert recorded.free_text == "Foot/ankle driver suspected"
    assert recorded.clinician_id == who


@pytest.mark.parametrize("missing", [{"free_text": ""}, {"free_text": "   "},
                                     {"free_text": None}, {"clinician_id": None},
                                     {"outcome": "ignore"}, {"rules": ()}])
def test_reassessment_outcome_requires_free_text_clinician_and_a_known_outcome(missing):
    fields = dict(rules=("STALL-2",), outcome="continue_with_reason",
                  free_text="Adherence was low; continue two more weeks", clinician_id=uuid4(),
                  recorded_at=NOW)
    with pytest.raises(ValidationError):
        ReassessmentOutcome(**{**fields, **missing})
