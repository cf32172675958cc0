"""EpisodeOfCareWorkflow's orchestration on the real Temporal dev server (the ``stack``).

The workflow runs for real, on a worker of this test's own (unique) task queue; only its one
activity, ``check_episode_progress``, is a fake that answers from the test's script and
records every check it was asked for. Histories recorded from real runs are committed under
``histories/`` and replayed against the current code (see README.md: re-record them with
``KINETIC_RECORD_HISTORIES=1``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from unittest import mock
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.service import RPCError
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

import kinetic_infra.temporal
from kinetic_contracts.assessment.v1.events import MeasureScore
from kinetic_infra.stack.temporal import NAMESPACE
from kinetic_infra.temporal import connect_client
from plan.application import workflows as episode_workflow
from plan.application.workflows import (
    ACTIVE,
    AWAITING_EVALUATION,
    AWAITING_PLAN,
    CHECK_PROGRESS,
    CLOSED_PATCH,
    DISCHARGED,
    LIFECYCLE_PATCH,
    REASSESSMENT_DUE,
    EpisodeOfCareInput,
    EpisodeOfCareStatus,
    EpisodeOfCareWorkflow,
    ProgressCheck,
    ProgressReport,
    Trigger,
    workflow_id,
)

HISTORIES = Path(__file__).parent / "histories"
RECORDED = ("happy_path_to_discharge", "pre_patch_evaluation_only", "continued_as_new")
# The closure before the evaluation (CLOSED_PATCH): taken, and heard by a worker before it.
RECORDED_CLOSURES = ("closed_before_evaluation", "closure_unheard_before_patch")
RECORDING = os.environ.get("KINETIC_RECORD_HISTORIES") == "1"
# The project's converter: what connect_client gives every client and worker.
CONVERTER = kinetic_infra.temporal.pydantic_data_converter
ACTIVATED_ON = date(2030, 3, 4)  # far from the calendar, so the episode's clock is visible
# The longest a test waits for something that should happen (it goes on as soon as it does):
# on a loaded machine a fresh worker's first workflow task alone can take seconds.
WAIT = 15.0


# ---------------------------------------------------------------------------------------------
# The fake activity and helpers


@dataclass
class Call:
    check: ProgressCheck
    run_id: str
    at: float  # the event loop's clock when the check arrived

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.check.triggers]


class FakeProgress:
    """Stands in for plan's ``check_episode_progress``: records every check and answers with
    the next report of ``script``, else with ``report``; while ``held``, each check waits
    for the test's ``answer``."""

    def __init__(self, report: ProgressReport | None = None) -> None:
        self.report = report or ProgressReport(plan_status="none")
        self.script: list[ProgressReport] = []
        self.calls: list[Call] = []
        self.held = False
        self._held: asyncio.Queue[Call] = asyncio.Queue()
        self._answers: asyncio.Queue[ProgressReport] = asyncio.Queue()

    @activity.defn(name=CHECK_PROGRESS)
    async def check(self, check: ProgressCheck) -> ProgressReport:
        call = Call(check, activity.info().workflow_run_id, asyncio.get_running_loop().time())
        self.calls.append(call)
        if self.held:
            self._held.put_nowait(call)
            return await self._answers.get()
        return self.script.pop(0) if self.script else self.report

    def answer(self, report: ProgressReport | None = None) -> None:
        self._answers.put_nowait(report or self.report)

    async def next_held(self, timeout: float = WAIT) -> Call:
        return await asyncio.wait_for(self._held.get(), timeout)

    @property
    def trigger_ids(self) -> list[str]:
        return [i for c in self.calls for i in c.ids]

    async def calls_reach(self, n: int, timeout: float = WAIT) -> list[Call]:
        await until(lambda: _const(len(self.calls) >= n), timeout=timeout,
                    what=lambda: f"{n} checks (got {len(self.calls)})")
        return list(self.calls)


async def _const(value: Any) -> Any:
    return value


