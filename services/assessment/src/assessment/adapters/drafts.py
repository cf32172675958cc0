"""Drafts opened by events, through the inbox (each applied once in effect):

- booking's ``appointment.booked`` of an initial assessment or a reassessment (in an
  episode) opens that evaluation's draft for the session's therapist. The intake consumer
  reads it after the episode's ``episode.opened``, but replicas of the consumer read
  booking's stream side by side: a booking that overtook its episode is redelivered later
  (``RetryLater``), never rejected;
- a reassessment booked before the episode's initial evaluation is completed (booked at
  intake, with the assessment) has no baseline yet: it is remembered, not rejected, and its
  draft is opened for its appointment and therapist when the initial evaluation completes,
  in completion's transaction (``evaluations.open_booked``). Until then a cancellation
  forgets it and a move gives it to the new therapist, even when either is heard before
  the booking (``evaluations.appointment_changes``);
- plan's ``reassessment.due`` opens a reassessment draft.
The draft's id comes from the event's subject, and an episode keeps one open draft of each
kind, so a redelivery or both events together still make one draft.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from assessment.adapters import intake
from assessment.application import evaluations
from assessment.domain.errors import EpisodeNotFoundError
from kinetic_contracts import CloudEvent
from kinetic_contracts.booking.v1.events import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentRescheduled,
)
from kinetic_contracts.plan.v1.events import ReassessmentDue
from kinetic_infra.event_store.model import EventContext
from kinetic_infra.inbox.consumer import RetryLater, Subscription
from kinetic_infra.service.definition import Runtime

KINDS = {"initial_assessment": "initial", "reassessment": "reassessment"}


def _context(event: CloudEvent) -> EventContext:
    return EventContext(tenant_id=event.tenantid, correlation_id=event.correlationid or event.id,
                        causation_id=event.id, location_id=event.locationid,
                        episode_id=event.episodeid)


def subscriptions(runtime: Runtime) -> list[Subscription]:
    # Booked sessions are read by the intake consumer itself, which learns the episodes.
    booked = intake.subscription()
    due = Subscription(name="assessment-reassessments", source_service="plan")

    @booked.on(AppointmentBooked.event_type)
    async def on_booked(conn: AsyncConnection, event: CloudEvent) -> None:
        session = AppointmentBooked.model_validate(event.data)
        kind = KINDS.get(session.appointment_type)
        if kind is None or session.episode_id is None:
            return  # treatment sessions are plan's (session log), not evaluations
        try:
            await evaluations.open_booked(
                conn, runtime.store, appointment_id=session.appointment_id,
                kind=kind, episode_id=session.episode_id,  # type: ignore[arg-type]
                therapist_id=session.therapist_id, starts_at=session.starts_at,
                context=_context(event))
        except EpisodeNotFoundError as exc:
            raise RetryLater(f"appointment {session.appointment_id} is booked in episode "
                             f"{session.episode_id}, not applied here yet") from exc

    # Remembered, so that a booking heard after them is read as booking now has it: every
    # cancellation (the event does not say the appointment's type) and a reassessment's
    # move. Only a reassessment waiting for its baseline changes: its draft is not open yet.
    @booked.on(AppointmentCancelled.event_type)
    async def on_cancelled(conn: AsyncConnection, event: CloudEvent) -> None:
        cancelled = AppointmentCancelled.model_validate(event.data)
        await evaluations.booked_cancelled(conn, event.tenantid, cancelled.appointment_id,
                                           cancelled.cancelled_at)

    @booked.on(AppointmentRescheduled.event_type)
    async def on_rescheduled(conn: AsyncConnection, event: CloudEvent) -> None:
        moved = AppointmentRescheduled.model_validate(event.data)
        if moved.appointment_type != "reassessment" or moved.episode_id is None:
            return  # only a reassessment's draft waits for, and follows, its appointment
        await evaluations.booked_moved(conn, event.tenantid, moved.appointment_id,
                                       moved.therapist_id, moved.starts_at,
                                       moved.rescheduled_at)

    @due.on(ReassessmentDue.event_type)
    async def on_due(conn: AsyncConnection, event: CloudEvent) -> None:
        raised = ReassessmentDue.model_validate(event.data)
        await evaluations.open_draft(
            conn, runtime.store, evaluation_id=evaluations.draft_id_for(event.id),
            kind="reassessment", episode_id=raised.episode_id, context=_context(event))

    return [booked, due]
