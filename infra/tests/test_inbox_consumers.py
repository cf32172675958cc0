"""Consumers on real JetStream and PostgreSQL: exactly-once effects through the inbox,
dead letters after bounded retries (outages not counted), replay from the admin page
applying once, and pull loops that outlive their failures."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import nats
import pytest
from relay_support import item_event_class, unique_service_name
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from temporalio.service import RPCError, RPCStatusCode

from kinetic_contracts import CloudEvent, nats_subject, stream_name_for_service
from kinetic_infra.broker.faststream_app import PullLoop, build_consumer_app, declare_streams
from kinetic_infra.broker.streams import DEAD_LETTER_STREAM, dead_letter_subject, ensure_stream
from kinetic_infra.db.database import Database
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.inbox.consumer import Delivery, InboxConsumer, Outcome, Subscription
from kinetic_infra.infrastructure_errors import is_transient_infrastructure_error
from kinetic_infra.service.definition import ServiceDefinition, build_runtime
from kinetic_infra.settings import Settings
from kinetic_infra.stack.processes import free_port


@pytest.fixture
async def db(scratch_dsn: str):
    database = Database(scratch_dsn)
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE effects (item_id uuid, n int)"))
        await conn.execute(text("CREATE TABLE poison_switch (failing boolean NOT NULL)"))
        await conn.execute(text("INSERT INTO poison_switch VALUES (true)"))
    yield database
    await database.dispose()


def envelope(service: str, Item, tenant: uuid.UUID, n: int) -> tuple[str, str, bytes]:
    item = uuid.uuid4()
    event = CloudEvent(id=new_id(), source=f"/kinetic/{service}", type=Item.event_type,
                       subject=str(item), time="2026-01-01T00:00:00Z",
                       data={"item_id": str(item), "n": n}, tenantid=tenant, sequence=1)
    return str(event.id), nats_subject(tenant, Item.event_type), event.model_dump_json().encode()


def effects_subscription(service: str, Item) -> Subscription:
    sub = Subscription(name=f"{service}-effects", source_service=service, max_attempts=3)

    @sub.on(Item.event_type)
    async def apply(conn, event: CloudEvent) -> None:
        failing = await conn.scalar(text("SELECT failing FROM poison_switch"))
        if failing and event.data["n"] == 13:
            raise RuntimeError("the effect's dependency is down")
        await conn.execute(text("INSERT INTO effects VALUES (:i, :n)"),
                           {"i": event.data["item_id"], "n": event.data["n"]})

    return sub


async def effect_count(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM effects")))


async def test_the_same_message_delivered_twice_changes_the_read_model_once(db):
    service = unique_service_name()
    Item = item_event_class(service)
    consumer = InboxConsumer(db, effects_subscription(service, Item))
    message_id, subject, payload = envelope(service, Item, uuid.uuid4(), 1)
    first = await consumer.handle(message_id=message_id, subject=subject, payload=payload, attempt=1)
    second = await consumer.handle(message_id=message_id, subject=subject, payload=payload,
                                   attempt=2)
    assert (first, second) == (Outcome.APPLIED, Outcome.DUPLICATE)
    assert await effect_count(db) == 1


async def test_two_copies_of_a_message_in_one_batch_change_the_read_model_once(db):
    service = unique_service_name()
    Item = item_event_class(service)
    consumer = InboxConsumer(db, effects_subscription(service, Item))
    message_id, subject, payload = envelope(service, Item, uuid.uuid4(), 1)
    other_id, other_subject, other_payload = envelope(service, Item, uuid.uuid4(), 2)
    copies = [Delivery(message_id, subject, payload, 1), Delivery(other_id, other_subject,
                                                                  other_payload, 1),
              Delivery(message_id, subject, payload, 1)]
    assert await consumer.handle_batch(copies) == [Outcome.APPLIED, Outcome.APPLIED,
                                                   Outcome.DUPLICATE]
    assert await effect_count(db) == 2


async def test_a_republish_after_the_duplicate_window_changes_the_read_model_once(db, nats_url):
    """JetStream stores the second copy (its de-duplication window has passed); the inbox
    still applies the effect once."""
    from nats.js.api import StreamConfig

    service = unique_service_name()
    Item = item_event_class(service)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_stream(js, StreamConfig(name=stream_name_for_service(service),
                                         subjects=[f"kinetic.*.{service}.>"], duplicate_window=1))
    message_id, subject, payload = envelope(service, Item, uuid.uuid4(), 1)
    await js.publish(subject, payload, headers={"Nats-Msg-Id": message_id})
    await asyncio.sleep(1.6)
    await js.publish(subject, payload, headers={"Nats-Msg-Id": message_id})
    info = await js.stream_info(stream_name_for_service(service))
    assert info.state.messages == 2
    await nc.close()

    app, broker = build_consumer_app(nats_url, db, [effects_subscription(service, Item)])
    await app.start()
    try:
        await _until(lambda: _inbox_count(db), 1)
        await asyncio.sleep(0.5)
    finally:
        await app.stop()
    assert await effect_count(db) == 1


async def _inbox_count(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM inbox")))


async def _until(probe, expected: int, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await probe() >= expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {expected}, got {await probe()}")


async def _dead_letter_count(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM dead_letters")))


async def test_a_failing_message_is_dead_lettered_and_replay_from_the_admin_page_applies_once(
        db, scratch_dsn, nats_url, stack):
    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    subscription = effects_subscription(service, Item)
    await declare_streams(nats_url, [service])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for n in range(10, 17):  # n == 13 fails until the switch is turned off
        message_id, subject, payload = envelope(service, Item, tenant, n)
        await js.publish(subject, payload, headers={"Nats-Msg-Id": message_id})

    app, broker = build_consumer_app(nats_url, db, [subscription])
    await app.start()
    try:
        await _until(lambda: effect_count(db), 6)  # the six others are not held up
        await _until(lambda: _dead_letter_count(db), 1)
    finally:
        await app.stop()

    dead = await js.get_last_msg(DEAD_LETTER_STREAM, dead_letter_subject(subscription.name))
    assert CloudEvent.model_validate_json(dead.data).data["n"] == 13
    await nc.close()

    # The operator fixes the cause, then replays from the admin page.
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE poison_switch SET failing = false"))
    definition = ServiceDefinition(name=service, migrations=Path("."),
                                   subscriptions=lambda _rt: [subscription])
    runtime = build_runtime(definition, Settings(
        service=service, database_url=scratch_dsn, nats_url=nats_url,
        oidc_issuer=stack.issuer_url, oidc_jwks_url=f"{stack.issuer_url}/jwks.json"))
    from kinetic_infra.auth.principal import Principal, Role
    from kinetic_infra.http.app import create_app

    api = create_app(runtime)
    operator = Principal("op", "Operator", tenant, frozenset({Role.OPERATOR}))
    async with api.router.lifespan_context(api):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                     base_url="http://test",
                                     cookies={"kinetic_token": stack.mint(operator)}) as client:
            page = await client.get("/admin")
            assert page.status_code == 200
            assert "the effect&#39;s dependency is down" in page.text
            async with db.read() as conn:
                dead_id = await conn.scalar(text("SELECT id FROM dead_letters"))
            replay = await client.post(f"/admin/dead-letters/{dead_id}/replay")
            assert replay.status_code == 303
            assert "applied" in replay.headers["location"]
            again = await client.post(f"/admin/dead-letters/{dead_id}/replay")
            assert "duplicate" in again.headers["location"]
    assert await effect_count(db) == 7
    async with db.read() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM effects WHERE n = 13")) == 1


async def test_a_consumer_applies_a_streams_events_in_the_order_they_were_published(
        db, nats_url):
    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE applied (seq bigserial, n int)"))
    sub = Subscription(name=f"{service}-ordered", source_service=service)

    @sub.on(Item.event_type)
    async def apply(conn, event: CloudEvent) -> None:
        await asyncio.sleep(0.002 if event.data["n"] % 2 else 0)  # uneven handler times
        await conn.execute(text("INSERT INTO applied (n) VALUES (:n)"), {"n": event.data["n"]})

    await declare_streams(nats_url, [service])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for n in range(200):
        message_id, subject, payload = envelope(service, Item, tenant, n)
        await js.publish(subject, payload, headers={"Nats-Msg-Id": message_id})
    await nc.close()

    async def applied() -> int:
        async with db.read() as conn:
            return int(await conn.scalar(text("SELECT count(*) FROM applied")))

    app, broker = build_consumer_app(nats_url, db, [sub])
    await app.start()
    try:
        await _until(applied, 200)
    finally:
        await app.stop()
    async with db.read() as conn:
        order = (await conn.execute(text("SELECT n FROM applied ORDER BY seq"))).scalars().all()
    assert order == list(range(200))


async def test_a_live_flow_is_applied_completely_once_and_in_order(db, nats_url):
    """Messages published while the consumer runs, in small bursts: none is left waiting
    for redelivery, none applied twice, and the order is the stream's."""
    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE applied (seq bigserial, n int)"))
    sub = Subscription(name=f"{service}-live", source_service=service)

    @sub.on(Item.event_type)
    async def apply(conn, event: CloudEvent) -> None:
        await conn.execute(text("INSERT INTO applied (n) VALUES (:n)"), {"n": event.data["n"]})

    async def applied() -> int:
        async with db.read() as conn:
            return int(await conn.scalar(text("SELECT count(*) FROM applied")))

    await declare_streams(nats_url, [service])
    app, _broker = build_consumer_app(nats_url, db, [sub])
    await app.start()
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for n in range(2000):
            message_id, subject, payload = envelope(service, Item, tenant, n)
            await js.publish(subject, payload, headers={"Nats-Msg-Id": message_id})
            if n % 5 == 0:
                await asyncio.sleep(0.005)
        await _until(applied, 2000, timeout=20)  # well under the 60 s redelivery wait
    finally:
        await nc.close()
        await app.stop()
    async with db.read() as conn:
        order = (await conn.execute(text("SELECT n FROM applied ORDER BY seq"))).scalars().all()
    assert order == list(range(2000))