async def until(probe: Callable[[], Awaitable[Any]], *, timeout: float = WAIT,
                what: Callable[[], str] = lambda: "condition") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what()} not reached within {timeout}s")
        await asyncio.sleep(0.02)


async def stage_becomes(handle: WorkflowHandle, stage: str, timeout: float = WAIT
                        ) -> EpisodeOfCareStatus:
    last: list[EpisodeOfCareStatus] = []

    async def probe() -> EpisodeOfCareStatus | None:
        status = await handle.query(EpisodeOfCareWorkflow.status)
        last[:] = [status]
        return status if status.stage == stage else None

    return await until(probe, timeout=timeout,
                       what=lambda: f"stage {stage!r} (last: {last[0] if last else None})")


async def first_task_done(handle: WorkflowHandle) -> None:
    """The workflow has run its first task (as a real episode waits for its evaluation)."""

    async def probe() -> bool:
        history = await handle.fetch_history()
        return any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                   for e in history.events)

    await until(probe, what=lambda: "the first workflow task")


@dataclass
class ClockReading:
    today: date  # what the workflow passed to a check
    expected: date  # activated_on + whole clock-days since the anchor, by the history's times


def clock_readings(histories: list[WorkflowHistory], day_seconds: float
                   ) -> list[ClockReading]:
    """For every check after activation (across the runs given, in order): the ``today`` the
    workflow sent, against the episode's clock computed from the recorded times. The anchor
    is the start of the workflow task that took in the first ``active`` report; a check's
    clock reads at the start of the workflow task that scheduled it (``workflow.now()``)."""
    anchor: datetime | None = None
    activated_on: date | None = None
    anchoring = False
    task_started = datetime.min.replace(tzinfo=UTC)
    readings = []
    for history in histories:
        for e in history.events:
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                task_started = e.event_time.ToDatetime().replace(tzinfo=UTC)
                if anchoring:
                    anchor, anchoring = task_started, False
            elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and not anchor:
                report = CONVERTER.payload_converter.from_payload(
                    e.activity_task_completed_event_attributes.result.payloads[0],
                    ProgressReport)
                if report.plan_status == "active":
                    anchoring, activated_on = True, report.activated_on
            elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and anchor:
                check = CONVERTER.payload_converter.from_payload(
                    e.activity_task_scheduled_event_attributes.input.payloads[0], ProgressCheck)
                assert activated_on is not None
                days = int((task_started - anchor).total_seconds() // day_seconds)
                readings.append(ClockReading(check.today, activated_on + timedelta(days=days)))
    return readings


def active(**fields: Any) -> ProgressReport:
    return ProgressReport(plan_status="active", plan_stage="early_loading",
                          activated_on=ACTIVATED_ON, **fields)


def episode_input(**fields: Any) -> EpisodeOfCareInput:
    return EpisodeOfCareInput(tenant_id=uuid4(), episode_id=uuid4(), patient_id=uuid4(),
                              location_id=uuid4(), symptom_site="knee_anterior",
                              opened_at=datetime.now(UTC), **fields)


@pytest.fixture(scope="module")
async def client(stack) -> Client:
    assert stack.temporal is not None
    return await connect_client(stack.temporal.address, NAMESPACE)


@pytest.fixture
def task_queue() -> str:
    # Our own queue: the platform's plan worker (if running in this session) never sees it.
    return f"episode-test-{uuid4()}"


@pytest.fixture
async def episodes(client: Client) -> AsyncIterator[Callable[..., Awaitable[WorkflowHandle]]]:
    """Start an EpisodeOfCareWorkflow; whatever is still running at the end is terminated."""
    started: list[str] = []

    async def start(task_queue: str, **fields: Any) -> WorkflowHandle:
        inp = episode_input(**fields)
        started.append(workflow_id(inp.episode_id))
        return await client.start_workflow(
            EpisodeOfCareWorkflow.run, inp, id=workflow_id(inp.episode_id),
            task_queue=task_queue, execution_timeout=timedelta(minutes=5))

    yield start
    for wid in started:
        with suppress(RPCError):
            await client.get_workflow_handle(wid).terminate(reason="test over")


@asynccontextmanager
async def watching(client: Client, task_queue: str, fake: FakeProgress,
                   **options: Any) -> AsyncIterator[Worker]:
    async with Worker(client, task_queue=task_queue, workflows=[EpisodeOfCareWorkflow],
                      activities=[fake.check], **options) as worker:
        yield worker


# ---------------------------------------------------------------------------------------------
# 1. Waiting for the evaluation, then the activated plan


async def test_nothing_is_checked_before_the_evaluation_and_the_stage_follows_the_plan(
        client, task_queue, episodes):
    fake = FakeProgress(ProgressReport(plan_status="draft"))
    async with watching(client, task_queue, fake):
        handle = await episodes(task_queue)
        await first_task_done(handle)
        # A plan change heard before the evaluation waits for it.
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id="early-event"))
        await asyncio.sleep(0.5)  # time enough for an eager workflow to check
        status = await handle.query(EpisodeOfCareWorkflow.status)
        assert (status.stage, status.today) == (AWAITING_EVALUATION, None)
        assert fake.calls == [], "no check before the evaluation"

        await handle.signal(EpisodeOfCareWorkflow.evaluation_completed)
        [first] = await fake.calls_reach(1)
        assert first.ids == ["early-event"]
        assert first.check.episode_id == (await _input_of(handle)).episode_id
        status = await stage_becomes(handle, AWAITING_PLAN)
        assert status.today is None, "the episode's clock starts with the activated plan"

        fake.report = active()
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id="plan-created"))
        calls = await fake.calls_reach(2)
        assert calls[1].ids == ["plan-created"]
        status = await stage_becomes(handle, ACTIVE)
        assert (status.plan_stage, status.today) == ("early_loading", ACTIVATED_ON)
        await asyncio.sleep(0.3)
        assert len(fake.calls) == 2, "no next_check, no trigger: no further check"


