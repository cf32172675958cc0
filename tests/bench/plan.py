"""Care episodes through plan's EpisodeOfCareWorkflow, beside a bare one-activity Temporal
workflow in the same run, and a simulated operator's day of session logs (issue #7).

Kinetic side: plan's four processes (api, relay, consumer, worker: ``Platform`` on the
benchmark's PostgreSQL and NATS and the stack's Temporal dev server, the development issuer
for tokens), with ``KINETIC_PLAN_DAY_SECONDS`` at the production default (86 400), so no
milestone timer fires during the run: every workflow task comes from a session.

Set-up, not timed: for each episode this process publishes a ready
``kinetic.assessment.evaluation.completed.v1`` onto JetStream (the §5 runner: LEFS 52, PSFS
2/5/4, NPRS 6, the hip-abductor findings; assessment is not on the measured path); plan's
consumer drafts the plan and starts the workflow; the plan is activated over HTTP
(``POST /episodes/{id}/plan/activate``); once the workflow's query ``status`` says
``active``, booking's ``appointment.completed`` for session 1 (the initial assessment) is
published, and for the operator load's episodes sessions 2-4 too.

Timed, Kinetic (``measure_episodes``): K episodes at once, each going through sessions
2, 3 and 4 in turn. A session's cycle: publish its ``appointment.completed``; wait until
plan's ``sessions`` table holds it (polled in the database every 10 ms by one watcher,
so the API serves only the logs); ``POST /episodes/{id}/sessions/{appointment}/log``; then
wait for the workflow's effect. For sessions 2 and 3 that is the workflow's stall
evaluation (the activity ``check_episode_progress``) having completed after the log's
``plan_changed`` signal, seen in the workflow's history (one long-poll of
``fetch_history_events`` per episode: signals and activities in order); nothing is
published for them. For session 4 it is ``kinetic.plan.reassessment.due.v1`` (STALL-1)
for that episode, read from JetStream by an ordered push consumer in this process (not
by polling ``GET /plan``). Rates: cycles (session logs whose effect was seen) and
episodes (all three) per second, over the time from the first publish to the last effect.
Latency: log sent -> effect seen here, per cycle. The history also says how many stall
evaluations the workflows ran for the timed logs (fewer than logs: signals were batched).

Baseline (``measure_bare``): ``BareWorkflow`` below (waits for a signal, runs one
activity that returns at once, completes), run by a Worker in this process on its own task
queue, sandboxed like plan's worker (the module's imports passed through, so a run's
sandbox does not re-import the benchmark). K clients, each in a loop: start, signal, wait
for the result, for a fixed time, after a warm-up; one run before and one after the
Kinetic episodes. Each bare workflow is one signal and one activity, as a Kinetic cycle,
plus its start and completion: the ratio is Kinetic cycles/s over bare workflows/s.

Operator load (``measure_load``): 10 locations x 8 therapists x 8 sessions a day = 640
session logs, spread evenly over 10 minutes in the issue (1.07 logs/s), compressed here
10x further to 60 s (10.7 logs/s, stricter) so ``make bench`` stays short. Each log is
session 4 of its own prepared episode, so each has a published effect
(``reassessment.due``): every log is a whole log -> evaluation -> event chain, more work
than a typical day's log. Logs are sent on schedule whatever the answers (open loop);
"no backlog" = every log answered 200, every effect arrived, the p99 of log sent -> effect
seen is at most ``NO_BACKLOG_SECONDS``, and so is the tail (last scheduled send -> last
effect: a backlog that builds up shows there). The worst lag (effect - scheduled send) is
printed too.

The Temporal server is the stack's dev server (``temporal server start-dev``, SQLite in a
file): it persists every workflow's start, signal, tasks and completion, and under
concurrency that persistence, not CPU, bounds the bare workflow's rate.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from kinetic_contracts import CloudEvent
from kinetic_contracts.assessment.v1.events import (
    Driver,
    EvaluationCompleted,
    FindingIndex,
    Goal,
    MeasureScore,
)
from kinetic_contracts.booking.v1.events import AppointmentCompleted
from kinetic_contracts.naming import nats_subject
from kinetic_contracts.plan.v1.events import ReassessmentDue
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.broker.streams import ensure_stream, service_stream
from kinetic_infra.service.definition import ServiceDefinition
from kinetic_infra.stack.platform import Platform, Ports, discover_services
from kinetic_infra.stack.temporal import NAMESPACE
from kinetic_infra.temporal import connect_client
from tests.bench.booking import http_client, http_clients
from tests.bench.latency import LatencyStats
from tests.bench.stack import BenchStack

TENANT_ID = UUID("0194f1d2-0000-7000-8000-0000000000c7")
OPERATOR = Principal("bench-plan-operator", "Benchmark operator", TENANT_ID,
                     frozenset({Role.OPERATOR}))
DAY_SECONDS = "86400"  # plan's production default: no milestone timer fires in the run
SETUP_CONCURRENCY = 32
POLL_SECONDS = 0.01  # the database watcher's interval
WAIT_SECONDS = 60.0  # longest wait for one step's effect before the step counts as missing
BARE_TASK_QUEUE = "bench-bare"
NO_BACKLOG_SECONDS = 5.0  # operator load: bound on the p99 latency and on the tail
TIMED_SESSIONS = (2, 3, 4)  # the sessions each timed episode goes through
STALL_SESSION = 4  # the session whose evaluation fires STALL-1 for the §5 runner
LOAD_CONNECTIONS = 32

# The §5 runner, as assessment publishes the completed evaluation (plan's drafting tests'
# RUNNER_MEASURES and RUNNER_FINDINGS).
RUNNER_MEASURES = [
    MeasureScore(measure="nprs", version="1", scores={"nprs": 6}),
    MeasureScore(measure="lefs", version="1", scores={"lefs": 52}),
    MeasureScore(measure="psfs", version="1",
                 scores={"psfs": 3.7, "psfs_01": 2, "psfs_02": 5, "psfs_03": 4}),
    MeasureScore(measure="tsk17", version="1", scores={"tsk17": 31}),
]
RUNNER_FINDINGS = [
    FindingIndex(finding_id=f, index=i, value=v, unit=u) for f, i, v, u in (
        ("strength:hip_abduction", "best_left", 18.0, "kgf"),
        ("strength:hip_abduction", "best_right", 14.2, "kgf"),
        ("strength:hip_abduction", "lsi_pct", 78.9, "%"),
        ("strength:hip_external_rotation", "lsi_pct", 82, "%"),
        ("strength:quadriceps", "lsi_pct", 92, "%"),
        ("movement:sls", "right_rating", 0, "rating"),
        ("movement:sls", "bilateral_rating", 0, "rating"),
        ("y_balance", "anterior_asymmetry_cm", 5, "cm"))]
RUNNER_DRIVERS = [Driver(code="hip_abductor_weakness",
                         finding_ids=["strength:hip_abduction",
                                      "strength:hip_external_rotation", "movement:sls"])]
RUNNER_GOALS = [Goal(activity="Running", level="45 min at pre-injury pace, 3 times a week")]


# --- the bare baseline ---------------------------------------------------------------------


@activity.defn(name="bench_bare_step")
async def bare_step() -> None:
    """Does nothing: the activity's round trip through the server is what is measured."""


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    def __init__(self) -> None:
        self._go = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._go)
        await workflow.execute_activity(bare_step, start_to_close_timeout=timedelta(seconds=30))

    @workflow.signal(name="go")
    def go(self) -> None:
        self._go = True