async def test_an_event_that_overtook_the_one_it_builds_on_is_applied_once_that_one_is(
        db, nats_url):
    """Replicas read one stream side by side, so a dependent event can arrive first. Its
    handler says ``RetryLater``: it is redelivered, not rejected, and applied once the
    event it builds on is (here that one is published only after the first attempt)."""
    from kinetic_infra.inbox.consumer import RetryLater

    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    sub = Subscription(name=f"{service}-ordered", source_service=service, max_attempts=5)
    attempts: list[int] = []

    @sub.on(Item.event_type)
    async def apply(conn, event: CloudEvent) -> None:
        if event.data["n"] == 2:  # builds on n == 1
            attempts.append(2)
            if not await conn.scalar(text("SELECT count(*) FROM effects WHERE n = 1")):
                raise RetryLater("n = 1 is not applied yet")
        await conn.execute(text("INSERT INTO effects VALUES (:i, :n)"),
                           {"i": event.data["item_id"], "n": event.data["n"]})

    await declare_streams(nats_url, [service])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    app, _broker = build_consumer_app(nats_url, db, [sub])
    await app.start()
    try:
        second = envelope(service, Item, tenant, 2)
        await js.publish(second[1], second[2], headers={"Nats-Msg-Id": second[0]})
        await _until(lambda: asyncio.sleep(0, len(attempts)), 1)
        first = envelope(service, Item, tenant, 1)
        await js.publish(first[1], first[2], headers={"Nats-Msg-Id": first[0]})
        await _until(lambda: effect_count(db), 2)
    finally:
        await app.stop()
        await nc.close()
    assert len(attempts) >= 2 and await _dead_letter_count(db) == 0
    async with db.read() as conn:
        assert [r[0] for r in await conn.execute(
            text("SELECT n FROM effects ORDER BY n"))] == [1, 2]


