"""Assessment's view of intake: every opened episode waits for its one-hour initial
evaluation. Fed by booking's ``episode.opened`` through the inbox (exactly once); where the
episode's evaluation stands (``evaluation_status``) is kept by the evaluations projection
(projections.py) as its evaluations open and close.

Also the reassessments booked before the episode had a completed initial evaluation (the
front desk books the initial assessment and the week-4 reassessment at intake): such a
booking cannot open its draft yet (a reassessment is measured against a baseline), so it is
remembered here, and its draft is opened when the initial evaluation completes
(application/evaluations.py)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.booking.v1.events import EpisodeOpened
from kinetic_infra.inbox.consumer import Subscription

metadata = MetaData()

episodes = Table(
    "episodes", metadata,
    Column("episode_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("symptom_site", Text, nullable=False),
    Column("evaluation_status", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
)

# A booked reassessment waiting for the episode's baseline: one row per appointment, gone
# once its draft is opened (or the appointment is cancelled).
reassessments_awaiting_baseline = Table(
    "reassessments_awaiting_baseline", metadata,
    Column("appointment_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("episode_id", UUID(as_uuid=True), nullable=False),
    Column("therapist_id", UUID(as_uuid=True), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    # The booking's event: the draft opened later names it as its cause.
    Column("correlation_id", UUID(as_uuid=True)),
    Column("causation_id", UUID(as_uuid=True), nullable=False),
)

AWAITING_EVALUATION = "awaiting_initial_evaluation"


def subscription() -> Subscription:
    sub = Subscription(name="assessment-intake", source_service="booking")

    @sub.on(EpisodeOpened.event_type)
    async def on_episode_opened(conn: AsyncConnection, event: CloudEvent) -> None:
        opened = EpisodeOpened.model_validate(event.data)
        await conn.execute(insert(episodes).values(
            episode_id=opened.episode_id, tenant_id=event.tenantid, patient_id=opened.patient_id,
            location_id=opened.location_id, symptom_site=opened.symptom_site,
            evaluation_status=AWAITING_EVALUATION, opened_at=opened.opened_at,
        ).on_conflict_do_nothing(index_elements=["episode_id"]))

    return sub
