"""Plan hears that an episode's initial evaluation is complete (assessment's
``evaluation.completed``, through the inbox): the caseload shows it evaluated and the
episode's workflow is signalled, so it moves on from waiting for the evaluation.

Signal-with-start keeps this correct whichever consumer runs first: the running workflow
is signalled, or, if plan has not yet seen the episode open, it is started with the signal;
an episode has one workflow ever (reuse of its id is rejected), so the late ``episode.opened``
does not start a second run that would wait for an evaluation already done.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.assessment.v1.events import EvaluationCompleted
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.service.definition import Runtime
from plan.adapters.caseload import caseload, start_episode_workflow
from plan.application.workflows import EVALUATED, EpisodeOfCareInput


def subscription(runtime: Runtime) -> Subscription:
    sub = Subscription(name="plan-evaluations", source_service="assessment")

    @sub.on(EvaluationCompleted.event_type)
    async def on_evaluated(conn: AsyncConnection, event: CloudEvent) -> None:
        done = EvaluationCompleted.model_validate(event.data)
        await start_episode_workflow(runtime, EpisodeOfCareInput(
            tenant_id=event.tenantid, episode_id=done.episode_id, patient_id=done.patient_id,
            location_id=done.location_id, symptom_site=done.symptom_sites[0],
            opened_at=done.completed_at), start_signal="evaluation_completed")
        await conn.execute(caseload.update().where(caseload.c.episode_id == done.episode_id)
                           .values(plan_status=EVALUATED))

    return sub
