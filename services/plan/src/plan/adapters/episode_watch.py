"""What keeps each EpisodeOfCareWorkflow informed, and what it does.

- ``plan-episode-signals`` reads plan's own public events (activation, a logged session, a
  revision, an answered reassessment, a stage advance, the discharge) and signals the
  episode's workflow ``plan_changed`` with the event's id. A discharge (also one that closed
  the episode before its plan was active) is signalled ``episode_closed`` first: a workflow
  still waiting for the evaluation runs no check that would see it, so it is told.
- ``plan-measures`` reads assessment's ``outcome.measured`` and ``reassessment.completed`` and
  signals the numbers themselves, so the workflow's activity records them and runs the rules
  in one transaction (recording them here first would race the activity).
- The activity ``check_episode_progress`` records the numbers, announces overdue milestones
  and raises a reassessment for what is newly stalled (the plan aggregate decides), then
  reports where the plan stands and when to look again.

A signal to a finished workflow (the episode is discharged) is nothing to deliver. The same
event delivered twice is one trigger: the workflow drops a trigger id it has seen, and the
activity's command is idempotent by the triggers it carries.

A check the plan's rules refuse fails without retries (``rules_not_retried``): the same plan
gives the same refusal, so retrying it every few seconds for ever achieves nothing. The
workflow waits for the next change to the plan instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from kinetic_contracts import CloudEvent
from kinetic_contracts.assessment.v1.events import OutcomeMeasured, ReassessmentCompleted
from kinetic_contracts.plan.v1 import events as public
from kinetic_contracts.problems import ConflictError, DomainError
from kinetic_infra.commands import run_command
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.service.definition import Runtime
from kinetic_infra.temporal import temporal_client
from plan.application import plans
from plan.application.workflows import (
    CHECK_PROGRESS,
    RULE_REFUSED,
    EpisodeOfCareWorkflow,
    ProgressCheck,
    ProgressReport,
    Trigger,
    workflow_id,
)
from plan.domain import plan
from plan.domain.rules import PlanRules

# Plan's events that change what the workflow should watch. Its own announcements
# (reassessment due, milestone overdue) come from the workflow's activity: not signalled back.
SIGNALLED = (public.PlanCreated, public.PlanRevised, public.SessionLogged, public.MilestoneMet,
             public.StageAdvanced, public.ReassessmentResolved, public.EpisodeDischarged)


async def signal(runtime: Runtime, episode_id: object, trigger: Trigger | None) -> None:
    """``plan_changed`` with the trigger, or ``episode_closed`` without one."""
    client = await temporal_client(runtime)
    handle = client.get_workflow_handle(workflow_id(episode_id))  # type: ignore[arg-type]
    try:
        if trigger is None:
            await handle.signal(EpisodeOfCareWorkflow.episode_closed)
        else:
            await handle.signal(EpisodeOfCareWorkflow.plan_changed, trigger)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


def subscriptions(runtime: Runtime) -> list[Subscription]:
    own = Subscription(name="plan-episode-signals", source_service="plan")
    measures = Subscription(name="plan-measures", source_service="assessment")

    async def on_plan_event(_conn: AsyncConnection, event: CloudEvent) -> None:
        if event.type == public.EpisodeDischarged.event_type:
            await signal(runtime, event.data["episode_id"], None)
        await signal(runtime, event.data["episode_id"], Trigger(id=str(event.id)))

    for model in SIGNALLED:
        own.on(model.event_type)(on_plan_event)

    @measures.on(OutcomeMeasured.event_type)
    async def on_measured(_conn: AsyncConnection, event: CloudEvent) -> None:
        measured = OutcomeMeasured.model_validate(event.data)
        if measured.context == "initial":
            return  # the plan's baselines were drafted from the evaluation itself
        await signal(runtime, measured.episode_id, Trigger(id=str(event.id), measures=[
            {"measure": measured.measure, "version": measured.version,
             "scores": measured.scores}]))  # type: ignore[list-item]

    @measures.on(ReassessmentCompleted.event_type)
    async def on_reassessed(_conn: AsyncConnection, event: CloudEvent) -> None:
        done = ReassessmentCompleted.model_validate(event.data)
        await signal(runtime, done.episode_id, Trigger(id=str(event.id), findings=done.findings))

    return [own, measures]


@contextmanager
def rules_not_retried() -> Iterator[None]:
    """A domain rule that refuses the check becomes a non-retryable failure of the activity.
    A conflict stays retryable: it is about timing (another writer won the race), and the
    next attempt reads the new state."""
    try:
        yield
    except ConflictError:
        raise
    except DomainError as exc:
        raise ApplicationError(f"{exc.title}: {exc.detail}",
                               {"type": exc.type_slug, **exc.extensions},
                               type=RULE_REFUSED, non_retryable=True) from exc


def _report(state: plan.PlanState, today: date, rules: PlanRules) -> dict[str, Any]:
    if state is None:
        return ProgressReport(plan_status="none").model_dump(mode="json")
    if isinstance(state, plan.ClosedWithoutPlan):
        return ProgressReport(plan_status="discharged").model_dump(mode="json")
    return ProgressReport(
        plan_status=state.status, plan_stage=state.stage, activated_on=state.activated_on,
        reassessment_due=state.open_reassessment is not None,
        next_check=plan.next_check(state, rules, today)).model_dump(mode="json")


def activities(runtime: Runtime) -> Sequence[Callable[..., Any]]:
    @activity.defn(name=CHECK_PROGRESS)
    async def check_progress(check: ProgressCheck) -> ProgressReport:
        plan_id = plans.plan_id_for(check.episode_id)
        # A retried activity changes nothing twice without a key of its own: overdue
        # milestones and stall flags are announced once by the aggregate, and numbers recorded
        # again replace the session's reading with the same value.
        command_id = uuid.uuid5(plan_id, "check:" + ",".join(t.id for t in check.triggers))

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            store = runtime.store
            state, _ = await plans.loaded(conn, store, plan_id, check.tenant_id)
            rules = await plans.rules_of(conn, store, check.tenant_id)
            if not isinstance(state, plan.Plan):  # none yet, or closed without one
                return _report(state, check.today, rules)
            context = plans.context_for(check.tenant_id, command_id, state)
            used = await plans.sessions_used(conn, check.episode_id)
            now = datetime.now(UTC)
            numbers = [t for t in check.triggers if t.measures or t.findings]
            for t in numbers:
                await plans.run(conn, store, plan.RecordMeasures(
                    plan_id=plan_id, now=now, session_number=max(1, used),
                    measures=tuple(t.measures), findings=tuple(t.findings)), context)
            await plans.run(conn, store, plan.CheckProgress(
                plan_id=plan_id, now=now, today=check.today, sessions_used=used, rules=rules),
                context)
            state, _ = await plans.loaded(conn, store, plan_id, check.tenant_id)
            return _report(state, check.today, rules)

        with rules_not_retried():
            return ProgressReport.model_validate(await run_command(
                runtime.db, work, tenant_id=check.tenant_id))

    return [check_progress]