# --- results -------------------------------------------------------------------------------


@dataclass
class Timed:
    """Things done, how long it took, each one's latency (s), and what went wrong."""

    done: int = 0
    expected: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def stats(self) -> LatencyStats:
        return LatencyStats.of(self.latencies, self.expected, self.per_second)

    @classmethod
    def combined(cls, runs: Sequence[Timed]) -> Timed:
        total = cls()
        for r in runs:
            total.done += r.done
            total.expected += r.expected
            total.seconds += r.seconds
            total.latencies += r.latencies
            total.errors.update(r.errors)
        return total


@dataclass
class EpisodesResult:
    concurrency: int
    episodes: Timed  # latencies: first publish -> session 4's reassessment.due
    cycles: Timed  # every session's log -> effect
    evaluations: Timed  # sessions 2-3: log -> the workflow's stall evaluation completed
    stalls: Timed  # session 4: log -> reassessment.due on JetStream
    activities: int  # stall evaluations the workflows ran for the timed logs


@dataclass
class LoadResult:
    logs: int
    requested_rate: float
    sent_rate: float  # logs per second actually sent
    answered: Timed  # log sent -> 200 answered
    effects: Timed  # log sent -> reassessment.due seen
    max_lag: float  # effect - scheduled send, the worst log
    tail: float  # last effect - last scheduled send

    @property
    def no_backlog(self) -> bool:
        return (self.effects.done == self.logs and self.answered.done == self.logs
                and self.effects.stats().p99 <= NO_BACKLOG_SECONDS
                and self.tail <= NO_BACKLOG_SECONDS)


