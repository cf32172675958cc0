"""The therapists' caseload: every opened episode, and the EpisodeOfCareWorkflow that
watches it. Fed by booking's ``episode.opened`` through the inbox.

``plan_status`` is where the episode's plan stands: ``awaiting_evaluation``, ``evaluated``
(the evaluation is in: a draft, or nothing drafted), ``active``, ``discharged``. Two
consumers and the plan's own events write it, in whatever order they run: the evaluation
consumer creates the row if the episode's open has not been heard yet (with the
evaluation's facts, which the open then replaces), the open takes the status from the
plan's record when there is one, and the plan's projection moves it on activation,
discharge and closure.

Starting the workflow is a side effect outside the database transaction; it is idempotent
by workflow id (an existing run is kept), so a redelivered event never starts a second one.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from kinetic_contracts import CloudEvent
from kinetic_contracts.assessment.v1.events import EvaluationCompleted
from kinetic_contracts.booking.v1.events import EpisodeOpened
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.service.definition import Runtime
from kinetic_infra.telemetry import workflows_started
from kinetic_infra.temporal import temporal_client
from plan.application import plans
from plan.domain import plan
from plan.settings import plan_settings
from plan.application.workflows import (
    ACTIVE,
    AWAITING_EVALUATION,
    DISCHARGED,
    EVALUATED,
    EpisodeOfCareInput,
    EpisodeOfCareWorkflow,
    workflow_id,
)

metadata = MetaData()

caseload = Table(
    "caseload", metadata,
    Column("episode_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("symptom_site", Text, nullable=False),
    Column("plan_status", Text, nullable=False),
    Column("workflow_id", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
)


def status_of(state: plan.PlanState) -> str:
    """What the caseload shows of the plan's record: ``evaluated`` for a draft (the therapist
    has a plan to edit and activate), else the plan's own status; before any plan,
    ``awaiting_evaluation``."""
    if state is None:
        return AWAITING_EVALUATION
    return {"draft": EVALUATED, "active": ACTIVE}.get(state.status, DISCHARGED)


def episode_input(**facts: object) -> EpisodeOfCareInput:
    """The workflow's input, with the episode clock's day length from configuration."""
    settings = plan_settings()
    return EpisodeOfCareInput.model_validate({
        **facts, "day_seconds": settings.day_seconds,
        "max_history_events": settings.max_history_events})


async def start_episode_workflow(runtime: Runtime, inp: EpisodeOfCareInput,
                                 **signal: object) -> None:
    """Start the episode's workflow (or reach the running one, with ``start_signal``).
    An episode has one workflow, ever: a closed one is never started again, so whichever of
    plan's consumers comes late (a redelivery, or the open after the evaluation's signal
    already finished the wait) starts nothing."""
    client = await temporal_client(runtime)
    try:
        await client.start_workflow(
            EpisodeOfCareWorkflow.run, inp, id=workflow_id(inp.episode_id),
            task_queue=runtime.definition.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, **signal)  # type: ignore[arg-type]
    except WorkflowAlreadyStartedError:
        return
    workflows_started.add(1, {"workflow": "EpisodeOfCareWorkflow"})


def subscription(runtime: Runtime) -> Subscription:
    sub = Subscription(name="plan-caseload", source_service="booking")

    @sub.on(EpisodeOpened.event_type)
    async def on_episode_opened(conn: AsyncConnection, event: CloudEvent) -> None:
        opened = EpisodeOpened.model_validate(event.data)
        wf_id = workflow_id(opened.episode_id)
        state, _ = await plans.loaded(conn, runtime.store, plans.plan_id_for(opened.episode_id),
                                      event.tenantid)
        status = status_of(state)
        # Referred out before this consumer heard the episode open: a workflow started now
        # would wait for an evaluation that never comes.
        if status != DISCHARGED:
            await start_episode_workflow(runtime, episode_input(
                tenant_id=event.tenantid, episode_id=opened.episode_id,
                patient_id=opened.patient_id, location_id=opened.location_id,
                symptom_site=opened.symptom_site, goal_target_date=opened.goal_target_date,
                opened_at=opened.opened_at))
        facts = dict(patient_id=opened.patient_id, location_id=opened.location_id,
                     symptom_site=opened.symptom_site, opened_at=opened.opened_at)
        # A row already there came from the evaluation, heard first: booking's facts replace
        # its stand-ins. Its status stays unless the plan's record says more (with no plan
        # record, an evaluation that drafted nothing still left the episode evaluated).
        await conn.execute(insert(caseload).values(
            episode_id=opened.episode_id, tenant_id=event.tenantid, **facts,
            plan_status=status, workflow_id=wf_id,
        ).on_conflict_do_update(index_elements=["episode_id"], set_={
            **facts, **({} if state is None else {"plan_status": status})}))

    return sub


async def evaluation_heard(conn: AsyncConnection, tenant_id: object,
                           done: EvaluationCompleted) -> None:
    """The caseload row shows the episode evaluated. Before booking's ``episode.opened`` is
    heard there is no row: it is created with what the evaluation knows (its first symptom
    site, and its completion as the time opened) until the open brings booking's facts. A
    row past the evaluation (active, discharged) is not moved back by a late or repeated
    one."""
    await conn.execute(insert(caseload).values(
        episode_id=done.episode_id, tenant_id=tenant_id, patient_id=done.patient_id,
        location_id=done.location_id, symptom_site=done.symptom_sites[0],
        plan_status=EVALUATED, workflow_id=workflow_id(done.episode_id),
        opened_at=done.completed_at,
    ).on_conflict_do_update(index_elements=["episode_id"], set_={"plan_status": EVALUATED},
                            where=caseload.c.plan_status == AWAITING_EVALUATION))