async def _publish(js, service: str, Item, tenant: uuid.UUID, *ns: int) -> None:
    for n in ns:
        message_id, subject, payload = envelope(service, Item, tenant, n)
        await js.publish(subject, payload, headers={"Nats-Msg-Id": message_id})


async def _applied(db: Database) -> list[int]:
    async with db.read() as conn:
        return [r[0] for r in await conn.execute(text("SELECT n FROM effects ORDER BY n"))]


async def test_a_lost_durable_consumer_is_recreated_and_each_event_is_still_applied_once(
        db, nats_url):
    """Someone deletes the consumer's durable JetStream consumer (or a node loses it) while
    the consumer runs: it re-creates it from the stream's start, the inbox skips what it had
    handled, and what was published meanwhile is applied."""
    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    subscription = effects_subscription(service, Item)
    await declare_streams(nats_url, [service])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    app, _broker = build_consumer_app(nats_url, db, [subscription])
    await app.start()
    try:
        await _publish(js, service, Item, tenant, 1, 2, 3)
        await _until(lambda: effect_count(db), 3)
        await js.delete_consumer(stream_name_for_service(service), subscription.name)
        await _publish(js, service, Item, tenant, 4, 5)
        await _until(lambda: effect_count(db), 5)
        await asyncio.sleep(0.5)  # time for a wrong second application to show
    finally:
        await app.stop()
        await nc.close()
    assert await _applied(db) == [1, 2, 3, 4, 5]


