"""AppointmentReminderWorkflow: one short workflow per appointment that waits until the
reminder is due (``lead_minutes`` before the start) and then has booking publish
``appointment.reminder_due``. A reschedule moves it (signal ``moved``), a cancellation stops
it (signal ``cancelled``). A session booked or moved inside the lead time gets no reminder:
the patient has just arranged it. That is judged by when the session was arranged (the
event's time), not by when the workflow happens to start, so a consumer running behind
never swallows a reminder: an overdue one fires at once. Deterministic: time comes from
``workflow.now()``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel
from temporalio import workflow

EMIT_REMINDER = "emit_appointment_reminder"


class ReminderInput(BaseModel):
    tenant_id: UUID
    appointment_id: UUID
    starts_at: datetime
    arranged_at: datetime  # booked or moved at
    lead_minutes: int


class Moved(BaseModel):
    starts_at: datetime
    arranged_at: datetime


class ReminderDue(BaseModel):
    tenant_id: UUID
    appointment_id: UUID
    starts_at: datetime
    lead_minutes: int


class ReminderOutcome(BaseModel):
    appointment_id: UUID
    # stale: the appointment had moved or been cancelled by the time it was due
    outcome: Literal["reminded", "cancelled", "inside_lead_time", "stale"]
    starts_at: datetime


def workflow_id(appointment_id: UUID) -> str:
    return f"appointment-reminder-{appointment_id}"


@workflow.defn(name="AppointmentReminderWorkflow")
class AppointmentReminderWorkflow:
    @workflow.init
    def __init__(self, inp: ReminderInput) -> None:
        self._when = Moved(starts_at=inp.starts_at, arranged_at=inp.arranged_at)
        self._cancelled = False

    @workflow.run
    async def run(self, inp: ReminderInput) -> ReminderOutcome:
        lead = timedelta(minutes=inp.lead_minutes)
        while True:
            current = self._when
            due = current.starts_at - lead
            if due <= current.arranged_at:
                return self._outcome(inp, "inside_lead_time")
            wait = (due - workflow.now()).total_seconds()
            if wait <= 0:
                break  # overdue: the event reached us late
            try:
                await workflow.wait_condition(
                    lambda: self._cancelled or self._when != current, timeout=wait)
            except asyncio.TimeoutError:
                break  # due, and neither moved nor cancelled meanwhile
            if self._cancelled:
                return self._outcome(inp, "cancelled")
        if self._cancelled:
            return self._outcome(inp, "cancelled")
        emitted = await workflow.execute_activity(
            EMIT_REMINDER, ReminderDue(tenant_id=inp.tenant_id, appointment_id=inp.appointment_id,
                                       starts_at=current.starts_at,
                                       lead_minutes=inp.lead_minutes),
            start_to_close_timeout=timedelta(seconds=30), result_type=bool)
        return self._outcome(inp, "reminded" if emitted else "stale")

    def _outcome(self, inp: ReminderInput, outcome: str) -> ReminderOutcome:
        return ReminderOutcome(appointment_id=inp.appointment_id, outcome=outcome,  # type: ignore[arg-type]
                               starts_at=self._when.starts_at)

    @workflow.signal(name="moved")
    def moved(self, when: Moved) -> None:
        self._when = when

    @workflow.signal(name="cancelled")
    def cancelled(self) -> None:
        self._cancelled = True
