"""Booking's reactions to plan's events, through the inbox (each applied once in effect):

- ``plan.created`` / ``plan.revised``: the plan's session frequency, for the "to book" list;
- ``plan.reassessment.due``: the episode goes on the "to book" list with the reason;
- ``plan.reassessment.resolved``: the clinician decided on the due reassessment (perhaps to
  continue without one): a due raised no later than the resolution leaves the list. Only the
  newest resolution is kept, apart from the due it answers, so a resolution heard before
  its due still takes that due off, and a due raised after it stays;
- ``plan.episode.discharged``: the episode of care is closed (``episode.closed``), and its
  sessions still booked ahead are cancelled as the clinic's cancellation (``by_clinic``:
  never late, so without a fee however close the session; their reminders stop, and their
  hours go to the waitlist): care has ended, nobody should turn up for them.

Plan's events may arrive out of order across plan's streams; the newest fact wins
(``updated_at`` / ``raised_at``), so a late older event never overwrites a newer one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.adapters.projections import (
    appointments,
    episode_plans,
    reassessments_due,
    reassessments_resolved,
)
from booking.application import handlers
from booking.domain import appointment, episode
from kinetic_contracts import CloudEvent
from kinetic_contracts.plan.v1.events import (
    EpisodeDischarged,
    PlanCreated,
    PlanRevised,
    ReassessmentDue,
    ReassessmentResolved,
)
from kinetic_infra.event_store.decider import handle, load
from kinetic_infra.event_store.model import EventContext
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.service.definition import Runtime


async def _newest_wins(conn: AsyncConnection, table: Table, row: dict[str, Any],
                       when: str) -> None:
    await conn.execute(insert(table).values(**row).on_conflict_do_update(
        index_elements=["episode_id"], set_=row,
        where=table.c[when] <= insert(table).excluded[when]))


def subscription(runtime: Runtime) -> Subscription:
    sub = Subscription(name="booking-plan-reactions", source_service="plan")

    async def plan_of_care(conn: AsyncConnection, event: CloudEvent,
                           plan: PlanCreated | PlanRevised, at: datetime) -> None:
        await _newest_wins(conn, episode_plans, {
            "episode_id": plan.episode_id, "tenant_id": event.tenantid,
            "plan_id": plan.plan_id, "sessions_per_week": plan.sessions_per_week,
            "expected_sessions": plan.expected_sessions, "target_date": plan.target_date,
            "updated_at": at}, "updated_at")

    @sub.on(PlanCreated.event_type)
    async def on_created(conn: AsyncConnection, event: CloudEvent) -> None:
        plan = PlanCreated.model_validate(event.data)
        await plan_of_care(conn, event, plan, plan.created_at)

    @sub.on(PlanRevised.event_type)
    async def on_revised(conn: AsyncConnection, event: CloudEvent) -> None:
        plan = PlanRevised.model_validate(event.data)
        await plan_of_care(conn, event, plan, plan.revised_at)

    @sub.on(ReassessmentDue.event_type)
    async def on_reassessment_due(conn: AsyncConnection, event: CloudEvent) -> None:
        due = ReassessmentDue.model_validate(event.data)
        await _newest_wins(conn, reassessments_due, {
            "episode_id": due.episode_id, "tenant_id": event.tenantid, "reason": due.reason,
            "due_by": due.due_by, "raised_at": due.raised_at}, "raised_at")

    @sub.on(ReassessmentResolved.event_type)
    async def on_reassessment_resolved(conn: AsyncConnection, event: CloudEvent) -> None:
        resolved = ReassessmentResolved.model_validate(event.data)
        await _newest_wins(conn, reassessments_resolved, {
            "episode_id": resolved.episode_id, "tenant_id": event.tenantid,
            "resolved_at": resolved.resolved_at}, "resolved_at")

    @sub.on(EpisodeDischarged.event_type)
    async def on_discharged(conn: AsyncConnection, event: CloudEvent) -> None:
        discharged, now = EpisodeDischarged.model_validate(event.data), datetime.now(UTC)
        context = EventContext(tenant_id=event.tenantid,
                               correlation_id=event.correlationid or event.id,
                               causation_id=event.id, location_id=discharged.location_id,
                               episode_id=discharged.episode_id)
        await handle(conn, runtime.store, handlers.episode_stream(discharged.episode_id),
                     episode, episode.CloseEpisode(episode_id=discharged.episode_id,
                                                   reason="discharged", now=now),
                     tenant_id=event.tenantid, context=context)
        a = appointments.c
        ahead = (await conn.execute(select(a.appointment_id).where(
            a.episode_id == discharged.episode_id, a.status == "booked", a.starts_at > now)
            .order_by(a.starts_at))).scalars().all()
        for appointment_id in ahead:
            state, _version = await load(conn, runtime.store,
                                         handlers.appointment_stream(appointment_id),
                                         appointment, tenant_id=event.tenantid)
            assert isinstance(state, appointment.Booked)
            await handlers.cancel_appointment(conn, runtime.store, appointment.CancelAppointment(
                appointment_id=appointment_id, now=now, late_cancel_hours=0, by_clinic=True),
                context)
            await handlers.offer_freed_hour(conn, runtime.store, state.booked, now, context)

    return sub
