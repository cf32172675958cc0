"""Recorded SessionChargeWorkflow histories replay on the current workflow.

``histories/billing/appointment_before_pack_follow_ups.json`` is an appointment's workflow
run by the code from before pack invoices were followed up (charged, reminded twice, marked
overdue, then paid, on second-long days): following packs up must not change the commands
such a running workflow issues. ``pack_invoice_reminded_overdue_then_paid.json`` is a pack's,
so a later change to the pack path is caught the same way. Activities were faked when they
were recorded; replay runs no activity."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Replayer

from billing.application.workflows import SessionChargeWorkflow
from kinetic_infra.temporal import pydantic_data_converter

HISTORIES = Path(__file__).parent / "histories" / "billing"


@pytest.mark.parametrize("name", sorted(p.stem for p in HISTORIES.glob("*.json")))
async def test_every_recorded_session_charge_history_replays_on_the_current_workflow(name):
    history = WorkflowHistory.from_json(f"recorded-{name}",
                                        (HISTORIES / f"{name}.json").read_text())
    replayer = Replayer(workflows=[SessionChargeWorkflow],
                        data_converter=pydantic_data_converter,
                        interceptors=[TracingInterceptor()])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{name}: {result.replay_failure!r}"


def test_the_appointment_and_the_pack_paths_are_both_recorded():
    assert {p.stem for p in HISTORIES.glob("*.json")} >= {
        "appointment_before_pack_follow_ups", "pack_invoice_reminded_overdue_then_paid"}
