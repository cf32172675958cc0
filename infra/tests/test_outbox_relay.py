"""The outbox relay on real PostgreSQL and JetStream: nothing skipped, nothing reordered
within a stream, no stall behind a rolled-back transaction, at-least-once across kill -9, and
publishing goes on after NATS fails for a while or PostgreSQL drops the relay's connections."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections import defaultdict

import asyncpg
import nats
import pytest
from relay_support import (
    append_items,
    append_round_robin,
    assert_in_stream_order,
    eventually,
    item_event_class,
    read_stream,
    unique_service_name,
)

from kinetic_contracts import stream_name_for_service
from kinetic_infra.db.database import Database
from kinetic_infra.event_store.model import EventContext, Exactly, NewEvent, StreamName
from kinetic_infra.event_store.store import EventStore
from kinetic_infra.outbox.relay import OutboxRelay, RelaySettings


@pytest.fixture
async def db(scratch_dsn: str):
    database = Database(scratch_dsn, pool_size=20, max_overflow=10)
    yield database
    await database.dispose()


async def run_relay_until(relay: OutboxRelay, stop: asyncio.Event) -> asyncio.Task:
    await relay.connect()
    return asyncio.create_task(_loop(relay, stop))


async def _loop(relay: OutboxRelay, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if not await relay.relay_once():
            await asyncio.sleep(0.005)


async def test_relay_delivers_every_event_in_stream_order_under_16_concurrent_writers(
        db, scratch_dsn, nats_url):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    writers, per_writer, streams_per_writer = 16, 625, 5  # 10,000 events
    items = [[uuid.uuid4() for _ in range(streams_per_writer)] for _ in range(writers)]
    rng = random.Random(7)

    async def writer(w: int) -> None:
        versions = defaultdict(int)
        for i in range(per_writer):
            item = items[w][i % streams_per_writer]
            async with db.transaction() as conn:
                await store.append(conn, StreamName("item", item),
                                   [NewEvent.of(Item(item_id=item, n=i))],
                                   expected=Exactly(versions[item]),
                                   context=EventContext(tenant_id=tenant))
                # A pause between insert and commit lets later positions commit first.
                if rng.random() < 0.2:
                    await asyncio.sleep(rng.random() * 0.01)
            versions[item] += 1

    stop = asyncio.Event()
    relay = OutboxRelay(RelaySettings(service, scratch_dsn, nats_url, batch_size=200))
    task = await run_relay_until(relay, stop)
    try:
        await asyncio.gather(*(writer(w) for w in range(writers)))
        messages = await read_stream(nats_url, stream_name_for_service(service), 10_000, timeout=120)
    finally:
        stop.set()
        await task
        await relay.close()
    assert len(messages) == 10_000
    assert len({m.headers["Nats-Msg-Id"] for m in messages}) == 10_000
    assert_in_stream_order(messages, {str(i): per_writer // streams_per_writer
                                      for row in items for i in row})


async def test_relay_waits_for_an_open_transaction_then_publishes_in_order(db, scratch_dsn,
                                                                           nats_url):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    early, late = uuid.uuid4(), uuid.uuid4()
    relay = OutboxRelay(RelaySettings(service, scratch_dsn, nats_url))
    await relay.connect()
    try:
        async with db.transaction() as open_tx:
            await store.append(open_tx, StreamName("item", early),
                               [NewEvent.of(Item(item_id=early, n=1))], expected=Exactly(0),
                               context=EventContext(tenant_id=tenant))
            async with db.transaction() as conn:
                await store.append(conn, StreamName("item", late),
                                   [NewEvent.of(Item(item_id=late, n=2))], expected=Exactly(0),
                                   context=EventContext(tenant_id=tenant))
            # `late` is committed, but `early` (lower position) is still open: hold both.
            assert await relay.relay_once() == 0
            assert await relay.has_pending()
        assert await relay.relay_once() == 2
    finally:
        await relay.close()
    messages = await read_stream(nats_url, stream_name_for_service(service), 2)
    assert [json.loads(m.data)["data"]["n"] for m in messages] == [1, 2]


async def test_relay_moves_on_after_a_rolled_back_transaction(db, scratch_dsn, nats_url):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    relay = OutboxRelay(RelaySettings(service, scratch_dsn, nats_url))
    await relay.connect()
    try:
        conn = await asyncpg.connect(scratch_dsn)
        tx = conn.transaction()
        await tx.start()
        await conn.execute("INSERT INTO outbox (event_id, stream_name, subject, payload) "
                           "VALUES ($1, 'item-x', 'kinetic.x.y.z.w', '\\x00')", uuid.uuid4())
        item = uuid.uuid4()
        async with db.transaction() as c:
            await store.append(c, StreamName("item", item), [NewEvent.of(Item(item_id=item, n=1))],
                               expected=Exactly(0), context=EventContext(tenant_id=tenant))
        assert await relay.relay_once() == 0  # held behind the open transaction
        await tx.rollback()
        await conn.close()
        assert await relay.relay_once() == 1
        assert not await relay.has_pending()
    finally:
        await relay.close()


async def test_kill_9_of_the_relay_process_loses_and_duplicates_no_effect(scratch_dsn, nats_url,
                                                                         stack):
    """Writers append while the relay process is SIGKILLed again and again; a consumer
    applies each event's effect through the inbox. Every event's effect lands exactly once."""
    from kinetic_infra.inbox.consumer import InboxConsumer, Outcome, Subscription

    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    db = Database(scratch_dsn, pool_size=10)
    async with db.transaction() as conn:
        from sqlalchemy import text

        await conn.execute(text("CREATE TABLE effects (item_id uuid, n int)"))

    subscription = Subscription(name=f"{service}-effects", source_service=service)

    @subscription.on(Item.event_type)
    async def apply(conn, event):
        from sqlalchemy import text

        await conn.execute(text("INSERT INTO effects VALUES (:i, :n)"),
                           {"i": event.data["item_id"], "n": event.data["n"]})

    consumer = InboxConsumer(db, subscription)
    env = {**os.environ, "KINETIC_SERVICE": service, "KINETIC_DATABASE_URL": scratch_dsn,
           "KINETIC_NATS_URL": nats_url, "KINETIC_RELAY_BATCH_SIZE": "50"}

    def start_relay() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "kinetic_infra.service", "relay"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    total, store = 3000, EventStore(service)
    items = [uuid.uuid4() for _ in range(100)]  # 30 events per stream

    async def pace(n: int) -> None:
        if n % 100 == 0:
            await asyncio.sleep(0.01)

    async def write() -> None:
        await append_round_robin(db, store, Item, items, total, tenant, pace)

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    from kinetic_infra.broker.streams import ensure_stream, service_stream

    await ensure_stream(js, service_stream(service))
    pull = await js.pull_subscribe(f"kinetic.*.{service}.>", durable=subscription.name,
                                   stream=stream_name_for_service(service))
    outcomes: dict[Outcome, int] = defaultdict(int)

    async def consume(until: asyncio.Event) -> None:
        while not until.is_set():
            try:
                batch = await pull.fetch(100, timeout=0.5)
            except TimeoutError:  # nats raises its own subclass or asyncio.TimeoutError
                continue
            for msg in batch:
                outcome = await consumer.handle(message_id=msg.headers["Nats-Msg-Id"],
                                                subject=msg.subject, payload=msg.data,
                                                attempt=msg.metadata.num_delivered)
                outcomes[outcome] += 1
                await msg.ack()

    kills = 0
    relay = start_relay()
    done = asyncio.Event()
    consumer_task = asyncio.create_task(consume(done))
    writer_task = asyncio.create_task(write())
    try:
        while not writer_task.done():
            await asyncio.sleep(0.4)
            relay.send_signal(signal.SIGKILL)
            relay.wait()
            kills += 1
            relay = start_relay()
        await writer_task
        # Let the last relay drain the outbox, then the consumer catch up.
        for _ in range(600):
            pending = await asyncpg.connect(scratch_dsn)
            left = await pending.fetchval("SELECT count(*) FROM outbox")
            effects = await pending.fetchval("SELECT count(*) FROM effects")
            await pending.close()
            if left == 0 and effects == total:
                break
            await asyncio.sleep(0.1)
    finally:
        relay.send_signal(signal.SIGKILL)
        relay.wait()
        done.set()
        await consumer_task
        await nc.close()
    check = await asyncpg.connect(scratch_dsn)
    rows = await check.fetch("SELECT n, count(*) AS c FROM effects GROUP BY n")
    await check.close()
    await db.dispose()
    assert kills >= 3
    assert len(rows) == total, f"{total - len(rows)} events never took effect"
    assert all(r["c"] == 1 for r in rows), "an effect was applied twice"
    assert outcomes[Outcome.APPLIED] == total
    # Restarts re-published in the same order: each stream's events are in version order.
    messages = await read_stream(nats_url, stream_name_for_service(service), total)
    assert_in_stream_order(messages, {str(i): total // len(items) for i in items})


class FlakyNatsRelay(OutboxRelay):
    """A relay whose next ``failures`` event publishes fail where nats-py's ``publish_async``
    calls ``nc.publish``: raising ``OutboundBufferLimitError`` (what the client does while it
    reconnects with a full buffer) or, with ``hang``, never returning. ``attempts`` holds
    the loop time of each failure."""

    def __init__(self, settings: RelaySettings, failures: int, hang: bool = False) -> None:
        super().__init__(settings)
        self.failures, self.hang = failures, hang
        self.attempts: list[float] = []

    async def connect(self) -> None:
        await super().connect()
        assert self._nc is not None
        publish = self._nc.publish

        async def flaky_publish(subject, payload=b"", reply="", headers=None):
            if headers and "Nats-Msg-Id" in headers and self.failures > 0:
                self.failures -= 1
                self.attempts.append(asyncio.get_running_loop().time())
                if self.hang:
                    await asyncio.Event().wait()
                raise nats.errors.OutboundBufferLimitError
            await publish(subject, payload, reply=reply, headers=headers)

        self._nc.publish = flaky_publish  # type: ignore[method-assign]


async def _run_until_published(relay: OutboxRelay, count: int, timeout: float = 20.0) -> None:
    """Run ``relay`` until it has published ``count`` events; fail if it stops or stalls."""
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await eventually(lambda: relay.published >= count or task.done(), timeout,
                         f"publishing {count} events")
        assert not task.done(), "the relay stopped"
        assert relay.published == count
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_repeated_publish_failures_do_not_use_up_publish_async_and_the_relay_recovers(
        db, scratch_dsn, nats_url):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    items, versions = [uuid.uuid4() for _ in range(3)], defaultdict(int)
    await append_items(db, store, Item, items, versions, 12, tenant)
    # batch_size=2 gives publish_async 4 slots; each failed nc.publish keeps one for good.
    relay = FlakyNatsRelay(RelaySettings(service, scratch_dsn, nats_url, batch_size=2,
                                         retry_backoff_min=0.01, retry_backoff_max=0.02),
                           failures=20)
    await _run_until_published(relay, 12)
    assert relay.failures == 0
    messages = await read_stream(nats_url, stream_name_for_service(service), 12)
    assert_in_stream_order(messages, {str(i): 4 for i in items})


async def test_a_jetstream_context_replaced_after_a_failure_leaves_no_subscription_behind(
        db, scratch_dsn, nats_url):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    await append_items(db, store, Item, [uuid.uuid4()], defaultdict(int), 1, tenant)
    relay = FlakyNatsRelay(RelaySettings(service, scratch_dsn, nats_url,
                                         retry_backoff_min=0.01, retry_backoff_max=0.01),
                           failures=10)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await eventually(lambda: relay.published == 1 or task.done(), 10, "the event")
        assert relay._nc is not None
        # The current context's ack inbox and the client's request inbox, nothing more.
        assert len(relay._nc._subs) <= 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_a_publish_that_never_returns_is_given_up_at_the_publish_timeout_and_retried(
        db, scratch_dsn, nats_url):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    items, versions = [uuid.uuid4() for _ in range(2)], defaultdict(int)
    await append_items(db, store, Item, items, versions, 4, tenant)
    relay = FlakyNatsRelay(RelaySettings(service, scratch_dsn, nats_url, publish_timeout=0.3,
                                         retry_backoff_min=0.01), failures=3, hang=True)
    await _run_until_published(relay, 4, timeout=10)
    assert relay.failures == 0
    messages = await read_stream(nats_url, stream_name_for_service(service), 4)
    assert_in_stream_order(messages, {str(i): 2 for i in items})


async def test_publish_retries_back_off_exponentially_to_a_cap_and_start_over_after_a_batch(
        db, scratch_dsn, nats_url):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    items, versions = [uuid.uuid4()], defaultdict(int)
    await append_items(db, store, Item, items, versions, 1, tenant)
    relay = FlakyNatsRelay(RelaySettings(service, scratch_dsn, nats_url,
                                         retry_backoff_min=0.05, retry_backoff_max=0.4),
                           failures=6)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await eventually(lambda: relay.published == 1 or task.done(), 10, "the first event")
        gaps = [b - a for a, b in zip(relay.attempts, relay.attempts[1:])]
        for gap, delay in zip(gaps, [0.05, 0.1, 0.2, 0.4, 0.4], strict=True):
            assert delay * 0.8 <= gap < delay + 0.25, (gaps, delay)
        relay.failures = 2
        await append_items(db, store, Item, items, versions, 1, tenant)
        await eventually(lambda: relay.published == 2 or task.done(), 10, "the second event")
        assert relay.attempts[-1] - relay.attempts[-2] < 0.3  # the first delay again, not 0.4
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


@pytest.mark.parametrize("dropped", ["working", "working and lock"])
async def test_the_relay_goes_on_publishing_after_postgresql_drops_its_connections(
        db, scratch_dsn, nats_url, dropped):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    items, versions = [uuid.uuid4() for _ in range(3)], defaultdict(int)
    relay = OutboxRelay(RelaySettings(service, scratch_dsn, nats_url, retry_backoff_min=0.05,
                                      leader_check_interval=0.1))
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    admin = await asyncpg.connect(scratch_dsn)
    try:
        await append_items(db, store, Item, items, versions, 6, tenant)
        await eventually(lambda: relay.published == 6 or task.done(), 10, "the first events")
        assert relay._conn is not None and relay._lock_conn is not None
        pids = [relay._conn.get_server_pid()]
        if dropped == "working and lock":  # what a PostgreSQL restart does
            pids.append(relay._lock_conn.get_server_pid())
        for pid in pids:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await append_items(db, store, Item, items, versions, 6, tenant)
        await eventually(lambda: relay.published == 12 or task.done(), 10, "the later events")
        assert not task.done(), "the relay stopped"
        assert relay._conn.get_server_pid() not in pids
        # With the lock connection gone it steps down (up to leader_check_interval later,
        # maybe after publishing) and, alone, leads again.
        await eventually(lambda: relay.is_leader and relay._lock_conn is not None
                         and relay._lock_conn.get_server_pid() not in pids, 5, "leading again")
    finally:
        await admin.close()
        stop.set()
        await asyncio.wait_for(task, 15)
    messages = await read_stream(nats_url, stream_name_for_service(service), 12)
    assert_in_stream_order(messages, {str(i): 4 for i in items})
