"""SessionChargeWorkflow: one per completed, no-show or late-cancelled appointment, started
with the appointment's id (a redelivered event reaches the same workflow, never a second),
and one per pack sold, started with the pack's id: a pack's price is invoiced like any
charge, so its invoice is reminded and marked overdue like any other.

It charges the appointment once (activity ``charge_session``: the tariff in force on the
session's date, drawn from a pack or invoiced; a pack's invoice was issued with the sale, and
the activity only answers with it). An invoice is then followed until it is
settled: reminders fall due on the configured days after issue, and once its due date has
passed at the clinic (its midnight after the due date, ``domain.due_dates``) the invoice is
marked overdue; after that the workflow waits for the payment (or the reversal) that closes
it. Billing's own ``payment.recorded`` and ``invoice.credited`` events signal
``invoice_changed`` with what the invoice still asks.

Days run at ``day_seconds`` each (86 400 in production; a test shortens it by
configuration). Deterministic: time is ``workflow.now()``, every read and write is an
activity's; the clinic's timezone is read by the charge activity, which answers with the
instant the invoice becomes overdue.

Versioned with care: workflows started before the ``overdue-after-due-date`` patch marked
the invoice overdue at the start of its due date (at once with 0 days' terms, with no timer
before the activity), so they replay on that path; their charge answered no ``overdue_from``.
A pack's workflow issues the very commands an appointment's does (its input, not its code,
differs), so following packs up changed nothing an appointment's history replays.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator
from temporalio import workflow
from temporalio.common import RetryPolicy

from billing.domain.charge import Occurrence
from billing.domain.due_dates import FollowUpAction, follow_ups

CHARGE_SESSION = "charge_session"
OVERDUE_PATCH = "overdue-after-due-date"
FOLLOW_UP = "follow_up_invoice"
CHARGE_TIMEOUT = timedelta(minutes=2)


class PackInvoice(BaseModel):
    """A pack sold: its price was invoiced with the sale, so only the invoice is followed."""

    pack_id: UUID
    invoice_id: UUID


class _Charged(BaseModel):
    """What a workflow charges: an appointment's occurrence, or a pack sold (exactly one)."""

    tenant_id: UUID
    occurrence: Occurrence | None = None
    pack: PackInvoice | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> _Charged:
        if (self.occurrence is None) == (self.pack is None):
            raise ValueError("a charge is for an appointment's occurrence or a pack, not "
                             "both or neither")
        return self


class ChargeInput(_Charged):
    day_seconds: float = 86_400
    reminder_days: list[int] = Field(default_factory=lambda: [7, 12])


class ChargeRequest(_Charged):
    pass


class ChargeOutcome(BaseModel):
    paid_by: Literal["invoice", "pack", "nothing", "reversed"]
    invoice_id: UUID | None = None
    outstanding: int = 0
    version: int = 0  # the invoice stream's version the outstanding amount was read at
    issued_at: datetime | None = None
    terms_days: int = 0
    overdue_from: datetime | None = Field(
        default=None, description="The clinic's midnight after the due date; none from a "
                                  "charge made before the overdue-after-due-date patch")


class FollowUp(BaseModel):
    tenant_id: UUID
    invoice_id: UUID
    action: Literal["remind", "overdue"]
    reminder: int = 0


class InvoiceChange(BaseModel):
    """What the invoice asks after the event at ``version`` of its stream."""

    version: int
    outstanding: int


class ChargeStatus(BaseModel):
    appointment_id: UUID | None = None  # none for a pack's invoice
    pack_id: UUID | None = None
    paid_by: str | None = None
    invoice_id: UUID | None = None
    outstanding: int | None = None
    reminders: int = 0
    overdue: bool = False
    closed: bool = False


def workflow_id(appointment_id: UUID) -> str:
    return f"session-charge-{appointment_id}"


def pack_workflow_id(pack_id: UUID) -> str:
    return f"session-charge-pack-{pack_id}"


def workflow_id_of(inp: ChargeInput) -> str:
    if inp.pack is not None:
        return pack_workflow_id(inp.pack.pack_id)
    assert inp.occurrence is not None
    return workflow_id(inp.occurrence.appointment_id)