async def test_an_episode_closed_before_its_evaluation_ends_without_a_check(
        client, task_queue, episodes):
    """Referred out at the initial evaluation (or the patient withdrew first): no evaluation
    and no plan will come, and no check would see the end, so the closure ends the wait."""
    fake = FakeProgress()
    async with watching(client, task_queue, fake):
        handle = await episodes(task_queue)
        await first_task_done(handle)
        await handle.signal(EpisodeOfCareWorkflow.episode_closed)
        result = await asyncio.wait_for(handle.result(), WAIT)
    assert isinstance(result, EpisodeOfCareStatus) and result.stage == DISCHARGED
    assert fake.calls == []
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_an_episode_closed_while_awaiting_its_plan_ends_on_the_plans_record(
        client, task_queue, episodes):
    """A draft closed, or no plan drafted: the discharge's ``plan_changed`` brings a check,
    which reads the end from the plan."""
    fake = FakeProgress(ProgressReport(plan_status="draft"))
    async with watching(client, task_queue, fake):
        handle = await episodes(task_queue)
        await handle.signal(EpisodeOfCareWorkflow.evaluation_completed)
        await fake.calls_reach(1)
        await stage_becomes(handle, AWAITING_PLAN)
        fake.report = ProgressReport(plan_status="discharged")
        await handle.signal(EpisodeOfCareWorkflow.episode_closed)
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id="discharged"))
        result = await asyncio.wait_for(handle.result(), WAIT)
    assert result.stage == DISCHARGED
    assert [c.ids for c in fake.calls] == [[], ["discharged"]]


async def _input_of(handle: WorkflowHandle) -> EpisodeOfCareInput:
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return CONVERTER.payload_converter.from_payload(started.input.payloads[0],
                                                    EpisodeOfCareInput)


# ---------------------------------------------------------------------------------------------
# 2. Timers on the episode's clock


