"""Commit-to-consumer-effect latency at a steady event rate, Kinetic beside raw NATS.

Kinetic path, three processes as in a deployment:
- a writer appends one event per transaction through ``EventStore.append`` at a paced rate
  (each event opens a new episode stream);
- an ``OutboxRelay`` runs its continuous loop (``run``), publishing to JetStream;
- a consumer runs the platform's wiring, ``build_consumer_app`` (FastStream, a durable
  JetStream pull consumer), which applies each event through ``InboxConsumer``: the inbox
  row and a row in a small effect table, in one transaction of a second database.
Latency = effect commit time - append commit time. Both are PostgreSQL's own commit
timestamps (``track_commit_timestamp``, one server, this machine's clock), read after the
run: a time noted by a busy Python process after ``COMMIT`` returns can lag by tens of
milliseconds. The latency is also split at the time JetStream stored each message (read
back from the stream): commit -> stored is the relay's share, stored -> effect the consumer's.

Baselines, without any database: a raw nats-py publisher at the same rate, which puts
``time.time()`` into each payload just before publishing, and a raw subscriber that notes
when the message arrives. Once through JetStream (``publish_async`` into the same stream,
a durable pull consumer fetching in batches of the size the platform uses, explicit ack),
and once through core NATS (publish, plain subscription: the floor).

Measurement starts warm: warm-up events go through the whole path first (the paced sending
starts once the consumer has applied them), and the first second of paced sending is a
ramp; neither is counted. The child processes log to the benchmark's temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import multiprocessing.synchronize
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import Column, MetaData, Table, func, select
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.naming import stream_name_for_service
from kinetic_infra.broker.faststream_app import build_consumer_app
from kinetic_infra.db.database import Database
from kinetic_infra.event_store.model import NO_STREAM, StreamName
from kinetic_infra.event_store.store import EventStore
from kinetic_infra.inbox.consumer import Subscription
from kinetic_infra.outbox.relay import OutboxRelay, RelaySettings
from tests.bench.stack import SERVICE, BenchStack
from tests.bench.workload import CONTEXT, EVENT_TYPE, SUBJECT, episode_opened

Flag = multiprocessing.synchronize.Event

WARMUP_EVENTS = 50
RAMP_SECONDS = 1.0  # paced, but not counted: the relay leaves its idle back-off
DRAIN_SECONDS = 30.0  # after the last send, how long the receiving side may take to catch up
CONSUMER_NAME = "bench-effects"
FETCH_BATCH, FETCH_TIMEOUT = 64, 1.0  # the platform's PullSub(batch_size, timeout)
CORE_SUBJECT = "bench.latency.core"  # outside every stream: core NATS only
_SPAWN = multiprocessing.get_context("spawn")
ChildMain = Callable[..., Coroutine[Any, Any, None]]

effect = Table(
    "bench_effect", MetaData(),
    Column("event_id", PG_UUID(as_uuid=True), primary_key=True),
    Column("episode_id", PG_UUID(as_uuid=True), nullable=False),
)


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles of one path's latencies, with how many arrived and the rate sent."""

    received: int
    expected: int
    rate: float  # events per second the writer or publisher achieved
    p50: float  # seconds
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, latencies: list[float], expected: int, rate: float) -> LatencyStats:
        ordered = sorted(latencies)

        def rank(q: float) -> float:  # nearest-rank percentile
            if not ordered:
                return float("nan")
            return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

        return cls(len(ordered), expected, rate, rank(0.50), rank(0.95), rank(0.99),
                   ordered[-1] if ordered else float("nan"))


async def _wait_for(flag: Flag, timeout: float) -> None:
    if not await asyncio.to_thread(flag.wait, timeout):
        raise TimeoutError("a benchmark process did not get ready in time")


def ramp_events(rate: float) -> int:
    return int(rate * RAMP_SECONDS)


async def _pace(rate: float, count: int, send: Callable[[int], Awaitable[None]]) -> float:
    """Start ``send(i)`` for i in 0..count-1 at ``rate`` per second, each without waiting for
    the ones before it; wait for all; return the rate achieved."""
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)
    return count / (time.perf_counter() - start)


