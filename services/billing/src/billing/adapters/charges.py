"""What starts and informs each SessionChargeWorkflow, and what its activities do.

- ``billing-charges`` reads booking's appointment outcomes: a completed session, a no-show
  or a late cancellation starts the appointment's workflow (idempotent by workflow id, so a
  redelivered event charges nothing twice); a reversed appointment is un-charged at once, in
  the consumer's transaction (the charge aggregate makes it happen once).
- ``billing-charge-signals`` reads billing's own events: ``invoice.issued`` for a pack sold
  starts that pack's workflow (its price is invoiced like any charge, so it is reminded and
  falls overdue like any invoice; started from the committed event, never for a sale that
  rolled back), and ``payment.recorded`` and ``invoice.credited`` signal the workflow (the
  appointment's, or the pack's) what the invoice still asks.
- The activities charge the appointment (a pack was charged when it was sold: its invoice
  is read) and follow the invoice up (reminder, overdue).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from billing.adapters.projections import invoices
from billing.application import billing
from billing.application.workflows import (
    CHARGE_SESSION,
    FOLLOW_UP,
    ChargeInput,
    ChargeOutcome,
    ChargeRequest,
    FollowUp,
    InvoiceChange,
    PackInvoice,
    SessionChargeWorkflow,
    pack_workflow_id,
    workflow_id,
    workflow_id_of,
)
from billing.domain import charge, due_dates, invoice
from billing.settings import billing_settings
from kinetic_contracts import CloudEvent
from kinetic_contracts.billing.v1 import events as public
from kinetic_contracts.booking.v1.events import (
    AppointmentCancelled,
    AppointmentCompleted,
    AppointmentNoShow,
    AppointmentReversed,
)
from kinetic_infra.commands import run_command
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.service.definition import Runtime
from kinetic_infra.telemetry import workflows_started
from kinetic_infra.temporal import temporal_client


def charge_input(tenant_id: Any, occurrence: charge.Occurrence) -> ChargeInput:
    settings = billing_settings()
    return ChargeInput(tenant_id=tenant_id, occurrence=occurrence,
                       day_seconds=settings.day_seconds, reminder_days=settings.reminder_days)


def pack_input(tenant_id: Any, pack_id: UUID, invoice_id: UUID) -> ChargeInput:
    settings = billing_settings()
    return ChargeInput(tenant_id=tenant_id, pack=PackInvoice(pack_id=pack_id,
                                                             invoice_id=invoice_id),
                       day_seconds=settings.day_seconds, reminder_days=settings.reminder_days)


async def start_charge(runtime: Runtime, inp: ChargeInput) -> None:
    """One workflow per appointment or pack, ever: a finished one is never started again."""
    client = await temporal_client(runtime)
    try:
        await client.start_workflow(
            SessionChargeWorkflow.run, inp, id=workflow_id_of(inp),
            task_queue=runtime.definition.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:
        return
    workflows_started.add(1, {"workflow": "SessionChargeWorkflow"})


async def late_by_policy(conn: AsyncConnection, runtime: Runtime, tenant_id: Any,
                         cancelled: AppointmentCancelled) -> bool:
    """Late under billing's cancellation policy in force on the session's date, and not the
    clinic's own cancellation (``charge.cancellation_chargeable``). With no price list yet,
    the workflow decides (and records that nothing is due)."""
    if cancelled.by_clinic:
        return False  # no tariff to read: nothing is charged, whatever it says
    day = await billing.local_date(conn, cancelled.location_id, cancelled.starts_at)
    tariff = await billing.tariff_on(conn, runtime.store, tenant_id, cancelled.location_id, day)
    return charge.cancellation_chargeable(
        cancelled, None if tariff is None else tariff.policy.late_cancel_hours)


def subscriptions(runtime: Runtime) -> list[Subscription]:
    outcomes = Subscription(name="billing-charges", source_service="booking")
    own = Subscription(name="billing-charge-signals", source_service="billing")

    async def on_outcome(_conn: AsyncConnection, event: CloudEvent) -> None:
        done = (AppointmentCompleted if event.type == AppointmentCompleted.event_type
                else AppointmentNoShow).model_validate(event.data)
        occurrence = charge.Occurrence(
            **done.model_dump(include={"appointment_id", "patient_id", "location_id",
                                       "therapist_id", "episode_id", "appointment_type",
                                       "starts_at", "at"}),
            outcome="completed" if isinstance(done, AppointmentCompleted) else "no_show")
        await start_charge(runtime, charge_input(event.tenantid, occurrence))

    outcomes.on(AppointmentCompleted.event_type)(on_outcome)
    outcomes.on(AppointmentNoShow.event_type)(on_outcome)

    @outcomes.on(AppointmentCancelled.event_type)
    async def on_cancelled(conn: AsyncConnection, event: CloudEvent) -> None:
        c = AppointmentCancelled.model_validate(event.data)
        if not await late_by_policy(conn, runtime, event.tenantid, c):
            return
        # The cancellation names no type or episode: the fee is the policy's, not a type's.
        await start_charge(runtime, charge_input(event.tenantid, charge.Occurrence(
            appointment_id=c.appointment_id, patient_id=c.patient_id,
            location_id=c.location_id, therapist_id=c.therapist_id,
            appointment_type="treatment_session", starts_at=c.starts_at, outcome="cancelled",
            at=c.cancelled_at)))

    @outcomes.on(AppointmentReversed.event_type)
    async def on_reversed(conn: AsyncConnection, event: CloudEvent) -> None:
        r = AppointmentReversed.model_validate(event.data)
        await billing.reverse_charge(conn, runtime.store, event.tenantid, r.appointment_id,
                                     r.reason_code, datetime.now(UTC))

    @own.on(public.InvoiceIssued.event_type)
    async def on_issued(_conn: AsyncConnection, event: CloudEvent) -> None:
        issued = public.InvoiceIssued.model_validate(event.data)
        if issued.kind == "pack" and issued.pack_id is not None:
            await start_charge(runtime, pack_input(event.tenantid, issued.pack_id,
                                                   issued.invoice_id))

    async def on_invoice_change(conn: AsyncConnection, event: CloudEvent) -> None:
        appointment_id = event.data.get("appointment_id")
        if appointment_id is not None:
            followed_by = workflow_id(appointment_id)
        else:
            # Payments and credits name no pack: the invoice's row does (written with the
            # invoice, so it is there before any payment on it).
            pack_id = await conn.scalar(select(invoices.c.pack_id).where(
                invoices.c.invoice_id == UUID(event.data["invoice_id"])))
            if pack_id is None:
                return  # an invoice of neither an appointment nor a pack has no workflow
            followed_by = pack_workflow_id(pack_id)
        client = await temporal_client(runtime)
        try:
            await client.get_workflow_handle(followed_by).signal(
                SessionChargeWorkflow.invoice_changed,
                InvoiceChange(version=event.sequence, outstanding=event.data["outstanding"]))
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise  # a finished workflow has nothing left to wait for

    own.on(public.PaymentRecorded.event_type)(on_invoice_change)
    own.on(public.InvoiceCredited.event_type)(on_invoice_change)
    return [outcomes, own]


def activities(runtime: Runtime) -> Sequence[Callable[..., Any]]:
    store = runtime.store

    async def invoiced(conn: AsyncConnection, tenant_id: UUID, invoice_id: UUID
                       ) -> dict[str, Any]:
        bill, version = await billing.load(conn, store, billing.invoice_stream(invoice_id),
                                           invoice, tenant_id=tenant_id)
        issued = bill.issued
        # The workflow cannot read the clinic's timezone: the instant the invoice becomes
        # overdue (its midnight after the due date) is read here, with the issue date
        # where the clinic is, which the terms count from.
        zone = await billing.location_zone(conn, issued.location_id)
        return ChargeOutcome(
            paid_by="invoice", invoice_id=issued.invoice_id, outstanding=bill.outstanding,
            version=version, issued_at=issued.issued_at,
            terms_days=(issued.due_on - issued.issued_at.astimezone(zone).date()).days,
            overdue_from=due_dates.overdue_from(issued.due_on, zone),
        ).model_dump(mode="json")

    @activity.defn(name=CHARGE_SESSION)
    async def charge_session(request: ChargeRequest) -> ChargeOutcome:
        async def work(conn: AsyncConnection) -> dict[str, Any]:
            if request.pack is not None:  # charged when sold: follow the pack's invoice
                return await invoiced(conn, request.tenant_id, request.pack.invoice_id)
            assert request.occurrence is not None
            state = await billing.charge_session(conn, store, request.tenant_id,
                                                 request.occurrence, datetime.now(UTC))
            if state.reversed is not None:
                return ChargeOutcome(paid_by="reversed").model_dump(mode="json")
            if state.charged is None:
                return ChargeOutcome(paid_by="nothing").model_dump(mode="json")
            if state.charged.invoice_id is None:
                return ChargeOutcome(paid_by="pack").model_dump(mode="json")
            return await invoiced(conn, request.tenant_id, state.charged.invoice_id)

        return ChargeOutcome.model_validate(
            await run_command(runtime.db, work, tenant_id=request.tenant_id))

    @activity.defn(name=FOLLOW_UP)
    async def follow_up(step: FollowUp) -> int:
        async def work(conn: AsyncConnection) -> dict[str, Any]:
            now = datetime.now(UTC)
            command = invoice.RemindPayment(invoice_id=step.invoice_id, reminder=step.reminder,
                                            now=now) if step.action == "remind" \
                else invoice.MarkOverdue(invoice_id=step.invoice_id, now=now)
            ctx = billing.context(step.tenant_id, step.invoice_id)
            await billing.run(conn, store, billing.invoice_stream(step.invoice_id), invoice,
                              command, ctx)
            bill = await billing.state_of(conn, store, billing.invoice_stream(step.invoice_id),
                                          invoice, step.tenant_id)
            return {"outstanding": bill.outstanding}

        result = await run_command(runtime.db, work, tenant_id=step.tenant_id)
        return int(result["outstanding"])

    return [charge_session, follow_up]
