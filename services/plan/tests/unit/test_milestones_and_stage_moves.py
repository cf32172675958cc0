"""What a stage already closed, or a milestone already met, no longer asks for (no overdue, no
STALL-4, CLINICAL.md §3.2), and an advance confirmed from a stage the plan has left changes
nothing (§3.3: the clinician confirms each move, once)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plan.domain import plan as p
from plan.domain.rules import DEFAULT_RULES
from plan.domain.stages import UnknownStageError
from services.plan.tests.unit.test_plan_aggregate import (
    ACUTE_GRACE,
    CALM_DUE,
    NOW,
    RESTORED,
    THERAPIST,
    Episode,
    flags_of,
)

RESTORE_DUE = CALM_DUE + timedelta(days=11)  # the drafted restore stage's target date


def overdue_of(events: list[object]) -> set[str]:
    return {x.milestone_id for x in events if isinstance(x, p.MilestoneOverdue)}


def calm_closed() -> Episode:
    e = Episode().draft().activate()
    e.log(2, nprs=2)  # calm.nprs (≤ 3) met
    e.task("calm.home_program_adherence_pct", 90)
    e.advance()
    assert e.plan.stage == "restore"
    return e


def advance_from(e: Episode, stage: str) -> list[object]:
    return e.do(p.AdvanceStage(plan_id=e.plan_id, now=NOW, by=THERAPIST, from_stage=stage))


# -- a closed stage's milestones, and met ones, are not overdue ------------------------------

def test_given_calm_closed_when_a_quick_nprs_misses_its_milestone_then_it_is_neither_overdue_nor_stall_4(
        ) -> None:
    e = calm_closed()
    e.log(3, nprs=4)  # one quick reading above calm's "NPRS ≤ 3"
    events = e.check(CALM_DUE + timedelta(days=ACUTE_GRACE), 3)
    assert overdue_of(events) == set()
    assert flags_of(events) == [] and e.plan.open_reassessment is None


def test_given_a_met_milestone_of_the_current_stage_when_a_reading_misses_it_then_only_the_unmet_one_is_overdue(
        ) -> None:
    e = Episode().draft().activate()
    e.log(2, nprs=2)
    e.log(3, nprs=4)
    events = e.check(CALM_DUE + timedelta(days=ACUTE_GRACE), 3)
    assert overdue_of(events) == {"calm.home_program_adherence_pct"}
    [flag] = flags_of(events)
    assert flag.numbers["milestone_ids"] == ("calm.home_program_adherence_pct",)


def test_given_calm_closed_the_next_check_waits_for_the_current_stage_not_the_closed_one() -> None:
    e = calm_closed()
    e.log(3, nprs=4)
    assert p.next_check(e.plan, DEFAULT_RULES, CALM_DUE - timedelta(days=3)) == (
        RESTORE_DUE + timedelta(days=1))


def test_a_later_stage_past_its_date_is_still_overdue_while_the_patient_is_behind() -> None:
    e = Episode().draft().activate()
    assert "restore.movement:sls.bilateral_rating" in overdue_of(
        e.check(RESTORE_DUE + timedelta(days=1), 3))


# -- an advance from a stage already left -------------------------------------------------

def test_given_restores_criteria_passing_when_the_advance_from_calm_is_sent_twice_then_it_advances_once(
        ) -> None:
    e = Episode().draft().activate()
    e.log(2, nprs=2)
    e.task("calm.home_program_adherence_pct", 90)
    e.measured(3, findings=RESTORED)  # restore's exit criteria pass already
    [moved] = advance_from(e, "calm")
    assert moved.transition.to_stage == "restore"
    assert advance_from(e, "calm") == [], "the repeat changes nothing"
    assert e.plan.stage == "restore" and len(e.plan.stage_history) == 1


def test_an_advance_from_a_stage_the_plan_moved_back_from_is_refused_as_stage_changed() -> None:
    e = calm_closed()
    e.do(p.MoveStageBack(plan_id=e.plan_id, now=NOW, by=THERAPIST, reason="flare at work"))
    with pytest.raises(p.StageChangedError):
        advance_from(e, "restore")
    assert e.plan.stage == "calm"


def test_an_advance_from_a_stage_not_yet_reached_is_refused_as_stage_changed() -> None:
    e = Episode().draft().activate()
    with pytest.raises(p.StageChangedError):
        advance_from(e, "build")


def test_an_advance_from_a_stage_the_plan_does_not_have_is_refused() -> None:
    e = Episode().draft().activate()
    with pytest.raises(UnknownStageError):
        advance_from(e, "moonwalk")


def test_an_advance_from_the_current_stage_advances() -> None:
    e = calm_closed()
    e.measured(3, findings=RESTORED)
    [moved] = advance_from(e, "restore")
    assert moved.transition.to_stage == "build"