@dataclass
class PlanResult:
    setup_episodes: int = 0
    setup_seconds: float = 0.0
    kinetic: EpisodesResult | None = None
    bare_runs: list[Timed] = field(default_factory=list)
    load: LoadResult | None = None

    @property
    def bare(self) -> Timed | None:
        return Timed.combined(self.bare_runs) if self.bare_runs else None


# --- episodes and what is published for them -----------------------------------------------


@dataclass
class Episode:
    episode_id: UUID = field(default_factory=uuid.uuid4)
    patient_id: UUID = field(default_factory=uuid.uuid4)
    location_id: UUID = field(default_factory=uuid.uuid4)
    therapist_id: UUID = field(default_factory=uuid.uuid4)
    log_body: bytes = b""  # the session log, built from the activated plan's prescriptions
    appointments: dict[int, UUID] = field(default_factory=dict)  # session number -> id

    @property
    def workflow_id(self) -> str:
        return f"episode-of-care-{self.episode_id}"


def evaluation_completed(ep: Episode) -> EvaluationCompleted:
    return EvaluationCompleted(
        evaluation_id=uuid.uuid4(), episode_id=ep.episode_id, patient_id=ep.patient_id,
        location_id=ep.location_id, therapist_id=ep.therapist_id,
        symptom_sites=["knee_anterior_right"], drivers=RUNNER_DRIVERS,
        working_diagnosis_icd10="M22.2", episode_type="acute_clear_driver",
        goals=RUNNER_GOALS, baseline_measures=RUNNER_MEASURES, findings=RUNNER_FINDINGS,
        completed_at=datetime.now(UTC))


def appointment_completed(ep: Episode, number: int) -> AppointmentCompleted:
    """Booking's ``appointment.completed`` for the episode's session ``number`` (days apart,
    in the past; session 1 is the initial assessment)."""
    appointment_id = ep.appointments.setdefault(number, uuid.uuid4())
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30 - 3 * number)
    return AppointmentCompleted(
        appointment_id=appointment_id, patient_id=ep.patient_id, therapist_id=ep.therapist_id,
        location_id=ep.location_id, episode_id=ep.episode_id,
        appointment_type="initial_assessment" if number == 1 else "treatment_session",
        starts_at=starts, at=starts + timedelta(hours=1))


def session_log(plan: dict[str, Any]) -> bytes:
    """Every prescription done as prescribed, pain settled, NPRS 4: no milestone is met, so
    the fourth session stalls (STALL-1), as in CLINICAL.md §5."""
    return json.dumps({
        "what_was_done": "Program reviewed; loading as prescribed",
        "exercises": [{"exercise": p["exercise"], "reps_per_set": [p["reps"]] * p["sets"],
                       "load_kg": p["load_kg"], "rpe": 6, "pain_during": 2}
                      for p in plan["content"]["prescriptions"]],
        "settled_next_morning": True, "quick_measures": {"nprs": 4}}).encode()