async def test_catch_up_gives_a_handler_added_later_the_events_before_it_once(db, nats_url):
    """An upgrade adds a handler for an event type already in the stream (as billing's
    patient names did). Rewinding the durable consumer (``catch-up``) hands it the earlier
    events; those the consumer had handled are skipped by the inbox, not applied again."""
    from datetime import UTC, datetime, timedelta

    from kinetic_infra.broker.faststream_app import consumer_config
    from kinetic_infra.broker.streams import rewind_consumer

    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    Noted = item_event_class(service)
    Noted.event_type = f"kinetic.{service}.item.noted.v1"
    since = datetime.now(UTC) - timedelta(seconds=5)
    stream = stream_name_for_service(service)
    await declare_streams(nats_url, [service])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        never_ran = Subscription(name=f"{service}-never-ran", source_service=service)
        assert not await rewind_consumer(js, stream, consumer_config(never_ran, 60, since))
        assert never_ran.name not in [c.name for c in await js.consumers_info(stream)]

        await _publish(js, service, Item, tenant, 1, 2)
        await _publish(js, service, Noted, tenant, 101)
        await _publish(js, service, Item, tenant, 3)
        before = effects_subscription(service, Item)  # knows items, not notes
        app, _broker = build_consumer_app(nats_url, db, [before])
        await app.start()
        try:
            await _until(lambda: effect_count(db), 3)
        finally:
            await app.stop()

        after = effects_subscription(service, Item)

        @after.on(Noted.event_type)
        async def note(conn, event: CloudEvent) -> None:
            await conn.execute(text("INSERT INTO effects VALUES (:i, :n)"),
                               {"i": event.data["item_id"], "n": event.data["n"]})

        assert await rewind_consumer(js, stream, consumer_config(after, 60, since))
        assert (await js.consumer_info(stream, after.name)).num_pending == 4
        app, _broker = build_consumer_app(nats_url, db, [after])
        await app.start()
        try:
            await _until(lambda: effect_count(db), 4)

            async def settled() -> int:  # every rewound event delivered and acked
                info = await js.consumer_info(stream, after.name)
                return int(info.num_pending == 0 and info.num_ack_pending == 0)

            await _until(settled, 1)
        finally:
            await app.stop()
    finally:
        await nc.close()
    assert await _applied(db) == [1, 2, 3, 101]


