"""A pack's price is invoiced like any charge: selling a pack starts the follow-up of its
invoice (a SessionChargeWorkflow named after the pack, on billing's own worker), and the
payments on that invoice reach it, so a paid pack invoice closes it."""

from __future__ import annotations

import asyncio

import pytest

from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from billing.application.workflows import SessionChargeWorkflow, pack_workflow_id
from kinetic_infra.stack.temporal import NAMESPACE
from kinetic_infra.temporal import connect_client
from tests.e2e.test_billing import priced  # noqa: F401

pytestmark = pytest.mark.platform


async def test_a_sold_pack_starts_its_invoice_follow_up_and_paying_it_closes_it(
        platform, api, priced, wait_for):  # noqa: F811
    sold = await api("billing", "POST", f"/patients/{priced['patient_id']}/packs",
                     json={"location_id": priced["location_id"], "offer": "six"})
    assert sold.status_code == 201, sold.text
    pack = sold.json()
    client = await connect_client(platform.temporal.address, NAMESPACE)
    handle = client.get_workflow_handle_for(SessionChargeWorkflow.run,
                                            pack_workflow_id(pack["pack_id"]))

    async def following() -> object:
        try:
            status = await handle.query(SessionChargeWorkflow.status)
        except (RPCError, WorkflowQueryFailedError):  # not started yet
            return None
        return status if status.invoice_id is not None else None

    status = await wait_for(following)
    assert (str(status.pack_id), str(status.invoice_id)) == (pack["pack_id"], pack["invoice_id"])
    assert (status.paid_by, status.outstanding, status.closed) == ("invoice", 51000, False)

    for amount in (21000, 30000):  # a partial payment keeps it open, the rest closes it
        paid = await api("billing", "POST", f"/invoices/{pack['invoice_id']}/payments",
                         json={"amount": amount, "currency": "EUR", "method": "transfer"})
        assert paid.status_code == 201, paid.text
    result = await asyncio.wait_for(handle.result(), 30)
    assert (result.closed, result.outstanding, result.pack_id) == (True, 0, status.pack_id)
