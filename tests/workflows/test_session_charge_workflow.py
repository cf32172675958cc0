"""SessionChargeWorkflow on the real Temporal dev server, with billing's real activities
against the platform's billing database.

Each test runs the workflow on a worker of its own task queue, with days a second long (from
the workflow's input, as configuration gives it), so reminders and the due date come in
seconds. Payments go through billing's HTTP API; the platform's own consumer turns the
``payment.recorded`` event into the workflow's ``invoice_changed`` signal.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from zoneinfo import ZoneInfo
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from billing.adapters import charges
from billing.application.workflows import (
    ChargeInput,
    ChargeStatus,
    SessionChargeWorkflow,
    workflow_id,
)
from billing.bootstrap import SERVICE
from billing.domain.charge import Occurrence
from kinetic_infra.service.definition import Runtime, build_runtime
from kinetic_infra.settings import Settings
from kinetic_infra.stack.temporal import NAMESPACE
from kinetic_infra.temporal import connect_client
from kinetic_contracts.booking.v1.events import AppointmentReversed
from tests.e2e.test_billing import (  # noqa: F401
    completed,
    deliver,
    invoices_for,
    priced,
    tariff,
)

pytestmark = pytest.mark.platform

WAIT = 30.0


@pytest.fixture
async def runtime(platform) -> AsyncIterator[Runtime]:
    assert platform.nats is not None and platform.temporal is not None
    rt = build_runtime(SERVICE, Settings(
        service="billing", database_url=platform.database_urls["billing"],
        nats_url=platform.nats.url, temporal_address=platform.temporal.address,
        temporal_namespace=NAMESPACE))
    yield rt
    await rt.db.engine.dispose()


@pytest.fixture
async def client(platform) -> Client:
    return await connect_client(platform.temporal.address, NAMESPACE)


@asynccontextmanager
async def worker(client: Client, runtime: Runtime, queue: str) -> AsyncIterator[Worker]:
    async with Worker(client, task_queue=queue, workflows=[SessionChargeWorkflow],
                      activities=list(charges.activities(runtime))) as w:
        yield w


@pytest.fixture
async def short_terms(api, priced) -> dict[str, str]:  # noqa: F811
    """The priced location with invoices due three days after issue."""
    location_id = priced["location_id"]
    today = (await api("billing", "GET", f"/locations/{location_id}/prices")).json()
    assert today["in_force"] is not None
    # Today where the clinic is (Berlin): billing refuses a tariff starting before it, and
    # around midnight UTC the two dates differ.
    clinic_today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    raised = await api("billing", "POST", f"/locations/{location_id}/prices",
                       json=tariff(clinic_today, payment_terms_days=3))
    assert raised.status_code == 200, raised.text
    return priced


async def start(client: Client, tenant: uuid.UUID, occurrence: Occurrence, queue: str,
                day_seconds: float) -> WorkflowHandle[Any, ChargeStatus]:
    return await client.start_workflow(
        SessionChargeWorkflow.run,
        ChargeInput(tenant_id=tenant, occurrence=occurrence, day_seconds=day_seconds,
                    reminder_days=[1, 2]),
        id=workflow_id(occurrence.appointment_id), task_queue=queue)


def occurrence_of(event: Any) -> Occurrence:
    return Occurrence(**event.model_dump(include={
        "appointment_id", "patient_id", "location_id", "therapist_id", "episode_id",
        "appointment_type", "starts_at", "at"}), outcome="completed")


async def status_until(handle: WorkflowHandle[Any, ChargeStatus], check: Any) -> ChargeStatus:
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        status = await handle.query(SessionChargeWorkflow.status)
        if check(status) or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.2)


async def test_a_recorded_payment_signals_the_workflow_and_closes_it(
        platform, api, client, runtime, priced, tenant, wait_for):  # noqa: F811
    queue = f"test-billing-{uuid.uuid4()}"
    session = completed(priced)
    async with worker(client, runtime, queue):
        handle = await start(client, tenant, occurrence_of(session), queue, day_seconds=3600)
        [bill] = await wait_for(lambda: invoices_for(platform, session.appointment_id))
        for amount in (5000, 4500):  # a partial payment keeps it open, the rest closes it
            paid = await api("billing", "POST", f"/invoices/{bill['invoice_id']}/payments",
                             json={"amount": amount, "currency": "EUR", "method": "card"})
            assert paid.status_code == 201, paid.text
        result = await asyncio.wait_for(handle.result(), WAIT)
    assert (result.paid_by, result.closed, result.outstanding) == ("invoice", True, 0)
    assert (result.reminders, result.overdue) == (0, False)


async def test_a_reversed_appointment_credits_the_invoice_and_closes_the_workflow(
        platform, api, client, runtime, priced, tenant, wait_for):  # noqa: F811
    queue = f"test-billing-{uuid.uuid4()}"
    session = completed(priced)
    async with worker(client, runtime, queue):
        handle = await start(client, tenant, occurrence_of(session), queue, day_seconds=3600)
        await wait_for(lambda: invoices_for(platform, session.appointment_id))
        await deliver(platform, tenant, AppointmentReversed(
            **session.model_dump(include={"appointment_id", "patient_id", "therapist_id",
                                          "location_id", "appointment_type", "starts_at"}),
            reversed_outcome="completed", reason_code="recorded_in_error",
            reversed_at=session.at))
        result = await asyncio.wait_for(handle.result(), WAIT)
    assert (result.closed, result.outstanding) == (True, 0)
    [bill] = await invoices_for(platform, session.appointment_id)
    assert (bill["status"], bill["credited"]) == ("void", 9500)


async def test_an_unpaid_invoice_is_reminded_then_marked_overdue(
        platform, api, client, runtime, short_terms, tenant, wait_for, published):
    queue = f"test-billing-{uuid.uuid4()}"
    session = completed(short_terms)
    async with worker(client, runtime, queue):
        handle = await start(client, tenant, occurrence_of(session), queue, day_seconds=1.0)
        status = await status_until(handle, lambda s: s.overdue)
        assert (status.reminders, status.overdue, status.closed) == (2, True, False)
        [bill] = await invoices_for(platform, session.appointment_id)
        assert (bill["status"], bill["overdue"]) == ("overdue", True)
        reminders = await wait_for(lambda: _at_least(
            published, "kinetic.billing.invoice.reminder_due.v1", bill["invoice_id"], 2))
        assert sorted(r["data"]["reminder"] for r in reminders) == [1, 2]
        assert await wait_for(lambda: _at_least(
            published, "kinetic.billing.invoice.overdue.v1", bill["invoice_id"], 1))
        # Paid late: the overdue invoice closes the workflow.
        await api("billing", "POST", f"/invoices/{bill['invoice_id']}/payments",
                  json={"amount": 9500, "currency": "EUR", "method": "transfer"})
        result = await asyncio.wait_for(handle.result(), WAIT)
    assert result.closed


async def _at_least(published, event_type: str, invoice_id: uuid.UUID, n: int
                    ) -> list[dict[str, Any]] | None:
    events = [e for e in await published(event_type)
              if e["data"]["invoice_id"] == str(invoice_id)]
    return events if len(events) >= n else None


async def test_a_killed_worker_is_replaced_and_the_invoice_is_issued_once(
        platform, api, client, runtime, short_terms, tenant, wait_for):
    queue = f"test-billing-{uuid.uuid4()}"
    session = completed(short_terms)
    async with worker(client, runtime, queue):
        handle = await start(client, tenant, occurrence_of(session), queue, day_seconds=1.0)
        await wait_for(lambda: invoices_for(platform, session.appointment_id))
    # The first worker is gone with the invoice issued and its timers pending; a new one
    # picks the workflow up from its history.
    await asyncio.sleep(1.5)
    async with worker(client, runtime, queue):
        status = await status_until(handle, lambda s: s.overdue)
    assert status.overdue and status.reminders == 2
    assert len(await invoices_for(platform, session.appointment_id)) == 1
    history = [e async for e in handle.fetch_history_events()]
    scheduled = [e for e in history if e.HasField("activity_task_scheduled_event_attributes")
                 and e.activity_task_scheduled_event_attributes.activity_type.name
                 == "charge_session"]
    assert len(scheduled) == 1
    await handle.terminate("test over")


async def test_the_charge_activity_run_twice_charges_once(
        platform, runtime, priced, tenant):  # noqa: F811
    """A retried activity (the worker died after the commit, before reporting) finds the
    appointment charged and answers with the same invoice."""
    [charge_session, _] = charges.activities(runtime)
    session = occurrence_of(completed(priced))
    from billing.application.workflows import ChargeRequest

    first = await charge_session(ChargeRequest(tenant_id=tenant, occurrence=session))
    second = await charge_session(ChargeRequest(tenant_id=tenant, occurrence=session))
    assert first.invoice_id == second.invoice_id and first.paid_by == "invoice"
    assert len(await invoices_for(platform, session.appointment_id)) == 1
