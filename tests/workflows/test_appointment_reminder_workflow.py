"""AppointmentReminderWorkflow on the real Temporal dev server (the ``stack``): the reminder
follows the appointment's latest time whatever order the moves reach it in.

The workflow runs for real on a worker of each test's own task queue. Its activities are
fakes backed by ``FakeAppointment``, which holds where the session really is (as booking's
stream would). Durations come from the workflow's input: a lead time of zero and start
times seconds away, so a reminder falls due within the test.

The last test runs booking's real activity against the platform's booking database (a
booked, moved and cancelled appointment), which needs the whole platform.

Histories under ``histories/booking/`` are replayed against the current workflow; re-record
them with ``KINETIC_RECORD_HISTORIES=1`` (see test_record_reminder_histories).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from uuid import UUID, uuid4

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.service import RPCError
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

import kinetic_infra.temporal
from booking.application import reminders as reminder_workflow
from booking.application.reminders import (
    EMIT_REMINDER,
    EMIT_REMINDER_V2,
    FOLLOW_MOVES_PATCH,
    AppointmentReminderWorkflow,
    EmitResult,
    Moved,
    ReminderDue,
    ReminderInput,
    ReminderOutcome,
    workflow_id,
)
from kinetic_infra.stack.temporal import NAMESPACE
from kinetic_infra.temporal import connect_client

HISTORIES = Path(__file__).parent / "histories" / "booking"
RECORDING = os.environ.get("KINETIC_RECORD_HISTORIES") == "1"
CONVERTER = kinetic_infra.temporal.pydantic_data_converter
WAIT = 20.0


class FakeAppointment:
    """Stands in for booking's reminder activities: the session is where ``when`` says (or
    ``gone``); every reminder asked for and every one published is recorded. While ``held``,
    an activity waits for ``release`` before it reads the session, as a slow worker would."""

    def __init__(self, when: Moved) -> None:
        self.when = when
        self.gone = False
        self.asked: list[datetime] = []
        self.reminded: list[datetime] = []
        self.held = False
        self.in_activity = asyncio.Event()
        self._release = asyncio.Event()

    async def _arrive(self, due: ReminderDue) -> None:
        self.asked.append(due.starts_at)
        if self.held:
            self.in_activity.set()
            await self._release.wait()

    def release(self) -> None:
        self.held = False
        self._release.set()

    def _publish(self, starts_at: datetime) -> bool:
        if starts_at in self.reminded:
            return False
        self.reminded.append(starts_at)
        return True

    @activity.defn(name=EMIT_REMINDER)
    async def emit(self, due: ReminderDue) -> bool:
        await self._arrive(due)
        return not self.gone and due.starts_at == self.when.starts_at \
            and self._publish(due.starts_at)

    @activity.defn(name=EMIT_REMINDER_V2)
    async def emit_v2(self, due: ReminderDue) -> EmitResult:
        await self._arrive(due)
        if self.gone:
            return EmitResult(outcome="gone")
        if due.starts_at != self.when.starts_at:
            return EmitResult(outcome="moved", when=self.when)
        self._publish(due.starts_at)
        return EmitResult(outcome="reminded")


def at(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def reminder_input(when: Moved) -> ReminderInput:
    return ReminderInput(tenant_id=uuid4(), appointment_id=uuid4(), starts_at=when.starts_at,
                         arranged_at=when.arranged_at, lead_minutes=0)


@pytest.fixture(scope="module")
async def client(stack) -> Client:
    assert stack.temporal is not None
    return await connect_client(stack.temporal.address, NAMESPACE)


@pytest.fixture
def task_queue() -> str:
    # Our own queue: the platform's booking worker (if running in this session) never sees it.
    return f"reminder-test-{uuid4()}"


@asynccontextmanager
async def reminding(client: Client, task_queue: str, fake: FakeAppointment,
                    **options: Any) -> AsyncIterator[Worker]:
    async with Worker(client, task_queue=task_queue, workflows=[AppointmentReminderWorkflow],
                      activities=[fake.emit, fake.emit_v2], **options) as worker:
        yield worker


@asynccontextmanager
async def started(client: Client, task_queue: str, booked: Moved
                  ) -> AsyncIterator[WorkflowHandle[Any, ReminderOutcome]]:
    inp = reminder_input(booked)
    handle = await client.start_workflow(
        AppointmentReminderWorkflow.run, inp, id=workflow_id(inp.appointment_id),
        task_queue=task_queue, execution_timeout=timedelta(minutes=2))
    try:
        yield handle
    finally:
        with suppress(RPCError):
            await handle.terminate(reason="test over")


async def first_task_done(handle: WorkflowHandle) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while not any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                  for e in (await handle.fetch_history()).events):
        assert asyncio.get_running_loop().time() < deadline, "no first workflow task"
        await asyncio.sleep(0.05)


async def run_moves_arriving_out_of_order(client: Client, task_queue: str
                                          ) -> tuple[ReminderOutcome, FakeAppointment,
                                                     WorkflowHandle]:
    """Booked far ahead (A), moved to B, then to C, B falling due before C; the move to C
    reaches the workflow first."""
    a = Moved(starts_at=at(1800), arranged_at=at(0))
    fake = FakeAppointment(a)
    async with reminding(client, task_queue, fake), started(client, task_queue, a) as handle:
        await first_task_done(handle)
        # Times from now on: a fresh worker's first task can take seconds on a loaded machine.
        b = Moved(starts_at=at(2), arranged_at=at(0))
        c = Moved(starts_at=at(4), arranged_at=at(0.1))
        fake.when = c
        # The inbox consumer may deliver the later move first (replicas, a nack's delay).
        await handle.signal(AppointmentReminderWorkflow.moved, c)
        await handle.signal(AppointmentReminderWorkflow.moved, b)
        result = await asyncio.wait_for(handle.result(), WAIT)
        return result, fake, handle


# ---------------------------------------------------------------------------------------------


async def test_a_move_that_arrives_after_a_later_move_is_ignored_and_the_latest_time_reminded(
        client, task_queue):
    result, fake, _ = await run_moves_arriving_out_of_order(client, task_queue)
    assert (result.outcome, result.starts_at) == ("reminded", fake.when.starts_at)
    assert fake.asked == [fake.when.starts_at], "never asked to remind of the older move"
    assert fake.reminded == [fake.when.starts_at]


async def test_a_move_landing_while_the_reminder_is_emitted_is_reminded_at_its_new_time(
        client, task_queue):
    b = Moved(starts_at=at(1), arranged_at=at(0))
    fake = FakeAppointment(b)
    fake.held = True
    async with reminding(client, task_queue, fake), started(client, task_queue, b) as handle:
        await asyncio.wait_for(fake.in_activity.wait(), WAIT)
        # Moved while the activity is on its way to the stream: it finds the session moved.
        c = Moved(starts_at=at(3), arranged_at=datetime.now(UTC))
        fake.when = c
        await handle.signal(AppointmentReminderWorkflow.moved, c)
        fake.release()
        result = await asyncio.wait_for(handle.result(), WAIT)
    assert (result.outcome, result.starts_at) == ("reminded", c.starts_at)
    assert fake.asked == [b.starts_at, c.starts_at]
    assert fake.reminded == [c.starts_at]


async def test_a_move_the_workflow_never_heard_of_is_found_by_the_activity_and_reminded(
        client, task_queue):
    """The move's signal is still on its way (or lost in a redelivery) when B falls due: the
    activity reports where the session is, and the workflow waits for that time."""
    b = Moved(starts_at=at(1), arranged_at=at(0))
    c = Moved(starts_at=at(3), arranged_at=at(0.1))
    fake = FakeAppointment(c)
    async with reminding(client, task_queue, fake), started(client, task_queue, b) as handle:
        result = await asyncio.wait_for(handle.result(), WAIT)
    assert (result.outcome, result.starts_at) == ("reminded", c.starts_at)
    assert fake.asked == [b.starts_at, c.starts_at]
    assert fake.reminded == [c.starts_at]


async def test_a_move_found_by_the_activity_inside_the_lead_time_gets_no_reminder(
        client, task_queue):
    b = Moved(starts_at=at(1), arranged_at=at(0))
    # Moved to a time already due when it was arranged: the patient has just arranged it.
    fake = FakeAppointment(Moved(starts_at=at(0.5), arranged_at=at(0.6)))
    async with reminding(client, task_queue, fake), started(client, task_queue, b) as handle:
        result = await asyncio.wait_for(handle.result(), WAIT)
    assert result.outcome == "inside_lead_time"
    assert fake.asked == [b.starts_at] and fake.reminded == []


async def test_a_session_gone_by_its_reminder_ends_the_workflow_as_stale(client, task_queue):
    b = Moved(starts_at=at(1), arranged_at=at(0))
    fake = FakeAppointment(b)
    fake.gone = True
    async with reminding(client, task_queue, fake), started(client, task_queue, b) as handle:
        result = await asyncio.wait_for(handle.result(), WAIT)
    assert (result.outcome, fake.asked, fake.reminded) == ("stale", [b.starts_at], [])


# ---------------------------------------------------------------------------------------------
# Replay: workflows started before FOLLOW_MOVES_PATCH keep their old commands


def replayer(sandboxed: bool = True) -> Replayer:
    return Replayer(workflows=[AppointmentReminderWorkflow], data_converter=CONVERTER,
                    interceptors=[TracingInterceptor()],
                    **({} if sandboxed else {"workflow_runner": UnsandboxedWorkflowRunner()}))


def recorded(name: str) -> WorkflowHistory:
    path = HISTORIES / f"{name}.json"
    assert path.exists(), f"{path} missing: record it with KINETIC_RECORD_HISTORIES=1"
    return WorkflowHistory.from_json(f"recorded-{name}", path.read_text())


def _without_the_patch(real: Callable[[str], bool]) -> Callable[[str], bool]:
    """``workflow.patched`` as a worker before FOLLOW_MOVES_PATCH answered it."""
    return lambda patch_id: False if patch_id == FOLLOW_MOVES_PATCH else real(patch_id)


async def record_out_of_order_before_patch(client: Client) -> WorkflowHistory:
    """The old workflow: the older move, heard last, wins; its reminder is stale; it ends."""
    real = reminder_workflow.workflow.patched
    with mock.patch.object(reminder_workflow.workflow, "patched", _without_the_patch(real)):
        result, _, handle = await run_moves_arriving_out_of_order(
            client, f"reminder-record-{uuid4()}")
    assert result.outcome == "stale"
    return await handle.fetch_history()


async def record_out_of_order_after_patch(client: Client) -> WorkflowHistory:
    result, _, handle = await run_moves_arriving_out_of_order(
        client, f"reminder-record-{uuid4()}")
    assert result.outcome == "reminded"
    return await handle.fetch_history()


@pytest.mark.skipif(not RECORDING, reason="set KINETIC_RECORD_HISTORIES=1 to re-record")
async def test_record_reminder_histories(client):
    HISTORIES.mkdir(exist_ok=True)
    for name, record in (("out_of_order_moves_before_patch", record_out_of_order_before_patch),
                         ("out_of_order_moves_after_patch", record_out_of_order_after_patch)):
        history = await record(client)
        (HISTORIES / f"{name}.json").write_text(
            json.dumps(json.loads(history.to_json()), indent=2) + "\n")


@pytest.mark.parametrize("name", sorted(p.stem for p in HISTORIES.glob("*.json")))
async def test_every_recorded_reminder_history_replays_on_the_current_workflow(name):
    result = await replayer().replay_workflow(recorded(name), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{name}: {result.replay_failure!r}"


def test_the_recorded_reminder_histories_cover_both_paths_of_the_patch():
    before = recorded("out_of_order_moves_before_patch")
    after = recorded("out_of_order_moves_after_patch")

    def activities(history: WorkflowHistory) -> list[str]:
        return [e.activity_task_scheduled_event_attributes.activity_type.name
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]

    def marked(history: WorkflowHistory) -> bool:
        return any(FOLLOW_MOVES_PATCH.encode() in p.data for e in history.events
                   if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                   for d in e.marker_recorded_event_attributes.details.values()
                   for p in d.payloads)

    assert (activities(before), marked(before)) == ([EMIT_REMINDER], False)
    assert (activities(after), marked(after)) == ([EMIT_REMINDER_V2], True)


async def test_without_the_patch_guard_a_workflow_from_before_it_fails_replay(monkeypatch):
    monkeypatch.setattr(reminder_workflow.workflow, "patched", lambda _patch_id: True)
    result = await replayer(sandboxed=False).replay_workflow(
        recorded("out_of_order_moves_before_patch"), raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError), result.replay_failure


# ---------------------------------------------------------------------------------------------
# Booking's real activity against its database


@pytest.fixture
async def booking_runtime(platform) -> AsyncIterator[Any]:
    from booking.bootstrap import SERVICE
    from kinetic_infra.service.definition import build_runtime
    from kinetic_infra.settings import Settings

    assert platform.nats is not None and platform.temporal is not None
    rt = build_runtime(SERVICE, Settings(
        service="booking", database_url=platform.database_urls["booking"],
        nats_url=platform.nats.url, temporal_address=platform.temporal.address,
        temporal_namespace=NAMESPACE))
    yield rt
    await rt.db.engine.dispose()


@pytest.mark.platform
async def test_the_emit_activity_reports_where_a_moved_session_is_and_reminds_it_once(
        api, front_desk, tenant, booking_runtime):
    from booking.adapters import reminders

    therapist = await api("booking", "POST", "/therapists",
                          json={"location_ids": [front_desk["location_id"]]})
    first = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    booked = await api("booking", "POST", "/appointments", json={
        "patient_id": front_desk["patient_id"], "therapist_id": therapist.json()["id"],
        "location_id": front_desk["location_id"], "appointment_type": "treatment_session",
        "starts_at": first.isoformat()})
    assert booked.status_code == 201, booked.text
    appointment_id = UUID(booked.json()["id"])
    later = first + timedelta(days=1)
    moved = await api("booking", "POST", f"/appointments/{appointment_id}/reschedule",
                      json={"starts_at": later.isoformat()})
    assert moved.status_code == 200, moved.text
    [_, emit_v2] = reminders.activities(booking_runtime)

    def due(starts_at: datetime) -> ReminderDue:
        return ReminderDue(tenant_id=tenant, appointment_id=appointment_id,
                           starts_at=starts_at, lead_minutes=60)

    stale = await emit_v2(due(first))
    assert stale.outcome == "moved" and stale.when is not None
    assert stale.when.starts_at == later
    # Arranged when it was moved: after it was booked, and before we asked.
    assert datetime.fromisoformat(moved.json()["booked_at"]) < stale.when.arranged_at \
        < datetime.now(UTC)
    assert (await emit_v2(due(later))).outcome == "reminded"
    assert (await emit_v2(due(later))).outcome == "reminded", "a retry publishes nothing more"
    events = await api("booking", "GET", f"/appointments/{appointment_id}")
    assert events.json()["reminded_at"] is not None
    cancelled = await api("booking", "POST", f"/appointments/{appointment_id}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text
    assert (await emit_v2(due(later))).outcome == "gone"
