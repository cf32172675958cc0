"""A pack's invoice under SessionChargeWorkflow on the real Temporal dev server, with
billing's real activities and days a second long: left unpaid, it is reminded and marked
overdue like any invoice (a pack's price "is invoiced like any charge")."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from billing.application.workflows import ChargeInput, PackInvoice, SessionChargeWorkflow
from kinetic_infra.service.definition import Runtime
from tests.e2e.test_billing import priced  # noqa: F401
from tests.workflows.test_session_charge_workflow import (  # noqa: F401
    _at_least,
    client,
    runtime,
    short_terms,
    status_until,
    worker,
)

pytestmark = pytest.mark.platform


async def test_an_unpaid_pack_invoice_is_reminded_then_marked_overdue(
        platform, api, client: Client, runtime: Runtime, short_terms, tenant,  # noqa: F811
        wait_for, published):
    sold = await api("billing", "POST", f"/patients/{short_terms['patient_id']}/packs",
                     json={"location_id": short_terms["location_id"], "offer": "six"})
    assert sold.status_code == 201, sold.text
    pack = sold.json()
    queue = f"test-billing-{uuid.uuid4()}"
    async with worker(client, runtime, queue):
        # Billing's own worker follows the pack under its id, on production days; this one
        # runs on a second-long day, under an id of its own.
        handle = await client.start_workflow(
            SessionChargeWorkflow.run,
            ChargeInput(tenant_id=tenant, pack=PackInvoice(pack_id=pack["pack_id"],
                                                           invoice_id=pack["invoice_id"]),
                        day_seconds=1.0, reminder_days=[1, 2]),
            id=f"test-pack-{uuid.uuid4()}", task_queue=queue)
        status = await status_until(handle, lambda s: s.overdue)
        assert (status.paid_by, str(status.invoice_id)) == ("invoice", pack["invoice_id"])
        assert (status.reminders, status.overdue, status.closed) == (2, True, False)
        bill = (await api("billing", "GET", f"/invoices/{pack['invoice_id']}")).json()
        assert (bill["status"], bill["overdue"]) == ("overdue", True)
        reminders = await wait_for(lambda: _at_least(
            published, "kinetic.billing.invoice.reminder_due.v1", pack["invoice_id"], 2))
        assert sorted(r["data"]["reminder"] for r in reminders) == [1, 2]
        overdue = await api("billing", "GET", f"/invoices?status=overdue&patient_id="
                                              f"{short_terms['patient_id']}")
        assert [i["invoice_id"] for i in overdue.json()] == [pack["invoice_id"]]
        await handle.terminate("test over")