# --- Kinetic path: writer, relay and consumer processes ------------------------------------


async def writer_main(url: str, rate: float, count: int, out: Path, ready: Flag,
                      go: Flag) -> None:
    db = Database(url)
    store = EventStore(SERVICE)
    measured_ids: list[str] = []
    ramp = ramp_events(rate)

    async def append_one(index: int) -> None:
        episode_id = uuid4()
        async with db.transaction() as conn:
            recorded = await store.append(conn, StreamName("episode", episode_id),
                                          [episode_opened(episode_id)], expected=NO_STREAM,
                                          context=CONTEXT)
        if index >= ramp:
            measured_ids.append(str(recorded[0].event_id))

    try:
        for _ in range(WARMUP_EVENTS):
            await append_one(-1)
        ready.set()
        await _wait_for(go, 120)
        achieved = await _pace(rate, ramp + count, append_one)
    finally:
        await db.dispose()
    out.write_text(json.dumps({"rate": achieved, "measured": measured_ids}))


async def relay_main(url: str, nats_url: str, ready: Flag, stop: Flag) -> None:
    relay = OutboxRelay(RelaySettings(service=SERVICE, database_url=url, nats_url=nats_url))
    stopping = asyncio.Event()

    async def watch() -> None:
        await asyncio.to_thread(stop.wait)
        stopping.set()

    watcher = asyncio.create_task(watch())
    ready.set()
    try:
        await relay.run(stopping)
    finally:
        stop.set()  # also ends the watcher's wait
        await watcher


async def consumer_main(url: str, nats_url: str, expected: int, warm: Flag,
                        stop: Flag) -> None:
    """Runs until ``expected`` effects are in; ``warm`` once the warm-up events' are."""
    db = Database(url)
    subscription = Subscription(CONSUMER_NAME, SERVICE)

    @subscription.on(EVENT_TYPE)
    async def apply(conn: AsyncConnection, event: CloudEvent) -> None:
        await conn.execute(effect.insert().values(event_id=event.id,
                                                  episode_id=UUID(event.data["episode_id"])))

    app, _broker = build_consumer_app(nats_url, db, [subscription])
    await app.start()
    try:
        while not stop.is_set():
            async with db.read() as conn:
                applied = await conn.scalar(select(func.count()).select_from(effect)) or 0
            if applied >= WARMUP_EVENTS:
                warm.set()
            if applied >= expected:
                break
            await asyncio.sleep(0.05)
    finally:
        await app.stop()
        await db.dispose()


# --- Raw baselines: publisher and subscriber processes -------------------------------------


def raw_payload(measured: bool) -> bytes:
    """About the size of a Kinetic envelope, stamped with the send time."""
    return json.dumps({"sent": time.time(), "measured": measured, "id": str(uuid4()),
                       "pad": "x" * 520}).encode()


async def publisher_main(nats_url: str, jetstream: bool, rate: float, count: int, out: Path,
                         ready: Flag, go: Flag) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream(publish_async_max_pending=4000)
    acks: list[asyncio.Future[Any]] = []
    ramp = ramp_events(rate)

    async def send(index: int) -> None:
        payload = raw_payload(measured=index >= ramp)
        if jetstream:
            acks.append(await js.publish_async(SUBJECT, payload,
                                               headers={"Nats-Msg-Id": str(uuid4())}))
        else:
            await nc.publish(CORE_SUBJECT, payload)

    try:
        for _ in range(WARMUP_EVENTS):
            await send(-1)
        await asyncio.gather(*acks)
        ready.set()
        await _wait_for(go, 120)
        achieved = await _pace(rate, ramp + count, send)
        await asyncio.wait_for(asyncio.gather(*acks), 30)
    finally:
        await nc.drain()
    out.write_text(json.dumps({"rate": achieved}))