# --- A pull loop outlives failures; outages never park a message; a stable inbox key ---


class _FailingOnce(InboxConsumer):
    """Its first pull fails as if PostgreSQL were down while a dead letter was recorded."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.failures = 0

    async def handle_batch(self, deliveries):
        if not self.failures:
            self.failures += 1
            raise RuntimeError("could not record the dead letter")
        return await super().handle_batch(deliveries)


async def _stopped(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_pull_loop_keeps_consuming_after_a_pull_failed_and_loses_nothing(db, nats_url):
    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    consumer = _FailingOnce(db, effects_subscription(service, Item))
    await declare_streams(nats_url, [service])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    task = asyncio.create_task(PullLoop(js, consumer, ack_wait=2.0).run())
    try:
        await _publish(js, service, Item, tenant, 1)
        await _until(lambda: asyncio.sleep(0, consumer.failures), 1)
        await _publish(js, service, Item, tenant, 2)
        # 2 is applied by the loop that went on; 1, never acked, comes back after ack_wait.
        await _until(lambda: effect_count(db), 2)
        assert not task.done()
    finally:
        await _stopped(task)
        await nc.close()
    assert await _applied(db) == [1, 2]


class _SubscribeFailsOnce:
    """JetStream whose first pull_subscribe fails (NATS restarting as the consumer starts)."""

    def __init__(self, js) -> None:
        self.js, self.failed = js, False

    def __getattr__(self, name: str):
        return getattr(self.js, name)

    async def pull_subscribe(self, *args, **kwargs):
        if not self.failed:
            self.failed = True
            raise nats.errors.NoServersError
        return await self.js.pull_subscribe(*args, **kwargs)


async def test_a_pull_loop_whose_subscribe_failed_at_start_up_subscribes_again(db, nats_url):
    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    await declare_streams(nats_url, [service])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    flaky = _SubscribeFailsOnce(js)
    loop = PullLoop(flaky, InboxConsumer(db, effects_subscription(service, Item)), 60.0)
    task = asyncio.create_task(loop.run())
    try:
        await _publish(js, service, Item, tenant, 1)
        await _until(lambda: effect_count(db), 1)
        assert flaky.failed
    finally:
        await _stopped(task)
        await nc.close()


async def test_a_consumer_process_whose_pull_loop_ended_stops_for_its_supervisor(
        db, nats_url, monkeypatch):
    async def ends(self) -> None:
        raise RuntimeError("a bug that escaped the loop")

    monkeypatch.setattr(PullLoop, "run", ends)
    service = unique_service_name()
    app, _broker = build_consumer_app(nats_url, db, [
        effects_subscription(service, item_event_class(service))])
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(app.run(), timeout=30)  # returns: the process would exit
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # app.run() installed its handlers
            loop.remove_signal_handler(sig)


def _outage_subscription(service: str, Item, trouble: dict) -> Subscription:
    sub = Subscription(name=f"{service}-outage", source_service=service, max_attempts=3)

    @sub.on(Item.event_type)
    async def apply(conn, event: CloudEvent) -> None:
        if trouble.get("kind") == "connection dropped":
            await conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        elif trouble.get("kind") == "temporal unavailable":
            raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
        elif trouble.get("kind") == "bug":
            raise RuntimeError("the handler's own bug")
        await conn.execute(text("INSERT INTO effects VALUES (:i, :n)"),
                           {"i": event.data["item_id"], "n": event.data["n"]})

    return sub


@contextlib.asynccontextmanager
async def _outage(consumer: InboxConsumer, trouble: dict, kind: str):
    """PostgreSQL out of reach for the consumer, or its handler meeting an outage."""
    real_db = consumer.db
    if kind == "database unreachable":
        consumer.db = Database(f"postgresql://kinetic:x@127.0.0.1:{free_port()}/gone")
    trouble["kind"] = kind
    try:
        yield
    finally:
        trouble["kind"] = None
        if consumer.db is not real_db:
            await consumer.db.dispose()
            consumer.db = real_db


@pytest.mark.parametrize("kind", ["database unreachable", "connection dropped",
                                  "temporal unavailable"])
async def test_an_outage_at_the_last_attempt_is_retried_but_a_handlers_own_error_is_parked(
        db, kind):
    service = unique_service_name()
    Item, tenant, trouble = item_event_class(service), uuid.uuid4(), {}
    consumer = InboxConsumer(db, _outage_subscription(service, Item, trouble))
    message_id, subject, payload = envelope(service, Item, tenant, 1)
    async with _outage(consumer, trouble, kind):
        for attempt in (3, 4):  # max_attempts is 3
            assert await consumer.handle(message_id=message_id, subject=subject,
                                         payload=payload, attempt=attempt) == Outcome.RETRY
    assert await _dead_letter_count(db) == 0
    assert await consumer.handle(message_id=message_id, subject=subject, payload=payload,
                                 attempt=5) == Outcome.APPLIED

    message_id, subject, payload = envelope(service, Item, tenant, 2)
    trouble["kind"] = "bug"
    assert await consumer.handle(message_id=message_id, subject=subject, payload=payload,
                                 attempt=3) == Outcome.DEAD_LETTERED
    assert await _dead_letter_count(db) == 1
    assert await _applied(db) == [1]


async def test_only_a_handlers_own_failures_count_toward_dead_lettering(db):
    """Deliveries 1-4 meet Temporal down; then the handler fails on its own: it is parked at
    its third own failure (delivery 7), not at its first."""
    service = unique_service_name()
    Item, trouble = item_event_class(service), {}
    consumer = InboxConsumer(db, _outage_subscription(service, Item, trouble))
    message_id, subject, payload = envelope(service, Item, uuid.uuid4(), 1)

    async def deliver(attempt: int) -> Outcome:
        return await consumer.handle(message_id=message_id, subject=subject, payload=payload,
                                     attempt=attempt)

    async with _outage(consumer, trouble, "temporal unavailable"):
        assert [await deliver(a) for a in (1, 2, 3, 4)] == [Outcome.RETRY] * 4
    trouble["kind"] = "bug"
    assert [await deliver(a) for a in (5, 6, 7)] == [Outcome.RETRY, Outcome.RETRY,
                                                     Outcome.DEAD_LETTERED]


@pytest.mark.parametrize(("error", "outage"), [
    (ConnectionRefusedError(111, "refused"), True),
    (OSError("Multiple exceptions: [Errno 111] …, [Errno 99] …"), True),
    (TimeoutError(), True),
    (asyncpg.CannotConnectNowError("the database system is starting up"), True),
    (DBAPIError("SELECT 1", None, asyncpg.InterfaceError("connection is closed")), True),
    (DBAPIError("SELECT 1", None, RuntimeError("dropped"), connection_invalidated=True), True),
    (RPCError("deadline", RPCStatusCode.DEADLINE_EXCEEDED, b""), True),
    (RPCError("no such workflow", RPCStatusCode.NOT_FOUND, b""), False),
    (DBAPIError("INSERT", None, asyncpg.UniqueViolationError("duplicate key")), False),
    (FileNotFoundError("template.html"), False),
    (KeyError("item_id"), False),
])
def test_only_an_unreachable_platform_counts_as_an_infrastructure_outage(error, outage):
    assert is_transient_infrastructure_error(error) is outage


class _AckLost(InboxConsumer):
    """Applies its first pull, then loses the acks (as a crash before them would): JetStream
    delivers the message again, on a new reply subject."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.outcomes: list[list[Outcome]] = []

    async def handle_batch(self, deliveries):
        outcomes = await super().handle_batch(deliveries)
        self.outcomes.append(outcomes)
        return [Outcome.RETRY] * len(outcomes) if len(self.outcomes) == 1 else outcomes