async def test_the_next_check_comes_on_the_episodes_clock_without_a_signal(
        client, task_queue, episodes):
    fake = FakeProgress(active(next_check=ACTIVATED_ON + timedelta(days=4)))
    async with watching(client, task_queue, fake):
        handle = await episodes(task_queue, day_seconds=0.5)
        await handle.signal(EpisodeOfCareWorkflow.evaluation_completed)
        [first] = await fake.calls_reach(1)
        fake.report = active(reassessment_due=True)  # what the check four days later says
        # Before activation the clock is the calendar's (UTC) date.
        assert abs((first.check.today - datetime.now(UTC).date()).days) <= 1

        calls = await fake.calls_reach(2)
        second = calls[1]
        assert second.ids == [], "woken by its timer, not by a signal"
        assert second.at - first.at >= 1.9, "four 0.5 s days after activation"
        assert second.check.today == ACTIVATED_ON + timedelta(days=4)
        status = await stage_becomes(handle, REASSESSMENT_DUE)
        assert status.today >= ACTIVATED_ON + timedelta(days=4)
        assert [c.check.today for c in fake.calls[1:]] == [ACTIVATED_ON + timedelta(days=4)]

    history = await handle.fetch_history()
    [timer] = [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
               for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert timer == timedelta(seconds=2), "four clock-days of 0.5 s from the activation"
    [reading] = clock_readings([history], day_seconds=0.5)
    assert reading.today == reading.expected


# ---------------------------------------------------------------------------------------------
# 3. Deduplication of triggers


async def test_the_same_event_delivered_twice_is_checked_once(client, task_queue, episodes):
    fake = FakeProgress(active())
    async with watching(client, task_queue, fake):
        handle = await episodes(task_queue)
        await handle.signal(EpisodeOfCareWorkflow.evaluation_completed)
        await stage_becomes(handle, ACTIVE)
        measured = Trigger(id="outcome-measured-1", session_number=3, measures=[
            MeasureScore(measure="lefs", version="1", scores={"total": 52.0})])
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, measured)
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, measured)  # redelivered at once
        await until(lambda: _const("outcome-measured-1" in fake.trigger_ids))
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, measured)  # redelivered later
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id="session-logged-2"))
        await until(lambda: _const("session-logged-2" in fake.trigger_ids))
        await asyncio.sleep(0.5)  # a wrongly repeated check would come now

    assert Counter(fake.trigger_ids) == {"outcome-measured-1": 1, "session-logged-2": 1}
    assert all(c.ids for c in fake.calls[1:]), "a duplicate does not even wake a check"
    [carried] = [t for c in fake.calls for t in c.check.triggers if t.id == measured.id]
    assert carried == measured, "the numbers travel with the trigger"


# ---------------------------------------------------------------------------------------------
# 4. A worker killed mid-episode


async def test_a_trigger_sent_while_no_worker_runs_is_checked_by_the_next_worker(
        client, task_queue, episodes):
    fake = FakeProgress(active(next_check=ACTIVATED_ON + timedelta(days=1000)))  # a long timer
    first_worker = Worker(client, task_queue=task_queue, workflows=[EpisodeOfCareWorkflow],
                          activities=[fake.check])
    running = asyncio.create_task(first_worker.run())
    try:
        handle = await episodes(task_queue, day_seconds=0.25)
        await handle.signal(EpisodeOfCareWorkflow.evaluation_completed)
        await fake.calls_reach(1)
        await stage_becomes(handle, ACTIVE)
    finally:
        running.cancel()  # the worker goes away mid-episode, the workflow on its long timer
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, WAIT)
    await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id="session-logged-1"))
    await asyncio.sleep(0.5)
    assert len(fake.calls) == 1, "nobody checks while no worker runs"

    fake.report = ProgressReport(plan_status="discharged", plan_stage="return_to_sport",
                                 activated_on=ACTIVATED_ON)
    async with watching(client, task_queue, fake):  # a new worker, with an empty cache
        result = await asyncio.wait_for(handle.result(), WAIT)
    assert isinstance(result, EpisodeOfCareStatus)
    assert (result.stage, result.plan_stage) == (DISCHARGED, "return_to_sport")
    assert [c.ids for c in fake.calls] == [[], ["session-logged-1"]]
    # The clock's anchor came back from the history, not from the new worker's first look.
    [reading] = clock_readings([await handle.fetch_history()], day_seconds=0.25)
    assert reading.today == reading.expected == fake.calls[1].check.today
    assert reading.today >= ACTIVATED_ON + timedelta(days=2), "clock-days passed meanwhile"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