async def subscriber_main(nats_url: str, jetstream: bool, expected: int, out: Path,
                          ready: Flag, stop: Flag) -> None:
    latencies: list[float] = []
    seen = 0

    def note(data: bytes) -> None:
        nonlocal seen
        arrived = time.time()
        body = json.loads(data)
        seen += 1
        if body["measured"]:
            latencies.append(arrived - body["sent"])

    nc = await nats.connect(nats_url)
    try:
        if jetstream:
            psub = await nc.jetstream().pull_subscribe(
                SUBJECT, durable=CONSUMER_NAME, stream=stream_name_for_service(SERVICE),
                config=ConsumerConfig(durable_name=CONSUMER_NAME,
                                      ack_policy=AckPolicy.EXPLICIT,
                                      deliver_policy=DeliverPolicy.ALL, ack_wait=60.0,
                                      max_deliver=-1, max_ack_pending=1000))
            ready.set()
            while seen < expected and not stop.is_set():
                try:
                    messages = await psub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT)
                except TimeoutError:
                    continue
                for msg in messages:
                    note(msg.data)
                    await msg.ack()
            await psub.unsubscribe()
        else:
            core = await nc.subscribe(CORE_SUBJECT)
            await nc.flush()
            ready.set()
            while seen < expected and not stop.is_set():
                try:
                    msg = await core.next_msg(timeout=0.5)
                except TimeoutError:
                    continue
                note(msg.data)
        await nc.flush()
    finally:
        await nc.close()
    out.write_text(json.dumps({"latencies": latencies}))


# --- Orchestration -------------------------------------------------------------------------


def child(log: Path, main: ChildMain, *args: Any) -> None:
    """A child process's entry point: its output goes to ``log``, then it runs ``main``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    asyncio.run(main(*args))


@contextmanager
def processes(stop: Flag) -> Iterator[list[SpawnProcess]]:
    """Processes appended to the yielded list are stopped on the way out, whatever happens:
    asked first (``stop``), then terminated, then killed."""
    started: list[SpawnProcess] = []
    try:
        yield started
    finally:
        stop.set()
        for proc in started:
            proc.join(10)
        for proc in started:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def _start(started: list[SpawnProcess], log: Path, main: ChildMain, *args: Any
           ) -> SpawnProcess:
    proc = _SPAWN.Process(target=child, args=(log, main, *args), daemon=True)
    proc.start()
    started.append(proc)
    return proc


async def _join(proc: SpawnProcess, timeout: float, what: str, log: Path,
                stop: Flag | None = None) -> None:
    """Wait for ``proc``; past ``timeout``, ask it to stop (it then reports what it has)."""
    await asyncio.to_thread(proc.join, timeout)
    if proc.is_alive() and stop is not None:
        stop.set()
        await asyncio.to_thread(proc.join, 15)
    if proc.is_alive() or proc.exitcode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{what} did not finish cleanly (exit code {proc.exitcode}):\n{tail}")


@dataclass(frozen=True)
class KineticLatency:
    total: LatencyStats  # append commit -> effect commit
    to_stream: LatencyStats  # append commit -> stored in JetStream (the relay's share)
    to_effect: LatencyStats  # stored in JetStream -> effect commit (the consumer's share)


async def commit_times(url: str, table: str) -> dict[str, float]:
    """PostgreSQL's commit timestamp of each row of ``table``, by event id."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            f"SELECT event_id::text AS id, "
            f"extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 AS at FROM {table}")
    finally:
        await conn.close()
    return {r["id"]: r["at"] for r in rows}


async def stored_times(stack: BenchStack) -> dict[str, float]:
    """When JetStream stored each message (its own clock, the same machine's), by event id."""
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        stream = stream_name_for_service(SERVICE)
        last = (await js.stream_info(stream)).state.last_seq
        stored: dict[str, float] = {}
        for first in range(1, last + 1, 200):
            batch = await asyncio.gather(*(js.get_msg(stream, seq)
                                           for seq in range(first, min(first + 200, last + 1))))
            for msg in batch:
                event_id = (msg.headers or {}).get("Nats-Msg-Id")
                if event_id and msg.time is not None:
                    stored[event_id] = msg.time.timestamp()
        return stored
    finally:
        await nc.close()