async def post(client: httpx.AsyncClient, path: str, body: bytes | None = None,
               attempts: int = 3) -> httpx.Response:
    """POST, sent again when the server closed the kept-alive connection as the request went
    out (uvicorn ends a connection idle for 5 s, and the clients here wait longer than that
    between requests). Both POSTs used here are safe to repeat: activating an active plan
    and logging the same form again change nothing."""
    for attempt in range(attempts):
        try:
            return await client.post(path, content=body)
        except (httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# --- watchers ------------------------------------------------------------------------------


class RowWatch:
    """Waits for rows to appear in one of plan's tables: one connection polls every
    ``POLL_SECONDS`` for the keys someone waits for."""

    def __init__(self, dsn: str, sql: str) -> None:
        self.dsn, self.sql = dsn, sql
        self.waiting: dict[UUID, asyncio.Future[float]] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        self.task = asyncio.create_task(self._run(conn))

    async def _run(self, conn: asyncpg.Connection) -> None:
        try:
            while True:
                if self.waiting:
                    rows = await conn.fetch(self.sql, list(self.waiting))
                    now = time.perf_counter()
                    for row in rows:
                        future = self.waiting.pop(row[0], None)
                        if future is not None and not future.done():
                            future.set_result(now)
                await asyncio.sleep(POLL_SECONDS)
        finally:
            await conn.close()

    async def wait(self, key: UUID, timeout: float = WAIT_SECONDS) -> float:
        future = self.waiting.setdefault(key, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            if not future.done():
                self.waiting.pop(key, None)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class DueWatch:
    """Notes when each episode's ``reassessment.due`` arrives from JetStream."""

    def __init__(self) -> None:
        self.arrived: dict[UUID, float] = {}
        self.futures: dict[UUID, asyncio.Future[float]] = {}

    async def start(self, js: JetStreamContext) -> None:
        async def on_message(msg: Any) -> None:
            now = time.perf_counter()
            episode_id = UUID(json.loads(msg.data)["data"]["episode_id"])
            self.arrived.setdefault(episode_id, now)
            future = self.futures.get(episode_id)
            if future is not None and not future.done():
                future.set_result(self.arrived[episode_id])

        await js.subscribe(nats_subject(TENANT_ID, ReassessmentDue.event_type),
                           cb=on_message, ordered_consumer=True)

    async def wait(self, episode_id: UUID, timeout: float = WAIT_SECONDS) -> float:
        if episode_id in self.arrived:
            return self.arrived[episode_id]
        future = self.futures.setdefault(episode_id,
                                         asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(future), timeout)


SIGNALED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
COMPLETED = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED


@dataclass
class HistoryWatch:
    """An episode's workflow history as it grows (long-polled): how many ``plan_changed``
    signals it has, and up to which of them a completed stall evaluation covers (an
    activity covers every signal recorded before it was scheduled)."""

    signals: int = 0
    evaluated: int = 0  # signals covered by a completed activity
    activities: int = 0
    covers: dict[int, int] = field(default_factory=dict)  # scheduled event id -> signals
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, handle: WorkflowHandle[Any, Any]) -> None:
        async for event in handle.fetch_history_events(wait_new_event=True):
            if event.event_type == SIGNALED:
                if event.workflow_execution_signaled_event_attributes.signal_name \
                        == "plan_changed":
                    self.signals += 1
            elif event.event_type == SCHEDULED:
                self.covers[event.event_id] = self.signals
            elif event.event_type == COMPLETED:
                self.activities += 1
                scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
                self.evaluated = max(self.evaluated, self.covers.get(scheduled, 0))
                self.changed.set()

    async def evaluated_up_to(self, signals: int, timeout: float = WAIT_SECONDS) -> float:
        async def wait() -> float:
            while self.evaluated < signals:
                self.changed.clear()
                await self.changed.wait()
            return time.perf_counter()

        return await asyncio.wait_for(wait(), timeout)


# --- the processes and the set-up ----------------------------------------------------------


def plan_definition() -> ServiceDefinition:
    found = [d for d in discover_services() if d.name == "plan"]
    if not found:
        raise RuntimeError("the plan service is not installed (kinetic.services entry point)")
    return found[0]


@dataclass
class PlanBench:
    """Plan's processes on the benchmark's servers, and this process's connections to them.
    ``stop()`` ends every process and connection it started, never the servers."""

    stack: BenchStack
    platform: Platform | None = None
    token: str = ""
    nc: NatsClient | None = None
    js: JetStreamContext | None = None
    temporal: Client | None = None
    sessions: RowWatch | None = None
    drafts: RowWatch | None = None
    due: DueWatch = field(default_factory=DueWatch)
    result: PlanResult = field(default_factory=PlanResult)
    warmup: list[Episode] = field(default_factory=list)
    timed: list[Episode] = field(default_factory=list)
    load: list[Episode] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        assert self.platform is not None
        return self.platform.base_url("plan")

    @property
    def temporal_address(self) -> str:
        assert self.stack.temporal is not None
        return self.stack.temporal.address

    def start_processes(self) -> None:
        stack = self.stack
        assert stack.postgres is not None and stack.nats is not None
        temporal = stack.start_temporal()
        definition = plan_definition()
        platform = Platform(data_dir=stack.root / "plan", ports=Ports.free([definition]),
                            services=[definition], durable=True,
                            extra_env={"KINETIC_PLAN_DAY_SECONDS": DAY_SECONDS})
        self.platform = platform
        platform.log_dir.mkdir(parents=True, exist_ok=True)
        # Borrowed: stopped by BenchStack.
        platform.postgres, platform.nats, platform.temporal = stack.postgres, stack.nats, temporal
        platform.start_issuer()
        platform.prepare_databases()
        platform.start_services()  # api, relay, consumer, worker; waits for /readyz
        self.token = platform.mint(OPERATOR, ttl_seconds=3 * 3600)

    async def connect(self) -> None:
        assert self.platform is not None
        self.nc = await nats.connect(self.stack.nats_url)
        self.js = self.nc.jetstream()
        for service in ("booking", "assessment", "plan"):
            await ensure_stream(self.js, service_stream(service))
        await self.due.start(self.js)
        self.temporal = await connect_client(self.temporal_address, NAMESPACE)
        dsn = self.platform.maintenance_url("plan")
        self.sessions = RowWatch(dsn, "SELECT appointment_id FROM sessions "
                                      "WHERE appointment_id = ANY($1::uuid[])")
        self.drafts = RowWatch(dsn, "SELECT episode_id FROM plans "
                                    "WHERE episode_id = ANY($1::uuid[])")
        await self.sessions.start()
        await self.drafts.start()

    async def close(self) -> None:
        for watch in (self.sessions, self.drafts):
            if watch is not None:
                await watch.stop()
        if self.nc is not None:
            await self.nc.close()
            self.nc = None

    def stop(self) -> None:
        if self.platform is not None:
            platform, self.platform = self.platform, None
            platform.postgres = platform.nats = platform.temporal = None  # not ours to stop
            platform.stop()

    async def publish(self, source: str, event: Any) -> None:
        assert self.js is not None
        envelope = CloudEvent(id=uuid.uuid4(), source=f"/kinetic/{source}",
                              type=event.event_type, subject=str(event.aggregate_id()),
                              time=datetime.now(UTC), data=event.model_dump(mode="json"),
                              tenantid=TENANT_ID, sequence=1)
        await self.js.publish(nats_subject(TENANT_ID, envelope.type),
                              envelope.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": str(envelope.id)})

    async def complete(self, ep: Episode, number: int) -> UUID:
        """Publish the session's ``appointment.completed``; return once plan lists it."""
        assert self.sessions is not None
        event = appointment_completed(ep, number)
        await self.publish("booking", event)
        await self.sessions.wait(event.appointment_id)
        return event.appointment_id

    async def workflow_stage(self, ep: Episode) -> str | None:
        assert self.temporal is not None
        try:
            status = await self.temporal.get_workflow_handle(ep.workflow_id).query("status")
        except Exception:  # noqa: BLE001 - not started yet, or busy: ask again
            return None
        return str(status.get("stage")) if isinstance(status, dict) else None

    async def prepare(self, episodes: Sequence[Episode], sessions: Iterable[int]) -> None:
        """Evaluated, drafted, activated, the workflow active, and ``sessions`` completed."""
        numbers = list(sessions)
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)
        async with http_client(self.api_url, self.token, SETUP_CONCURRENCY) as client:
            async def one(ep: Episode) -> None:
                assert self.drafts is not None
                async with gate:
                    await self.publish("assessment", evaluation_completed(ep))
                    await self.drafts.wait(ep.episode_id)
                    activated = await post(client, f"/episodes/{ep.episode_id}/plan/activate")
                    if activated.status_code != 200:
                        raise RuntimeError(f"activate: {activated.status_code} "
                                           f"{activated.text[:300]}")
                    ep.log_body = session_log(activated.json())
                    deadline = time.perf_counter() + WAIT_SECONDS
                    while await self.workflow_stage(ep) != "active":
                        if time.perf_counter() > deadline:
                            raise RuntimeError(f"the workflow of {ep.episode_id} is not active")
                        await asyncio.sleep(0.05)
                    for number in numbers:  # after activation: the evaluation then counted 1
                        await self.complete(ep, number)

            await asyncio.gather(*(one(ep) for ep in episodes))

    async def set_up(self, timed: int, warmup: int, load: int) -> None:
        self.warmup = [Episode() for _ in range(warmup)]
        self.timed = [Episode() for _ in range(timed)]
        self.load = [Episode() for _ in range(load)]
        started = time.perf_counter()
        await self.prepare(self.warmup + self.timed, [1])
        await self.prepare(self.load, [1, 2, 3, 4])
        self.result.setup_episodes = warmup + timed + load
        self.result.setup_seconds = time.perf_counter() - started
        assert self.platform is not None
        conn = await asyncpg.connect(self.platform.maintenance_url("plan"))
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
        await self.stack.settle()


# --- the scenarios -------------------------------------------------------------------------


@dataclass
class _Cycle:
    session: int
    latency: float


async def _episode(bench: PlanBench, client: httpx.AsyncClient, ep: Episode,
                   watch: HistoryWatch, cycles: list[_Cycle], errors: Counter[str]
                   ) -> float | None:
    """Sessions 2-4 of one episode, each waiting for its effect; the time of the last."""
    for number in TIMED_SESSIONS:
        try:
            appointment = await bench.complete(ep, number)
            signals = watch.signals + 1  # this log's plan_changed, once the consumer signals
            sent = time.perf_counter()
            response = await post(client, f"/episodes/{ep.episode_id}/sessions/{appointment}/log",
                                  ep.log_body)
            if response.status_code != 200:
                errors[f"log {response.status_code}"] += 1
                return None
            if number == STALL_SESSION:
                seen = await bench.due.wait(ep.episode_id)
            else:
                seen = await watch.evaluated_up_to(signals)
        except TimeoutError:
            errors[f"session {number}: no effect in {WAIT_SECONDS:.0f} s"] += 1
            return None
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
            return None
        cycles.append(_Cycle(number, seen - sent))
    return seen


async def _run_episodes(bench: PlanBench, episodes: Sequence[Episode]) -> EpisodesResult:
    assert bench.temporal is not None
    watches = [HistoryWatch() for _ in episodes]
    followers = [asyncio.create_task(w.follow(bench.temporal.get_workflow_handle(ep.workflow_id)))
                 for w, ep in zip(watches, episodes, strict=True)]
    try:
        # Every watcher has read the history so far (activation's signal and evaluation).
        deadline = time.perf_counter() + WAIT_SECONDS
        while any(w.evaluated < 1 for w in watches):
            if time.perf_counter() > deadline:
                raise RuntimeError("the workflows' histories could not be read")
            await asyncio.sleep(0.05)
        before = sum(w.activities for w in watches)
        cycles: list[_Cycle] = []
        errors: Counter[str] = Counter()
        async with http_clients(bench.api_url, bench.token, len(episodes)) as pool:
            start = time.perf_counter()
            ends = await asyncio.gather(*(
                _episode(bench, pool[i], ep, watches[i], cycles, errors)
                for i, ep in enumerate(episodes)))
        finished = [e for e in ends if e is not None]
        seconds = (max(finished) if finished else time.perf_counter()) - start
        activities = sum(w.activities for w in watches) - before
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
    n = len(episodes)
    expected_cycles = n * len(TIMED_SESSIONS)
    return EpisodesResult(
        concurrency=n,
        episodes=Timed(len(finished), n, seconds, [e - start for e in finished], errors),
        cycles=Timed(len(cycles), expected_cycles, seconds, [c.latency for c in cycles]),
        evaluations=Timed(sum(c.session != STALL_SESSION for c in cycles),
                          n * (len(TIMED_SESSIONS) - 1), seconds,
                          [c.latency for c in cycles if c.session != STALL_SESSION]),
        stalls=Timed(sum(c.session == STALL_SESSION for c in cycles), n, seconds,
                     [c.latency for c in cycles if c.session == STALL_SESSION]),
        activities=activities)


async def measure_episodes(bench: PlanBench) -> EpisodesResult:
    """The warm-up episodes through the same path first (not counted), then the timed ones,
    all at once."""
    if bench.warmup:
        await _run_episodes(bench, bench.warmup)
    await bench.stack.settle()
    result = await _run_episodes(bench, bench.timed)
    bench.result.kinetic = result
    return result


async def measure_bare(bench: PlanBench, clients: int, seconds: float,
                       warmup: int = 1) -> Timed:
    """``clients`` loops of start -> signal -> result of ``BareWorkflow`` for ``seconds``
    (a workflow started in time is counted), after ``warmup`` workflows per client."""
    client = await Client.connect(bench.temporal_address, namespace=NAMESPACE)
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_all_modules())
    run = Timed()

    async def one() -> None:
        handle = await client.start_workflow(BareWorkflow.run, id=f"bench-bare-{uuid.uuid4()}",
                                             task_queue=BARE_TASK_QUEUE)
        await handle.signal(BareWorkflow.go)
        await handle.result()

    async with Worker(client, task_queue=BARE_TASK_QUEUE, workflows=[BareWorkflow],
                      activities=[bare_step], workflow_runner=runner):
        await asyncio.gather(*(one() for _ in range(clients * warmup)))
        await bench.stack.settle()
        start = time.perf_counter()
        deadline = start + seconds

        async def loop() -> None:
            while (sent := time.perf_counter()) < deadline:
                try:
                    await asyncio.wait_for(one(), WAIT_SECONDS)
                except Exception as exc:  # noqa: BLE001 - an error to count, not to stop on
                    run.errors[type(exc).__name__] += 1
                    continue
                run.done += 1
                run.latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(loop() for _ in range(clients)))
        run.seconds = time.perf_counter() - start
    run.expected = run.done + sum(run.errors.values())
    bench.result.bare_runs.append(run)
    return run