# ---------------------------------------------------------------------------------------------
# 5. Continue-as-new


async def test_a_long_episode_continues_as_new_with_its_clock_seen_ids_and_pending_triggers(
        client, task_queue, episodes):
    fake = FakeProgress(active())
    async with watching(client, task_queue, fake):
        handle = await episodes(task_queue, day_seconds=1, max_history_events=30)
        first_run = handle.first_execution_run_id or handle.run_id
        await handle.signal(EpisodeOfCareWorkflow.evaluation_completed)
        await fake.calls_reach(1)  # activation anchors the clock
        await stage_becomes(handle, ACTIVE)
        await asyncio.sleep(2.2)  # two clock-days pass

        # Each check is held while the next trigger arrives, so whenever a check ends there
        # is a pending trigger: the one that continues as new must carry it over.
        fake.held = True
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id="t0"))
        sent = ["t0"]
        for i in range(1, 15):
            call = await fake.next_held()
            if call.run_id != first_run:
                break
            assert call.ids == [sent[-1]]
            sent.append(f"t{i}")
            await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id=sent[-1]))
            fake.answer()
        else:
            pytest.fail("never continued as new")
        fake.held = False
        fake.answer()
        assert call.ids == [sent[-1]], "the pending trigger was carried into the new run"
        assert call.check.today >= ACTIVATED_ON + timedelta(days=2), \
            "the new run keeps the clock's anchor (a lost or new one would read otherwise)"

        # An event seen before the continue-as-new, redelivered after it, is still seen.
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id="t0"))
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id="after"))
        await until(lambda: _const("after" in fake.trigger_ids))
        await asyncio.sleep(0.3)
        status = await stage_becomes(handle, ACTIVE)

    assert Counter(fake.trigger_ids) == Counter([*sent, "after"])
    assert all(v == 1 for v in Counter(fake.trigger_ids).values())
    latest = await client.get_workflow_handle(handle.id).describe()
    assert latest.run_id != first_run
    first = await client.get_workflow_handle(handle.id, run_id=first_run).describe()
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    runs = list(dict.fromkeys(c.run_id for c in fake.calls))
    assert runs[0] == first_run and len(runs) >= 2
    later = [c for c in fake.calls if c.run_id != first_run]
    assert all(c.check.today >= ACTIVATED_ON + timedelta(days=2) for c in later)
    assert status.today is not None and status.today >= ACTIVATED_ON + timedelta(days=2)
    # Every check of every run reads the one clock anchored at the activation.
    histories = [await client.get_workflow_handle(handle.id, run_id=r).fetch_history()
                 for r in runs]
    readings = clock_readings(histories, day_seconds=1)
    assert len(readings) == len(fake.calls) - 1
    assert [r.today for r in readings] == [r.expected for r in readings]
    assert [r.today for r in readings] == [c.check.today for c in fake.calls[1:]]


# ---------------------------------------------------------------------------------------------
# 6. Replay of recorded histories


class PrePatchInput(BaseModel):
    """EpisodeOfCareInput as it was before the lifecycle (issue #7's first slice)."""

    tenant_id: UUID
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    symptom_site: str
    goal_target_date: date | None = None
    opened_at: datetime


class PrePatchStatus(BaseModel):
    episode_id: UUID
    stage: str


