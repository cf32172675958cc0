"""Drafts opened by events, through the inbox (each applied once in effect):

- booking's ``appointment.booked`` of an initial assessment or a reassessment (in an
  episode) opens that evaluation's draft for the session's therapist. The intake consumer
  reads it after the episode's ``episode.opened``, but replicas of the consumer read
  booking's stream side by side: a booking that overtook its episode is redelivered later
  (``RetryLater``), never rejected;
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
from kinetic_contracts.booking.v1.events import AppointmentBooked
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
            await evaluations.open_draft(
                conn, runtime.store,
                evaluation_id=evaluations.draft_id_for(session.appointment_id), kind=kind,
                episode_id=session.episode_id, appointment_id=session.appointment_id,
                therapist_id=session.therapist_id, context=_context(event))  # type: ignore[arg-type]
        except EpisodeNotFoundError as exc:
            raise RetryLater(f"appointment {session.appointment_id} is booked in episode "
                             f"{session.episode_id}, not applied here yet") from exc

    @due.on(ReassessmentDue.event_type)
    async def on_due(conn: AsyncConnection, event: CloudEvent) -> None:
        raised = ReassessmentDue.model_validate(event.data)
        await evaluations.open_draft(
            conn, runtime.store, evaluation_id=evaluations.draft_id_for(event.id),
            kind="reassessment", episode_id=raised.episode_id, context=_context(event))

    return [booked, due]