async def measure_load(bench: PlanBench, seconds: float) -> LoadResult:
    """Session 4 of each prepared load episode logged at an even rate over ``seconds``,
    open loop; each log's effect is its episode's ``reassessment.due``."""
    episodes = bench.load
    rate = len(episodes) / seconds
    answered, effects = Timed(expected=len(episodes)), Timed(expected=len(episodes))
    lags: list[float] = []
    sent_at: list[float] = []
    last_effect = 0.0
    await bench.stack.settle()
    async with http_client(bench.api_url, bench.token, LOAD_CONNECTIONS) as client:
        start = time.perf_counter() + 0.2

        async def log(i: int, ep: Episode) -> None:
            nonlocal last_effect
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            sent = time.perf_counter()
            sent_at.append(sent)
            appointment = ep.appointments[STALL_SESSION]
            try:
                response = await post(
                    client, f"/episodes/{ep.episode_id}/sessions/{appointment}/log",
                    ep.log_body)
            except httpx.HTTPError as exc:
                answered.errors[type(exc).__name__] += 1
                return
            if response.status_code != 200:
                answered.errors[f"log {response.status_code}"] += 1
                return
            answered.done += 1
            answered.latencies.append(time.perf_counter() - sent)
            try:
                seen = await bench.due.wait(ep.episode_id)
            except TimeoutError:
                effects.errors[f"no effect in {WAIT_SECONDS:.0f} s"] += 1
                return
            effects.done += 1
            effects.latencies.append(seen - sent)
            lags.append(seen - scheduled)
            last_effect = max(last_effect, seen)

        sends = [asyncio.create_task(log(i, ep)) for i, ep in enumerate(episodes)]
        await asyncio.gather(*sends)
    last_scheduled = start + (len(episodes) - 1) / rate
    span = max(last_effect, last_scheduled) - start
    answered.seconds = effects.seconds = span
    sending = max(sent_at) - min(sent_at) if len(sent_at) > 1 else 0.0
    result = LoadResult(
        logs=len(episodes), requested_rate=rate,
        sent_rate=(len(sent_at) - 1) / sending if sending > 0 else 0.0,
        answered=answered, effects=effects, max_lag=max(lags, default=float("nan")),
        tail=last_effect - last_scheduled if last_effect else float("nan"))
    bench.result.load = result
    return result
