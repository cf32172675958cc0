"""Reminders: booking's consumer of its own appointment events drives one
AppointmentReminderWorkflow per appointment, and the worker's activity publishes
``appointment.reminder_due`` through the appointment's stream.

Temporal calls happen outside the inbox transaction and are idempotent: a start keeps the
running workflow (same id), a move is signal-with-start (it reaches the running workflow,
or starts a new one if the first has already reminded), and a cancel of a finished
workflow is nothing to do. The activity's command decides nothing for a stale or repeated
reminder, so a retried activity publishes once; for a stale one, the workflow's activity (from
``FOLLOW_MOVES_PATCH`` on) says where the session has moved, so the workflow can wait for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from booking.adapters.commands import event_context
from booking.application import handlers
from booking.application.reminders import (
    EMIT_REMINDER,
    EMIT_REMINDER_V2,
    AppointmentReminderWorkflow,
    EmitResult,
    Moved,
    ReminderDue,
    ReminderInput,
    workflow_id,
)
from booking.domain import appointment
from booking.settings import booking_settings
from kinetic_contracts import CloudEvent
from kinetic_contracts.booking.v1.events import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentRescheduled,
)
from kinetic_infra.commands import run_command
from kinetic_infra.event_store.decider import handle
from kinetic_infra.event_store.model import RecordedEvent
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.service.definition import Runtime
from kinetic_infra.telemetry import workflows_started
from kinetic_infra.temporal import temporal_client


async def _start(client: Client, runtime: Runtime, inp: ReminderInput, **signal: Any) -> None:
    await client.start_workflow(
        AppointmentReminderWorkflow.run, inp, id=workflow_id(inp.appointment_id),
        task_queue=runtime.definition.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, **signal)
    workflows_started.add(1, {"workflow": "AppointmentReminderWorkflow"})


def subscription(runtime: Runtime) -> Subscription:
    sub = Subscription(name="booking-reminders", source_service="booking")
    lead = booking_settings().reminder_lead_minutes

    def reminder(event: CloudEvent, when: Moved) -> ReminderInput:
        return ReminderInput(tenant_id=event.tenantid, appointment_id=event.data["appointment_id"],
                             starts_at=when.starts_at, arranged_at=when.arranged_at,
                             lead_minutes=lead)

    @sub.on(AppointmentBooked.event_type)
    async def on_booked(_conn: AsyncConnection, event: CloudEvent) -> None:
        booked = AppointmentBooked.model_validate(event.data)
        if booked.replaces is not None:
            return  # an arrival after a no-show: checked in already, nothing to remind of
        when = Moved(starts_at=booked.starts_at, arranged_at=booked.booked_at)
        await _start(await temporal_client(runtime), runtime, reminder(event, when))

    @sub.on(AppointmentRescheduled.event_type)
    async def on_rescheduled(_conn: AsyncConnection, event: CloudEvent) -> None:
        moved = AppointmentRescheduled.model_validate(event.data)
        when = Moved(starts_at=moved.starts_at, arranged_at=moved.rescheduled_at)
        await _start(await temporal_client(runtime), runtime, reminder(event, when),
                     start_signal="moved", start_signal_args=[when])

    @sub.on(AppointmentCancelled.event_type)
    async def on_cancelled(_conn: AsyncConnection, event: CloudEvent) -> None:
        cancelled = AppointmentCancelled.model_validate(event.data)
        handle_ = (await temporal_client(runtime)).get_workflow_handle(
            workflow_id(cancelled.appointment_id))
        try:
            await handle_.signal(AppointmentReminderWorkflow.cancelled)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # finished already: nothing to stop
                raise

    return sub


def _where(recorded: Sequence[RecordedEvent]) -> Moved | None:
    """Where the session stands and when that was arranged; None once it is not booked
    (cancelled, begun, ended)."""
    state = appointment.INITIAL
    where: Moved | None = None
    for r in recorded:
        event = appointment.EVENT_TYPES[r.type].model_validate(r.data)
        state = appointment.evolve(state, event)
        if isinstance(event, AppointmentBooked):
            where = Moved(starts_at=event.starts_at, arranged_at=event.booked_at)
        elif isinstance(event, AppointmentRescheduled):
            where = Moved(starts_at=event.starts_at, arranged_at=event.rescheduled_at)
    return where if isinstance(state, appointment.Booked) else None


def activities(runtime: Runtime) -> Sequence[Callable[..., Any]]:
    def reminder_command(due: ReminderDue) -> tuple[uuid.UUID, appointment.EmitReminder]:
        # The same reminder always carries the same correlation id, retried or not.
        command_id = uuid.uuid5(due.appointment_id, f"reminder:{due.starts_at.isoformat()}")
        return command_id, appointment.EmitReminder(
            appointment_id=due.appointment_id, for_starts_at=due.starts_at,
            lead_minutes=due.lead_minutes, now=datetime.now(UTC))

    async def emit(conn: AsyncConnection, due: ReminderDue) -> bool:
        command_id, command = reminder_command(due)
        recorded = await handle(
            conn, runtime.store, handlers.appointment_stream(due.appointment_id),
            appointment, command, tenant_id=due.tenant_id,
            context=event_context(due.tenant_id, command_id))
        return bool(recorded)

    @activity.defn(name=EMIT_REMINDER)
    async def emit_reminder(due: ReminderDue) -> bool:
        """Publish the reminder if the appointment still starts then; True if it did. Kept
        for workflows started before FOLLOW_MOVES_PATCH."""

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            return {"emitted": await emit(conn, due)}

        return bool((await run_command(runtime.db, work, tenant_id=due.tenant_id))["emitted"])

    @activity.defn(name=EMIT_REMINDER_V2)
    async def emit_reminder_v2(due: ReminderDue) -> EmitResult:
        """Publish the reminder if the appointment still starts then (or say it was, on a
        retry); else where it starts now, or that it is gone."""

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            if await emit(conn, due):
                return EmitResult(outcome="reminded").model_dump(mode="json")
            # Decided nothing: reminded already, moved, or no longer booked. Read in the same
            # transaction, so the answer is the state the decision saw.
            recorded, _ = await runtime.store.read(
                conn, handlers.appointment_stream(due.appointment_id), tenant_id=due.tenant_id)
            where = _where(recorded)
            if where is None:
                result = EmitResult(outcome="gone")
            elif where.starts_at == due.starts_at:
                result = EmitResult(outcome="reminded")
            else:
                result = EmitResult(outcome="moved", when=where)
            return result.model_dump(mode="json")

        return EmitResult.model_validate(
            await run_command(runtime.db, work, tenant_id=due.tenant_id))

    return [emit_reminder, emit_reminder_v2]
