"""Plan hears that assessment referred a patient out after a positive red-flag screen
(``evaluation.referred_out``, consumer ``plan-referrals``, through the inbox). An episode whose
plan never became active (none was drafted, or only a draft) is closed with the reason
``referred_out``: plan publishes ``plan.episode.discharged`` saying so, booking closes the
episode and cancels its sessions booked ahead, and the episode's workflow ends
(``episode_watch`` signals it).

An active plan is not ended by a referral: it may come from a reassessment, and whether
treatment stops is the clinician's discharge to record (an override with the reason
``referred_out``). The aggregate refuses the closure and the inbox records the refusal.

The consumer reads assessment's stream from its start, so its first deployment also closes
the episodes referred out before it, which were left waiting; a referral older than the
plan's draft (the patient came back and was evaluated again) closes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.assessment.v1.events import ReferredOut
from kinetic_infra.event_store.model import EventContext
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.service.definition import Runtime
from plan.application import plans
from plan.domain import plan


def subscription(runtime: Runtime) -> Subscription:
    sub = Subscription(name="plan-referrals", source_service="assessment")

    @sub.on(ReferredOut.event_type)
    async def on_referred_out(conn: AsyncConnection, event: CloudEvent) -> None:
        referred = ReferredOut.model_validate(event.data)
        context = EventContext(tenant_id=event.tenantid,
                               correlation_id=event.correlationid or event.id,
                               causation_id=event.id, location_id=referred.location_id,
                               episode_id=referred.episode_id)
        await plans.run(conn, runtime.store, plan.CloseEpisode(
            plan_id=plans.plan_id_for(referred.episode_id), now=datetime.now(UTC),
            episode_id=referred.episode_id, patient_id=referred.patient_id,
            location_id=referred.location_id, reason="referred_out",
            red_flags=tuple(referred.red_flags), referred_at=referred.referred_at), context)

    return sub