async def test_a_message_without_nats_msg_id_redelivered_is_applied_once(db, nats_url):
    service = unique_service_name()
    Item = item_event_class(service)
    consumer = _AckLost(db, effects_subscription(service, Item))
    await declare_streams(nats_url, [service])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    task = asyncio.create_task(PullLoop(js, consumer, ack_wait=60.0).run())
    try:
        _id, subject, payload = envelope(service, Item, uuid.uuid4(), 1)
        await js.publish(subject, payload)  # no Nats-Msg-Id
        await _until(lambda: asyncio.sleep(0, len(consumer.outcomes)), 2)
    finally:
        await _stopped(task)
        await nc.close()
    assert consumer.outcomes[:2] == [[Outcome.APPLIED], [Outcome.DUPLICATE]]
    assert await effect_count(db) == 1


async def test_a_pull_loop_stopped_leaves_no_subscription_for_the_drain_to_wait_on(
        db, nats_url):
    """A pull subscription left behind by a cancelled loop held the connection's drain at
    shutdown until its 30-second timeout (a last fetch's answer lands in a queue nobody
    reads): a rolling deploy's grace period is gone by then, and the process is killed
    instead of stopping. The loop takes its subscription with it."""
    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    await declare_streams(nats_url, [service])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    task = asyncio.create_task(
        PullLoop(js, InboxConsumer(db, effects_subscription(service, Item)), 60.0).run())
    try:
        await _publish(js, service, Item, tenant, 1)
        await _until(lambda: effect_count(db), 1)  # the loop is pulling
        def pulls() -> list:  # not the connection's own inbox for replies (`<inbox>.*`)
            return [s for s in nc._subs.values() if not s.subject.endswith(".*")]

        assert pulls(), "the loop's pull subscription"
        await _stopped(task)
        assert not pulls(), "the pull subscription went with the loop"
    finally:
        await nc.close()


