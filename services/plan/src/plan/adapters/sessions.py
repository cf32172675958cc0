"""Completed sessions, from booking's ``appointment.completed`` through the inbox: the
episode's session count (what the stall rules count) and the treatment sessions the
therapist still has to log. A redelivery inserts nothing new. Booking's
``appointment.reversed`` of a completion removes the session again: a completion recorded
in error is no session, and must not count towards the stall rules.

Replicas of the consumer read booking's stream side by side, and a completion that failed
once is redelivered seconds later, so the reversal can be applied before the completion it
undoes. A reversal is final in booking (nothing more happens to the appointment), so it is
remembered in ``reversed_completions`` and a completion heard after it records nothing.
Kept for good, so a catch-up or a dead letter's replay of the completion, later still,
records nothing either. Both handlers take the appointment's transaction-scoped lock first:
without it a completion and its reversal applied at once on two replicas would each miss
the other's uncommitted row, and the session would stay."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text, delete, exists, func, select
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.booking.v1.events import AppointmentCompleted, AppointmentReversed
from kinetic_infra.inbox.consumer import Subscription

metadata = MetaData()

sessions = Table(
    "sessions", metadata,
    Column("appointment_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("episode_id", UUID(as_uuid=True), nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("therapist_id", UUID(as_uuid=True), nullable=False),
    Column("appointment_type", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=False),
)

# Appointments whose completion booking reversed (migration 0005).
reversed_completions = Table(
    "reversed_completions", metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("appointment_id", UUID(as_uuid=True), primary_key=True),
    Column("reversed_at", DateTime(timezone=True), nullable=False),
)

# Sessions the therapist logs in plan; assessments are logged as evaluations in assessment.
TO_LOG = ("treatment_session",)


async def _lock(conn: AsyncConnection, appointment_id: object) -> None:
    """Until the transaction ends: the appointment's session is ours to add or remove."""
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(
        f"plan:session:{appointment_id}", 0))))


def subscription() -> Subscription:
    sub = Subscription(name="plan-sessions", source_service="booking")

    @sub.on(AppointmentCompleted.event_type)
    async def on_completed(conn: AsyncConnection, event: CloudEvent) -> None:
        done = AppointmentCompleted.model_validate(event.data)
        if done.episode_id is None:
            return  # a session outside an episode of care has no plan
        await _lock(conn, done.appointment_id)
        if await conn.scalar(select(exists().where(
                reversed_completions.c.tenant_id == event.tenantid,
                reversed_completions.c.appointment_id == done.appointment_id))):
            return  # its reversal overtook it: the completion was recorded in error
        await conn.execute(insert(sessions).values(
            appointment_id=done.appointment_id, tenant_id=event.tenantid,
            episode_id=done.episode_id, patient_id=done.patient_id,
            location_id=done.location_id, therapist_id=done.therapist_id,
            appointment_type=done.appointment_type, starts_at=done.starts_at,
            completed_at=done.at).on_conflict_do_nothing(index_elements=["appointment_id"]))

    @sub.on(AppointmentReversed.event_type)
    async def on_reversed(conn: AsyncConnection, event: CloudEvent) -> None:
        undone = AppointmentReversed.model_validate(event.data)
        if undone.reversed_outcome != "completed":
            return  # a no-show or a cancellation never made a session
        await _lock(conn, undone.appointment_id)
        await conn.execute(insert(reversed_completions).values(
            tenant_id=event.tenantid, appointment_id=undone.appointment_id,
            reversed_at=undone.reversed_at).on_conflict_do_nothing())
        await conn.execute(delete(sessions).where(
            sessions.c.appointment_id == undone.appointment_id))

    return sub
