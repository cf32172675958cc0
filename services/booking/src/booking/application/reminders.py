"""AppointmentReminderWorkflow: one short workflow per appointment that waits until the
reminder is due (``lead_minutes`` before the start) and then has booking publish
``appointment.reminder_due``. A reschedule moves it (signal ``moved``), a cancellation stops
it (signal ``cancelled``). A session booked or moved inside the lead time gets no reminder:
the patient has just arranged it. Deterministic: time comes from ``workflow.now()``.
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
    lead_minutes: int


class ReminderDue(BaseModel):
    tenant_id: UUID
    appointment_id: UUID
    starts_at: datetime
    lead_minutes: int


class ReminderOutcome(BaseModel):
    appointment_id: UUID
    outcome: Literal["reminded", "cancelled", "inside_lead_time"]
    starts_at: datetime


def workflow_id(appointment_id: UUID) -> str:
    return f"appointment-reminder-{appointment_id}"


@workflow.defn(name="AppointmentReminderWorkflow")
class AppointmentReminderWorkflow:
    @workflow.init
    def __init__(self, inp: ReminderInput) -> None:
        self._starts_at = inp.starts_at
        self._cancelled = False

    @workflow.run
    async def run(self, inp: ReminderInput) -> ReminderOutcome:
        lead = timedelta(minutes=inp.lead_minutes)
        while True:
            current = self._starts_at
            wait = (current - lead - workflow.now()).total_seconds()
            if wait <= 0:
                return self._outcome(inp, "inside_lead_time")
            try:
                await workflow.wait_condition(
                    lambda: self._cancelled or self._starts_at != current, timeout=wait)
            except asyncio.TimeoutError:
                break  # due, and neither moved nor cancelled meanwhile
            if self._cancelled:
                return self._outcome(inp, "cancelled")
        await workflow.execute_activity(
            EMIT_REMINDER, ReminderDue(tenant_id=inp.tenant_id, appointment_id=inp.appointment_id,
                                       starts_at=current, lead_minutes=inp.lead_minutes),
            start_to_close_timeout=timedelta(seconds=30))
        return self._outcome(inp, "reminded")

    def _outcome(self, inp: ReminderInput, outcome: str) -> ReminderOutcome:
        return ReminderOutcome(appointment_id=inp.appointment_id, outcome=outcome,  # type: ignore[arg-type]
                               starts_at=self._starts_at)

    @workflow.signal(name="moved")
    def moved(self, starts_at: datetime) -> None:
        self._starts_at = starts_at

    @workflow.signal(name="cancelled")
    def cancelled(self) -> None:
        self._cancelled = True
