"""A pack's price is invoiced like any charge, so its invoice is followed up (reminded, marked
overdue) by a SessionChargeWorkflow of its own, named after the pack."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from billing.adapters import charges
from billing.application.workflows import (
    ChargeInput,
    ChargeRequest,
    PackInvoice,
    workflow_id_of,
)
from billing.domain.charge import Occurrence

TENANT, PACK, INVOICE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def occurrence() -> Occurrence:
    at = datetime(2025, 3, 5, 9, tzinfo=UTC)
    return Occurrence(appointment_id=uuid.uuid4(), patient_id=uuid.uuid4(),
                      location_id=uuid.uuid4(), therapist_id=uuid.uuid4(),
                      appointment_type="treatment_session", starts_at=at,
                      outcome="completed", at=at)


def test_a_sold_packs_invoice_is_followed_by_a_workflow_named_after_the_pack():
    inp = charges.pack_input(TENANT, PACK, INVOICE)
    assert workflow_id_of(inp) == f"session-charge-pack-{PACK}"
    assert inp.pack == PackInvoice(pack_id=PACK, invoice_id=INVOICE)
    assert inp.occurrence is None


def test_a_pack_workflow_follows_up_on_the_configured_days():
    inp = charges.pack_input(TENANT, PACK, INVOICE)
    assert (inp.day_seconds, inp.reminder_days) == (86_400, [7, 12])


def test_an_appointments_workflow_keeps_its_id():
    o = occurrence()
    assert workflow_id_of(charges.charge_input(TENANT, o)) == f"session-charge-{o.appointment_id}"


def test_a_charge_is_for_an_appointment_or_a_pack_never_both_nor_neither():
    sold = PackInvoice(pack_id=PACK, invoice_id=INVOICE)
    for model in (ChargeInput, ChargeRequest):
        with pytest.raises(ValidationError):
            model(tenant_id=TENANT)
        with pytest.raises(ValidationError):
            model(tenant_id=TENANT, occurrence=occurrence(), pack=sold)


def test_a_running_appointment_workflows_input_still_reads():
    """Workflows started before packs were followed carry an occurrence and no pack."""
    o = occurrence()
    old = {"tenant_id": str(TENANT), "occurrence": o.model_dump(mode="json"),
           "day_seconds": 86400, "reminder_days": [7, 12]}
    assert ChargeInput.model_validate(old).occurrence == o