async def measure_kinetic_latency(stack: BenchStack, rate: float, seconds: float,
                                  replicas: int = 1) -> KineticLatency:
    """With ``replicas`` > 1, that many relays (one holds the lease and publishes, the others
    wait to take over) and consumers (sharing the one durable consumer's messages)."""
    await stack.reset_tables()
    await stack.reset_stream()
    count = int(rate * seconds)
    work = stack.root / f"latency-kinetic-{replicas}"
    work.mkdir(exist_ok=True)
    stop = _SPAWN.Event()
    with processes(stop) as started:
        # each consumer warm, each relay up, the writer warm
        ready = [_SPAWN.Event() for _ in range(2 * replicas + 1)]
        go = _SPAWN.Event()
        consumers = [_start(started, work / f"consumer-{i}.log", consumer_main,
                            stack.consumer_url, stack.nats_url,
                            WARMUP_EVENTS + ramp_events(rate) + count, ready[i], stop)
                     for i in range(replicas)]
        relays = [_start(started, work / f"relay-{i}.log", relay_main, stack.producer_url,
                         stack.nats_url, ready[replicas + i], stop) for i in range(replicas)]
        writer = _start(started, work / "writer.log", writer_main, stack.producer_url, rate,
                        count, work / "writer.json", ready[-1], go)
        for flag in ready:
            await _wait_for(flag, 120)
        go.set()
        await _join(writer, RAMP_SECONDS + seconds + 60, "the writer", work / "writer.log")
        for i, consumer in enumerate(consumers):
            await _join(consumer, DRAIN_SECONDS, "a consumer", work / f"consumer-{i}.log",
                        stop)
        stop.set()
        for i, relay in enumerate(relays):
            await _join(relay, 30, "a relay", work / f"relay-{i}.log")
    written = json.loads((work / "writer.json").read_text())
    measured: list[str] = written["measured"]
    achieved: float = written["rate"]
    committed = await commit_times(stack.producer_url, "events")
    applied = await commit_times(stack.consumer_url, "bench_effect")
    stored = await stored_times(stack)

    def stats(start: dict[str, float], end: dict[str, float]) -> LatencyStats:
        return LatencyStats.of([end[i] - start[i] for i in measured if i in start and i in end],
                               count, achieved)

    return KineticLatency(stats(committed, applied), stats(committed, stored),
                          stats(stored, applied))


async def measure_raw_latency(stack: BenchStack, rate: float, seconds: float, *,
                              jetstream: bool) -> LatencyStats:
    await stack.reset_stream()
    count = int(rate * seconds)
    work = stack.root / f"latency-raw-{'jetstream' if jetstream else 'core'}"
    work.mkdir(exist_ok=True)
    stop = _SPAWN.Event()
    with processes(stop) as started:
        ready = [_SPAWN.Event() for _ in range(2)]
        go = _SPAWN.Event()
        subscriber = _start(started, work / "subscriber.log", subscriber_main, stack.nats_url,
                            jetstream, WARMUP_EVENTS + ramp_events(rate) + count,
                            work / "subscriber.json", ready[0], stop)
        await _wait_for(ready[0], 120)  # core NATS keeps nothing for a late subscriber
        publisher = _start(started, work / "publisher.log", publisher_main, stack.nats_url,
                           jetstream, rate, count, work / "publisher.json", ready[1], go)
        await _wait_for(ready[1], 120)
        go.set()
        await _join(publisher, RAMP_SECONDS + seconds + 60, "the publisher",
                    work / "publisher.log")
        await _join(subscriber, DRAIN_SECONDS, "the subscriber", work / "subscriber.log", stop)
    latencies: list[float] = json.loads((work / "subscriber.json").read_text())["latencies"]
    achieved = json.loads((work / "publisher.json").read_text())["rate"]
    return LatencyStats.of(latencies, count, achieved)