@workflow.defn(name="EpisodeOfCareWorkflow")
class PrePatchEpisodeOfCareWorkflow:
    """A copy of the workflow before ``episode-lifecycle``: it ended with the evaluation."""

    def __init__(self) -> None:
        self._stage = "awaiting_evaluation"
        self._episode_id: UUID | None = None

    @workflow.run
    async def run(self, inp: PrePatchInput) -> PrePatchStatus:
        self._episode_id = inp.episode_id
        await workflow.wait_condition(lambda: self._stage != "awaiting_evaluation")
        return PrePatchStatus(episode_id=inp.episode_id, stage=self._stage)

    @workflow.signal(name="evaluation_completed")
    def evaluation_completed(self) -> None:
        self._stage = "evaluated"

    @workflow.query(name="status")
    def status(self) -> PrePatchStatus:
        assert self._episode_id is not None
        return PrePatchStatus(episode_id=self._episode_id, stage=self._stage)


@workflow.defn(name="EpisodeOfCareWorkflow")
class ChecksTwiceAfterTheEvaluation(EpisodeOfCareWorkflow):
    """A change that is not behind a patch: one more check right after the evaluation."""

    @workflow.run
    async def run(self, inp: EpisodeOfCareInput) -> EpisodeOfCareStatus:
        workflow.patched(LIFECYCLE_PATCH)
        await workflow.wait_condition(lambda: self._stage != AWAITING_EVALUATION)
        await workflow.execute_activity(
            CHECK_PROGRESS, ProgressCheck(tenant_id=inp.tenant_id, episode_id=inp.episode_id,
                                          today=workflow.now().date(), triggers=[]),
            result_type=ProgressReport, start_to_close_timeout=timedelta(seconds=30))
        return await super().run(inp)


def replayer(*workflows: type, sandboxed: bool = True) -> Replayer:
    # The production worker's set-up: the project's converter and the tracing interceptor.
    return Replayer(workflows=list(workflows), data_converter=CONVERTER,
                    interceptors=[TracingInterceptor()],
                    **({} if sandboxed else {"workflow_runner": UnsandboxedWorkflowRunner()}))


def recorded(name: str) -> WorkflowHistory:
    path = HISTORIES / f"{name}.json"
    assert path.exists(), f"{path} missing: record it with KINETIC_RECORD_HISTORIES=1 (README)"
    return WorkflowHistory.from_json(f"recorded-{name}", path.read_text())


async def record_happy_path(client: Client) -> WorkflowHistory:
    task_queue = f"episode-record-{uuid4()}"
    fake = FakeProgress(ProgressReport(plan_status="draft"))
    async with watching(client, task_queue, fake):
        inp = episode_input(day_seconds=0.2)
        handle = await client.start_workflow(EpisodeOfCareWorkflow.run, inp,
                                             id=workflow_id(inp.episode_id),
                                             task_queue=task_queue)
        await first_task_done(handle)
        await handle.signal(EpisodeOfCareWorkflow.evaluation_completed)
        await fake.calls_reach(1)
        await stage_becomes(handle, AWAITING_PLAN)
        # The plan is activated; its timer a clock-day later; then a long timer that the
        # next trigger cancels.
        fake.script = [active(next_check=ACTIVATED_ON + timedelta(days=1)),
                       active(next_check=ACTIVATED_ON + timedelta(days=1000))]
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id="plan-created"))
        await fake.calls_reach(3)
        await stage_becomes(handle, ACTIVE)
        fake.report = ProgressReport(plan_status="discharged", plan_stage="return_to_sport",
                                     activated_on=ACTIVATED_ON)
        await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(
            id="session-logged-9", session_number=9, measures=[
                MeasureScore(measure="lefs", version="1", scores={"total": 74.0})]))
        assert (await asyncio.wait_for(handle.result(), WAIT)).stage == DISCHARGED
        return await handle.fetch_history()