def _waits_for_n_1(service: str, Item) -> Subscription:
    from kinetic_infra.inbox.consumer import RetryLater

    sub = Subscription(name=f"{service}-waits", source_service=service, max_attempts=3)

    @sub.on(Item.event_type)
    async def apply(conn, event: CloudEvent) -> None:
        raise RetryLater("n = 1 is not applied yet")

    return sub


def _dated(payload: bytes, time: datetime) -> bytes:
    event = CloudEvent.model_validate_json(payload)
    return event.model_copy(update={"time": time}).model_dump_json().encode()


async def test_an_event_waiting_for_one_a_crashed_replica_holds_is_not_parked_within_patience(
        db):
    """The event it builds on comes back only after ack_wait (60 s) when the replica that
    had it crashed before its ack: quick RetryLater deliveries must not park the waiting
    event before then. Once it is older than the patience, waiting counts as failing, so an
    event waiting for one that never comes is parked."""
    service = unique_service_name()
    Item, tenant = item_event_class(service), uuid.uuid4()
    consumer = InboxConsumer(db, _waits_for_n_1(service, Item))
    message_id, subject, payload = envelope(service, Item, tenant, 2)
    fresh = _dated(payload, datetime.now(UTC))
    outcomes = [await consumer.handle(message_id=message_id, subject=subject, payload=fresh,
                                      attempt=attempt) for attempt in range(1, 11)]
    assert set(outcomes) == {Outcome.RETRY} and await _dead_letter_count(db) == 0

    old_id, subject, payload = envelope(service, Item, tenant, 3)
    old = _dated(payload, datetime.now(UTC) - timedelta(minutes=10))
    outcomes = [await consumer.handle(message_id=old_id, subject=subject, payload=old,
                                      attempt=attempt) for attempt in range(1, 4)]
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.DEAD_LETTERED]
    assert await _dead_letter_count(db) == 1
