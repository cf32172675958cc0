"""Plan hears that an episode's initial evaluation is complete (assessment's
``evaluation.completed``, through the inbox): the plan is drafted from it in the same
transaction (stages, milestones, prescriptions and discharge criteria for the therapist to
edit, by the organization's current rule set and library), the caseload shows it evaluated
(its row created if plan has not heard the episode open yet) and the episode's workflow is
signalled, so it moves on to waiting for the activated plan.

Signal-with-start keeps this correct whichever consumer runs first: the running workflow
is signalled, or, if plan has not yet seen the episode open, it is started with the signal;
an episode has one workflow ever (reuse of its id is rejected), so the late ``episode.opened``
does not start a second run that would wait for an evaluation already done. The draft's id
comes from the episode, so a redelivery drafts nothing twice.

An episode already over when the evaluation is heard (closed, or referred out, before plan's
consumers caught up) gets neither a draft nor a workflow. One whose evaluation measured
nothing the rule set tracks gets no draft and waits for the plan: the clinician closes it
with the reason (``POST /episodes/{id}/close``, "nothing to treat") or evaluates again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.assessment.v1.events import EvaluationCompleted
from kinetic_infra.event_store.model import EventContext
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.service.definition import Runtime
from plan.adapters.caseload import episode_input, evaluation_heard, start_episode_workflow
from plan.application import plans
from plan.domain import plan
from plan.domain.drafting import NothingToTrackError, draft_plan

log = logging.getLogger(__name__)


def subscription(runtime: Runtime) -> Subscription:
    sub = Subscription(name="plan-evaluations", source_service="assessment")

    @sub.on(EvaluationCompleted.event_type)
    async def on_evaluated(conn: AsyncConnection, event: CloudEvent) -> None:
        done = EvaluationCompleted.model_validate(event.data)
        now = datetime.now(UTC)
        if await plans.ended(conn, runtime.store, done.episode_id, event.tenantid):
            return
        rules = await plans.rules_of(conn, runtime.store, event.tenantid)
        try:
            content = draft_plan(done, await plans.library_of(conn), rules, now.date())
        except NothingToTrackError as exc:
            # The evaluation measured nothing the rule set can track: there is no plan to
            # draft from it, and retrying will not change that. The episode still moves on,
            # to wait for a plan or for the clinician to close it.
            log.warning("no plan drafted for episode %s: %s", done.episode_id, exc)
        else:
            context = EventContext(tenant_id=event.tenantid,
                                   correlation_id=event.correlationid or event.id,
                                   causation_id=event.id, location_id=done.location_id,
                                   episode_id=done.episode_id)
            await plans.run(conn, runtime.store, plan.DraftPlan(
                plan_id=plans.plan_id_for(done.episode_id), now=now,
                episode_id=done.episode_id, patient_id=done.patient_id,
                location_id=done.location_id, evaluation_id=done.evaluation_id,
                therapist_id=done.therapist_id, content=content, rules=rules), context)
        await start_episode_workflow(runtime, episode_input(
            tenant_id=event.tenantid, episode_id=done.episode_id, patient_id=done.patient_id,
            location_id=done.location_id, symptom_site=done.symptom_sites[0],
            opened_at=done.completed_at), start_signal="evaluation_completed")
        await evaluation_heard(conn, event.tenantid, done)

    return sub
