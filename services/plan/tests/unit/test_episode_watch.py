"""The episode's progress-check activity: a check the plan's rules refuse fails once, not
retried, since the same plan gives the same refusal (it was retried every 10 s for ever);
a conflict with another writer stays retryable, as the next attempt reads the new state."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from kinetic_contracts.assessment.v1.events import MeasureScore
from kinetic_infra.commands import ConcurrencyConflictError
from plan.adapters.episode_watch import rules_not_retried
from plan.application.workflows import RULE_REFUSED
from plan.domain import plan as p
from services.plan.tests.unit.test_plan_aggregate import (
    NOW,
    THERAPIST,
    Episode,
    with_gain_criterion,
)


def plan_with_a_gain_criterion_without_its_baseline() -> Episode:
    """An active plan revised before revisions were checked for a gain's baseline."""
    e = Episode().draft().activate()
    e.state = p.evolve(e.state, p.PlanEdited(
        plan_id=e.plan_id, revision=2, by=THERAPIST, at=NOW, ids=e.plan.ids,
        content=with_gain_criterion(e.plan.content)))
    return e


def test_a_progress_check_the_plans_rules_refuse_fails_without_retries() -> None:
    e = plan_with_a_gain_criterion_without_its_baseline()
    psfs = MeasureScore(measure="psfs", version="1", scores={"psfs": 6})
    with pytest.raises(ApplicationError) as failed:
        with rules_not_retried():
            p.decide(p.RecordMeasures(plan_id=e.plan_id, now=NOW, session_number=4,
                                      measures=(psfs,)), e.state)
    error = failed.value
    assert (error.non_retryable, error.type) == (True, RULE_REFUSED)
    assert error.details[0] == {"type": "baseline-required", "criterion": "calm.psfs_gain"}


def test_a_conflict_with_another_writer_in_a_progress_check_stays_retryable() -> None:
    with pytest.raises(ConcurrencyConflictError):
        with rules_not_retried():
            raise ConcurrencyConflictError("the plan changed", stream="plan-1", attempts=3)
