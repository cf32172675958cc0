"""EpisodeOfCareWorkflow: one per episode, started when plan first hears of the episode.

It waits for the initial evaluation (signal ``evaluation_completed``) and the activated plan,
then watches the episode until discharge: after every change to the plan (a session logged,
a measure taken, a revision, an answered reassessment) and whenever a milestone's date or a
checkpoint comes, one activity records what assessment measured, announces overdue
milestones and runs the stall rules (CLINICAL.md §3.2). The plan aggregate holds the record
and the rules; the workflow holds the episode's clock and its timers. An episode closed
before its plan was active (referred out, the patient withdrew, nothing to treat) ends it
too: signal ``episode_closed`` while it waits for the evaluation, else the check that reads
the end from the plan.

The episode's clock runs at ``day_seconds`` per day from the plan's activation (86 400 in
production; a test shortens it by configuration), so a milestone due in ten days wakes the
workflow ten clock-days later.

Deterministic by construction: time is ``workflow.now()``, every read and write is the
activity's. Changes to the code that would change the commands of a recorded history go
behind ``workflow.patched`` (the replay test replays recorded histories).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from kinetic_contracts.assessment.v1.events import FindingIndex, MeasureScore

CHECK_PROGRESS = "check_episode_progress"
# Before this patch the workflow ended once the evaluation arrived (issue #7's first slice);
# histories recorded then replay on the old path.
LIFECYCLE_PATCH = "episode-lifecycle"
# Before this patch a workflow waiting for the evaluation had no way to end: an episode
# closed then (referred out, the patient withdrew) kept it waiting for good. A history in
# which the signal ``episode_closed`` reached a worker that did not know it (and so went on
# waiting) replays on that path.
CLOSED_PATCH = "episode-closed-before-evaluation"
SEEN_KEPT = 500  # signal ids remembered across continue-as-new, to drop a redelivery
# The error type of a progress check the plan's rules refused (a criterion that cannot be
# judged as the plan stands): not retried, since the same plan gives the same answer.
RULE_REFUSED = "PlanRuleRefused"


class Trigger(BaseModel):
    """Something changed for the episode: ``id`` is the event's id (the same event delivered
    twice is the same trigger). Assessment's numbers travel with it, so the activity records
    them and runs the rules in one transaction."""

    id: str
    session_number: int | None = None
    measures: list[MeasureScore] = Field(default_factory=list)
    findings: list[FindingIndex] = Field(default_factory=list)


class Carried(BaseModel):
    """What continue-as-new hands to the next run."""

    phase: str
    anchor_at: datetime | None = None
    anchor_day: date | None = None
    seen: list[str] = Field(default_factory=list)
    pending: list[Trigger] = Field(default_factory=list)


class EpisodeOfCareInput(BaseModel):
    tenant_id: UUID
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    symptom_site: str
    goal_target_date: date | None = None
    opened_at: datetime
    day_seconds: float = 86_400
    max_history_events: int = 10_000
    carried: Carried | None = None


class EpisodeOfCareStatus(BaseModel):
    episode_id: UUID
    stage: str
    plan_stage: str | None = None
    next_check: date | None = None
    today: date | None = None


class ProgressCheck(BaseModel):
    tenant_id: UUID
    episode_id: UUID
    today: date
    triggers: list[Trigger]


class ProgressReport(BaseModel):
    plan_status: Literal["none", "draft", "active", "discharged"]
    plan_stage: str | None = None
    activated_on: date | None = None
    reassessment_due: bool = False
    next_check: date | None = None


AWAITING_EVALUATION = "awaiting_evaluation"
EVALUATED = "evaluated"  # the first slice's end state, kept for its histories
AWAITING_PLAN = "awaiting_plan"
ACTIVE = "active"
REASSESSMENT_DUE = "reassessment_due"
DISCHARGED = "discharged"


def workflow_id(episode_id: UUID) -> str:
    return f"episode-of-care-{episode_id}"


def _refused_by_rule(err: ActivityError) -> bool:
    cause = err.cause
    return isinstance(cause, ApplicationError) and cause.type == RULE_REFUSED


@workflow.defn(name="EpisodeOfCareWorkflow")
class EpisodeOfCareWorkflow:
    @workflow.init
    def __init__(self, inp: EpisodeOfCareInput) -> None:
        self._inp = inp
        carried = inp.carried or Carried(phase=AWAITING_EVALUATION)
        self._stage = carried.phase
        self._anchor_at = carried.anchor_at
        self._anchor_day = carried.anchor_day
        self._seen = list(carried.seen)
        self._pending = list(carried.pending)
        self._held: list[Trigger] = []  # the triggers of a check the rules refused
        self._plan_stage: str | None = None
        self._next_check: date | None = None
        self._closed = False  # signal episode_closed: the plan's record says it ended

    @workflow.run
    async def run(self, inp: EpisodeOfCareInput) -> EpisodeOfCareStatus:
        if not workflow.patched(LIFECYCLE_PATCH):
            await workflow.wait_condition(lambda: self._stage != AWAITING_EVALUATION)
            return self._status(inp)
        await workflow.wait_condition(
            lambda: self._stage != AWAITING_EVALUATION or self._closed)
        if self._stage == AWAITING_EVALUATION:  # only the closure woke it
            if workflow.patched(CLOSED_PATCH):
                self._stage = DISCHARGED
                return self._status(inp)
            await workflow.wait_condition(lambda: self._stage != AWAITING_EVALUATION)
        if self._stage == EVALUATED:
            self._stage = AWAITING_PLAN
        wake: float | None = 0  # check once at the start: the plan may be active already
        while True:
            if wake is None or wake > 0:
                try:
                    await workflow.wait_condition(lambda: bool(self._pending), timeout=wake)
                except asyncio.TimeoutError:
                    pass  # a milestone's date or a checkpoint came
            triggers, self._pending, self._held = [*self._held, *self._pending], [], []
            try:
                report = await workflow.execute_activity(
                    CHECK_PROGRESS,
                    ProgressCheck(tenant_id=inp.tenant_id, episode_id=inp.episode_id,
                                  today=self._today(), triggers=triggers),
                    result_type=ProgressReport, start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)))
            except ActivityError as err:
                if not _refused_by_rule(err):
                    raise
                # Retrying would change nothing, and failing the workflow would leave the
                # episode unwatched for good. The next change to the plan (the revision that
                # corrects it) brings the check again, with these triggers' numbers. Histories
                # recorded before this never hold a failed check (it was retried for ever), so
                # they replay unchanged.
                workflow.logger.warning("progress check refused by the plan: %s", err.cause)
                self._held, wake = triggers, None
                continue
            self._apply(report)
            if self._stage == DISCHARGED:
                return self._status(inp)
            wake = self._seconds_until(report.next_check, inp.day_seconds)
            if (workflow.info().is_continue_as_new_suggested()
                    or workflow.info().get_current_history_length() > inp.max_history_events):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(inp.model_copy(update={"carried": Carried(
                    phase=self._stage, anchor_at=self._anchor_at, anchor_day=self._anchor_day,
                    seen=self._seen[-SEEN_KEPT:], pending=self._pending)}))

    def _apply(self, report: ProgressReport) -> None:
        self._plan_stage, self._next_check = report.plan_stage, report.next_check
        if report.plan_status == "active" and self._anchor_at is None:
            self._anchor_at = workflow.now()
            self._anchor_day = report.activated_on
        self._stage = {"none": AWAITING_PLAN, "draft": AWAITING_PLAN,
                       "discharged": DISCHARGED}.get(
            report.plan_status, REASSESSMENT_DUE if report.reassessment_due else ACTIVE)

    def _today(self) -> date:
        """The episode's clock: clock-days since activation at ``day_seconds`` each."""
        now = workflow.now()
        if self._anchor_at is None or self._anchor_day is None:
            return now.date()
        return self._anchor_day + timedelta(
            days=int((now - self._anchor_at).total_seconds() // self._inp.day_seconds))

    def _seconds_until(self, day: date | None, day_seconds: float) -> float | None:
        if day is None or self._anchor_at is None or self._anchor_day is None:
            return None
        at = self._anchor_at + timedelta(seconds=(day - self._anchor_day).days * day_seconds)
        return max(0.001, (at - workflow.now()).total_seconds())

    def _status(self, inp: EpisodeOfCareInput) -> EpisodeOfCareStatus:
        return EpisodeOfCareStatus(episode_id=inp.episode_id, stage=self._stage,
                                   plan_stage=self._plan_stage, next_check=self._next_check)

    @workflow.signal(name="evaluation_completed")
    def evaluation_completed(self) -> None:
        if self._stage == AWAITING_EVALUATION:
            self._stage = EVALUATED

    @workflow.signal(name="episode_closed")
    def episode_closed(self) -> None:
        """The episode ended (its discharge was published). Once the evaluation is in, the
        ``plan_changed`` sent with it brings the check that reads the end from the plan;
        before it, nothing else would."""
        self._closed = True

    @workflow.signal(name="plan_changed")
    def plan_changed(self, trigger: Trigger) -> None:
        if trigger.id in self._seen:
            return  # the same event delivered twice signals nothing twice
        self._seen.append(trigger.id)
        self._pending.append(trigger)

    @workflow.query(name="status")
    def status(self) -> EpisodeOfCareStatus:
        return EpisodeOfCareStatus(episode_id=self._inp.episode_id, stage=self._stage,
                                   plan_stage=self._plan_stage, next_check=self._next_check,
                                   today=self._today() if self._anchor_at else None)