async def record_pre_patch(client: Client) -> WorkflowHistory:
    task_queue = f"episode-record-{uuid4()}"
    async with Worker(client, task_queue=task_queue,
                      workflows=[PrePatchEpisodeOfCareWorkflow],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        inp = PrePatchInput.model_validate(episode_input().model_dump(
            include=set(PrePatchInput.model_fields)))
        handle = await client.start_workflow(PrePatchEpisodeOfCareWorkflow.run, inp,
                                             id=workflow_id(inp.episode_id),
                                             task_queue=task_queue)
        await first_task_done(handle)
        await handle.signal(PrePatchEpisodeOfCareWorkflow.evaluation_completed)
        assert (await asyncio.wait_for(handle.result(), WAIT)).stage == "evaluated"
        return await handle.fetch_history()


async def record_continued_as_new(client: Client) -> WorkflowHistory:
    """The first run of an episode that continued as new (its last command)."""
    task_queue = f"episode-record-{uuid4()}"
    fake = FakeProgress(active())
    async with watching(client, task_queue, fake):
        inp = episode_input(max_history_events=20)
        handle = await client.start_workflow(EpisodeOfCareWorkflow.run, inp,
                                             id=workflow_id(inp.episode_id),
                                             task_queue=task_queue)
        await handle.signal(EpisodeOfCareWorkflow.evaluation_completed)
        for i in range(10):
            await fake.calls_reach(i + 1)
            if len({c.run_id for c in fake.calls}) > 1:
                break
            await handle.signal(EpisodeOfCareWorkflow.plan_changed, Trigger(id=f"t{i}"))
        else:
            pytest.fail("never continued as new")
        history = await client.get_workflow_handle(
            handle.id, run_id=handle.first_execution_run_id).fetch_history()
        await handle.terminate(reason="recorded")
        return history


async def record_closed_before_evaluation(client: Client) -> WorkflowHistory:
    task_queue = f"episode-record-{uuid4()}"
    async with watching(client, task_queue, FakeProgress()):
        inp = episode_input()
        handle = await client.start_workflow(EpisodeOfCareWorkflow.run, inp,
                                             id=workflow_id(inp.episode_id),
                                             task_queue=task_queue)
        await first_task_done(handle)
        await handle.signal(EpisodeOfCareWorkflow.episode_closed)
        assert (await asyncio.wait_for(handle.result(), WAIT)).stage == DISCHARGED
        return await handle.fetch_history()


def _patched_without_the_closure(real: Callable[[str], bool]) -> Callable[[str], bool]:
    """``workflow.patched`` as a worker before CLOSED_PATCH answered it: never taken."""
    return lambda patch_id: False if patch_id == CLOSED_PATCH else real(patch_id)


async def record_closure_unheard_before_patch(client: Client) -> WorkflowHistory:
    """A closure signalled to a worker that did not act on it (deployed before the patch):
    the workflow went on waiting, and ended by its check once the evaluation came."""
    task_queue = f"episode-record-{uuid4()}"
    fake = FakeProgress(ProgressReport(plan_status="discharged"))
    real = episode_workflow.workflow.patched
    with mock.patch.object(episode_workflow.workflow, "patched",
                           _patched_without_the_closure(real)):
        async with watching(client, task_queue, fake,
                            workflow_runner=UnsandboxedWorkflowRunner()):
            inp = episode_input()
            handle = await client.start_workflow(EpisodeOfCareWorkflow.run, inp,
                                                 id=workflow_id(inp.episode_id),
                                                 task_queue=task_queue)
            await first_task_done(handle)
            await handle.signal(EpisodeOfCareWorkflow.episode_closed)
            await asyncio.sleep(0.5)  # time enough to end, had it acted on the signal
            status = await handle.query(EpisodeOfCareWorkflow.status)
            assert status.stage == AWAITING_EVALUATION
            await handle.signal(EpisodeOfCareWorkflow.evaluation_completed)
            assert (await asyncio.wait_for(handle.result(), WAIT)).stage == DISCHARGED
            return await handle.fetch_history()


@pytest.mark.skipif(not RECORDING, reason="set KINETIC_RECORD_HISTORIES=1 to re-record")
async def test_record_histories(client):
    HISTORIES.mkdir(exist_ok=True)
    for name, record in (("happy_path_to_discharge", record_happy_path),
                         ("pre_patch_evaluation_only", record_pre_patch),
                         ("continued_as_new", record_continued_as_new),
                         ("closed_before_evaluation", record_closed_before_evaluation),
                         ("closure_unheard_before_patch", record_closure_unheard_before_patch)):
        history = await record(client)
        (HISTORIES / f"{name}.json").write_text(
            json.dumps(json.loads(history.to_json()), indent=2) + "\n")


def _history_names() -> list[str]:
    return sorted(set(RECORDED) | set(RECORDED_CLOSURES)
                  | {p.stem for p in HISTORIES.glob("*.json")})


@pytest.mark.parametrize("name", _history_names())
async def test_every_recorded_history_replays_on_the_current_workflow(name):
    history = recorded(name)
    result = await replayer(EpisodeOfCareWorkflow).replay_workflow(
        history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{name}: {result.replay_failure!r}"


def markers(history: WorkflowHistory) -> list[bytes]:
    return [p.data for e in history.events
            if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            for d in e.marker_recorded_event_attributes.details.values() for p in d.payloads]


def last(history: WorkflowHistory) -> int:
    return history.events[-1].event_type


def signals(history: WorkflowHistory) -> list[str]:
    return [e.workflow_execution_signaled_event_attributes.signal_name for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]


def test_the_recorded_histories_cover_both_paths_of_the_patch():
    happy, pre, continued = (recorded(n) for n in RECORDED)
    assert any(LIFECYCLE_PATCH.encode() in m for m in markers(happy))
    assert markers(pre) == [], "recorded before the patch existed"
    assert last(happy) == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert last(pre) == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert last(continued) == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    kinds = Counter(e.event_type for e in happy.events)
    assert kinds[EventType.EVENT_TYPE_TIMER_FIRED] == 1, "the happy path waited on a timer"
    assert kinds[EventType.EVENT_TYPE_TIMER_CANCELED] == 1, "and a trigger cut one short"
    assert kinds[EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED] == 4


def test_the_recorded_histories_cover_both_paths_of_the_closure_patch():
    closed, unheard = (recorded(n) for n in RECORDED_CLOSURES)
    assert any(CLOSED_PATCH.encode() in m for m in markers(closed))
    assert signals(closed) == ["episode_closed"]
    assert not any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                   for e in closed.events), "closed before the evaluation: nothing checked"
    assert not any(CLOSED_PATCH.encode() in m for m in markers(unheard))
    assert any(LIFECYCLE_PATCH.encode() in m for m in markers(unheard))
    assert signals(unheard) == ["episode_closed", "evaluation_completed"]
    assert last(closed) == last(unheard) == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


async def test_a_change_outside_a_patch_fails_replay_of_a_recorded_episode():
    result = await replayer(ChecksTwiceAfterTheEvaluation, sandboxed=False).replay_workflow(
        recorded("happy_path_to_discharge"), raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError), result.replay_failure


async def test_without_the_patch_guard_a_pre_patch_history_fails_replay(monkeypatch):
    # The lifecycle code with its ``workflow.patched`` guard removed: it always takes the new
    # path, which an episode recorded before the patch never took.
    monkeypatch.setattr(episode_workflow.workflow, "patched", lambda _patch_id: True)
    result = await replayer(EpisodeOfCareWorkflow, sandboxed=False).replay_workflow(
        recorded("pre_patch_evaluation_only"), raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError), result.replay_failure


async def test_without_the_closure_patch_guard_a_closure_heard_before_it_fails_replay(
        monkeypatch):
    # The closure taken whatever the history says: an episode whose closure reached a worker
    # before the patch went on waiting, which this code would not.
    monkeypatch.setattr(episode_workflow.workflow, "patched", lambda _patch_id: True)
    result = await replayer(EpisodeOfCareWorkflow, sandboxed=False).replay_workflow(
        recorded("closure_unheard_before_patch"), raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError), result.replay_failure