def _pre_patch_steps(issued_at: datetime, terms_days: int, inp: ChargeInput
                     ) -> list[tuple[datetime, FollowUpAction]]:
    """The follow-ups of a workflow started before the overdue-after-due-date patch, kept
    only so its history replays: overdue a whole number of days after the issue instant."""
    days: list[tuple[int, FollowUpAction]] = [
        (d, "remind") for d in sorted(set(inp.reminder_days)) if 0 < d < terms_days]
    days.append((terms_days, "overdue"))
    return [(issued_at + timedelta(seconds=d * inp.day_seconds), action)
            for d, action in days]


@workflow.defn(name="SessionChargeWorkflow")
class SessionChargeWorkflow:
    @workflow.init
    def __init__(self, inp: ChargeInput) -> None:
        self._inp = inp
        self._outcome: ChargeOutcome | None = None
        self._version = 0
        self._outstanding: int | None = None
        self._reminders = 0
        self._overdue = False

    @workflow.run
    async def run(self, inp: ChargeInput) -> ChargeStatus:
        self._outcome = outcome = await workflow.execute_activity(
            CHARGE_SESSION, ChargeRequest(tenant_id=inp.tenant_id, occurrence=inp.occurrence,
                                          pack=inp.pack),
            # A charge waits its turn for the organization's next gapless invoice number (a row
            # lock held until the invoice commits): at a burst of hundreds of charges on a busy
            # machine that takes tens of seconds, which must not count as a hung worker.
            result_type=ChargeOutcome, start_to_close_timeout=CHARGE_TIMEOUT,
            # No price list yet at the location: keep trying, ever less often, until one is
            # set (billing staff see the waiting charge in the Temporal UI).
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=10)))
        self.invoice_changed(InvoiceChange(version=outcome.version,
                                           outstanding=outcome.outstanding))
        if outcome.paid_by != "invoice" or outcome.invoice_id is None:
            return self.status()
        assert outcome.issued_at is not None
        steps: list[tuple[datetime, FollowUpAction]]
        if outcome.overdue_from is not None and workflow.patched(OVERDUE_PATCH):
            steps = follow_ups(outcome.issued_at, outcome.terms_days, outcome.overdue_from,
                               inp.reminder_days, inp.day_seconds)
        else:
            steps = _pre_patch_steps(outcome.issued_at, outcome.terms_days, inp)
        for at, action in steps:
            if await self._settled_before(at):
                return self.status()
            reminder = self._reminders + 1 if action == "remind" else 0
            left = await workflow.execute_activity(
                FOLLOW_UP, FollowUp(tenant_id=inp.tenant_id, invoice_id=outcome.invoice_id,
                                    action=action, reminder=reminder),  # type: ignore[arg-type]
                result_type=int, start_to_close_timeout=timedelta(seconds=30))
            if left <= 0:
                return self.status()
            if action == "remind":
                self._reminders = reminder
            else:
                self._overdue = True
        await workflow.wait_condition(self._settled)
        return self.status()

    def _settled(self) -> bool:
        return self._outstanding is not None and self._outstanding <= 0

    async def _settled_before(self, at: datetime) -> bool:
        wait = (at - workflow.now()).total_seconds()
        if wait > 0:
            try:
                await workflow.wait_condition(self._settled, timeout=wait)
            except asyncio.TimeoutError:
                pass
        return self._settled()

    @workflow.signal(name="invoice_changed")
    def invoice_changed(self, change: InvoiceChange) -> None:
        # Signals may arrive out of order (a redelivery): the newest version of the invoice
        # is what it asks.
        if change.version > self._version or self._outstanding is None:
            self._version, self._outstanding = change.version, change.outstanding

    @workflow.query(name="status")
    def status(self) -> ChargeStatus:
        o, occurrence, sold = self._outcome, self._inp.occurrence, self._inp.pack
        return ChargeStatus(appointment_id=occurrence.appointment_id if occurrence else None,
                            pack_id=sold.pack_id if sold else None,
                            paid_by=o.paid_by if o else None,
                            invoice_id=o.invoice_id if o else None,
                            outstanding=self._outstanding, reminders=self._reminders,
                            overdue=self._overdue, closed=self._settled())
