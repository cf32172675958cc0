"""AppointmentReminderWorkflow: one short workflow per appointment that waits until the
reminder is due (``lead_minutes`` before the start) and then has booking publish
``appointment.reminder_due``. A reschedule moves it (signal ``moved``), a cancellation stops
it (signal ``cancelled``). Moves can reach it out of order (the inbox consumer's replicas, a
nack's delay), so the latest arranged wins, not the last heard; and if the session has moved
by the time the reminder is due, the activity says where to and the workflow waits for that
time. A session booked or moved inside the lead time gets no reminder: the patient has just
arranged it. That is judged by when the session was arranged (the event's time), not by when
the workflow happens to start, so a consumer running behind never swallows a reminder: an
overdue one fires at once. Deterministic: time comes from ``workflow.now()``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel
from temporalio import workflow

EMIT_REMINDER = "emit_appointment_reminder"
EMIT_REMINDER_V2 = "emit_appointment_reminder_v2"
FOLLOW_MOVES_PATCH = "reminder-follows-the-latest-move"


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


class EmitResult(BaseModel):
    """What ``EMIT_REMINDER_V2`` found: the reminder published (or published already), the
    session moved to another time (``when``), or gone (cancelled, begun, ended)."""

    outcome: Literal["reminded", "moved", "gone"]
    when: Moved | None = None


class ReminderOutcome(BaseModel):
    appointment_id: UUID
    # stale: the appointment had been cancelled (or had begun) by the time it was due; before
    # FOLLOW_MOVES_PATCH, also moved to a time the workflow had not heard of
    outcome: Literal["reminded", "cancelled", "inside_lead_time", "stale"]
    starts_at: datetime


def workflow_id(appointment_id: UUID) -> str:
    return f"appointment-reminder-{appointment_id}"


@workflow.defn(name="AppointmentReminderWorkflow")
class AppointmentReminderWorkflow:
    @workflow.init
    def __init__(self, inp: ReminderInput) -> None:
        booked = Moved(starts_at=inp.starts_at, arranged_at=inp.arranged_at)
        self._last_heard = booked  # what a workflow from before FOLLOW_MOVES_PATCH follows
        self._latest = booked  # the move arranged last, whatever order the signals came in
        self._follow_latest = False
        self._cancelled = False

    @property
    def _when(self) -> Moved:
        return self._latest if self._follow_latest else self._last_heard

    @workflow.run
    async def run(self, inp: ReminderInput) -> ReminderOutcome:
        # Before the patch the last signal heard won and a stale reminder ended the workflow,
        # so moves overtaking each other in the inbox (A→B→C heard as C, B) left the session
        # at C unreminded. Running workflows keep the old commands; new ones follow the
        # latest move and, told by the activity that the session moved, wait for its time.
        self._follow_latest = workflow.patched(FOLLOW_MOVES_PATCH)
        lead = timedelta(minutes=inp.lead_minutes)
        while True:
            current = self._when
            due = current.starts_at - lead
            if due <= current.arranged_at:
                return self._outcome(inp, "inside_lead_time")
            wait = (due - workflow.now()).total_seconds()
            if wait > 0:
                try:
                    await workflow.wait_condition(
                        lambda: self._cancelled or self._when != current, timeout=wait)
                except asyncio.TimeoutError:
                    pass  # due, and neither moved nor cancelled meanwhile
                else:
                    if self._cancelled:
                        return self._outcome(inp, "cancelled")
                    continue  # moved: wait for the new time
            # else overdue: the event reached us late
            if self._cancelled:
                return self._outcome(inp, "cancelled")
            due_now = ReminderDue(tenant_id=inp.tenant_id, appointment_id=inp.appointment_id,
                                  starts_at=current.starts_at, lead_minutes=inp.lead_minutes)
            if not self._follow_latest:
                emitted = await workflow.execute_activity(
                    EMIT_REMINDER, due_now, start_to_close_timeout=timedelta(seconds=30),
                    result_type=bool)
                return self._outcome(inp, "reminded" if emitted else "stale")
            result = await workflow.execute_activity(
                EMIT_REMINDER_V2, due_now, start_to_close_timeout=timedelta(seconds=30),
                result_type=EmitResult)
            if result.outcome == "reminded":
                return self._outcome(inp, "reminded")
            if result.outcome == "gone" or result.when is None \
                    or result.when.starts_at == current.starts_at:
                return self._outcome(inp, "stale")
            # The session moved and its signal has not reached us (or just has): the stream
            # is the truth, unless a still later move was heard meanwhile.
            self._follow(result.when)
            if self._when == current:
                return self._outcome(inp, "stale")  # nothing newer to wait for

    def _outcome(self, inp: ReminderInput, outcome: str) -> ReminderOutcome:
        return ReminderOutcome(appointment_id=inp.appointment_id, outcome=outcome,  # type: ignore[arg-type]
                               starts_at=self._when.starts_at)

    def _follow(self, when: Moved) -> None:
        if when.arranged_at >= self._latest.arranged_at:
            self._latest = when

    @workflow.signal(name="moved")
    def moved(self, when: Moved) -> None:
        # Keeps both views: the patch decision is made in ``run``, which a signal sent with
        # the start precedes.
        self._last_heard = when
        self._follow(when)

    @workflow.signal(name="cancelled")
    def cancelled(self) -> None:
        self._cancelled = True
