"""The therapists' caseload: every opened episode, and the EpisodeOfCareWorkflow that
watches it. Fed by booking's ``episode.opened`` through the inbox.

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
from kinetic_contracts.booking.v1.events import EpisodeOpened
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.service.definition import Runtime
from kinetic_infra.telemetry import workflows_started
from kinetic_infra.temporal import temporal_client
from plan.application import plans
from plan.settings import plan_settings
from plan.application.workflows import (
    AWAITING_EVALUATION,
    DISCHARGED,
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
        # Referred out before this consumer heard the episode open: a workflow started now
        # would wait for an evaluation that never comes.
        ended = await plans.ended(conn, runtime.store, opened.episode_id, event.tenantid)
        if not ended:
            await start_episode_workflow(runtime, episode_input(
                tenant_id=event.tenantid, episode_id=opened.episode_id,
                patient_id=opened.patient_id, location_id=opened.location_id,
                symptom_site=opened.symptom_site, goal_target_date=opened.goal_target_date,
                opened_at=opened.opened_at))
        await conn.execute(insert(caseload).values(
            episode_id=opened.episode_id, tenant_id=event.tenantid, patient_id=opened.patient_id,
            location_id=opened.location_id, symptom_site=opened.symptom_site,
            plan_status=DISCHARGED if ended else AWAITING_EVALUATION, workflow_id=wf_id,
            opened_at=opened.opened_at,
        ).on_conflict_do_nothing(index_elements=["episode_id"]))

    return sub
