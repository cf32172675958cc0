"""Relays of one service run side by side (`make run REPLICAS=3`): one publishes, holding the
leader lock, the others wait. SIGKILL of whichever leads hands over to a waiting one: no event
is published under two ids, none is lost, each stream keeps its order, and nothing stalls.
A leader whose lock connection dies steps down, and connections that merely sit idle under
``idle_session_timeout`` cost no leader its lock."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict

import asyncpg
from relay_support import (
    append_items,
    append_round_robin,
    assert_in_stream_order,
    eventually,
    item_event_class,
    read_stream,
    stored,
    unique_service_name,
)

from kinetic_contracts import stream_name_for_service
from kinetic_infra.db.database import Database
from kinetic_infra.event_store.store import EventStore
from kinetic_infra.outbox.relay import OutboxRelay, RelaySettings, leader_lock_key


async def test_two_relays_hand_over_when_the_leader_is_killed_and_publish_each_event_once(
        scratch_dsn, nats_url):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    db = Database(scratch_dsn, pool_size=5)
    env = {**os.environ, "KINETIC_SERVICE": service, "KINETIC_DATABASE_URL": scratch_dsn,
           "KINETIC_NATS_URL": nats_url, "KINETIC_RELAY_BATCH_SIZE": "50"}

    def relay() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "kinetic_infra.service", "relay"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    stream = stream_name_for_service(service)
    first, second = relay(), relay()
    replacement: subprocess.Popen | None = None
    total, items = 1500, [uuid.uuid4() for _ in range(30)]  # 50 events per stream
    try:

        async def break_relays(n: int) -> None:
            nonlocal replacement
            if n == 100:  # the relays are up and one of them publishes
                await stored(nats_url, stream, 100)
            if n == total // 3:
                first.send_signal(signal.SIGKILL)
                replacement = relay()
            elif n == 2 * total // 3:
                await stored(nats_url, stream, n)  # one took over, or led all along
                # Whichever led before, the second relay leads now (it took over from the
                # first, or had the lock all along): this kills a leader.
                second.send_signal(signal.SIGKILL)
            elif n % 50 == 0:
                await asyncio.sleep(0.05)

        await append_round_robin(db, store, Item, items, total, tenant, break_relays)
        await stored(nats_url, stream, total)  # the replacement took over in turn
        messages = await read_stream(nats_url, stream, total, timeout=120)
        async with db.transaction() as conn:
            from sqlalchemy import text

            left = await conn.scalar(text("SELECT count(*) FROM outbox"))
    finally:
        for process in (first, second, replacement):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
        await db.dispose()

    assert len(messages) == total
    assert len({m.headers["Nats-Msg-Id"] for m in messages}) == total
    assert_in_stream_order(messages, {str(i): total // len(items) for i in items})
    assert left == 0


def quick_settings(service: str, database_url: str, nats_url: str,
                   leader_poll: float = 0.05) -> RelaySettings:
    return RelaySettings(service, database_url, nats_url, batch_size=20,
                         leader_check_interval=0.1, leader_poll=leader_poll,
                         retry_backoff_min=0.05, retry_backoff_max=0.5)


class Replica:
    """An in-process relay with a stop of its own."""

    def __init__(self, settings: RelaySettings) -> None:
        self.relay, self.stop = OutboxRelay(settings), asyncio.Event()
        self.task = asyncio.create_task(self.relay.run(self.stop))

    async def end(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)


async def lock_holder(admin: asyncpg.Connection, service: str) -> int | None:
    """The backend holding the service's leader lock (an advisory lock on a bigint key
    shows its high half as classid, its low half as objid)."""
    return await admin.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid::bigint = 0 AND objid::bigint = $1", leader_lock_key(service))


async def outbox_size(admin: asyncpg.Connection) -> int:
    return await admin.fetchval("SELECT count(*) FROM outbox")


async def test_a_leader_that_loses_its_lock_connection_stops_publishing_and_a_standby_takes_over(
        scratch_dsn, nats_url):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    items, versions = [uuid.uuid4() for _ in range(10)], defaultdict(int)
    db = Database(scratch_dsn, pool_size=5)
    admin = await asyncpg.connect(scratch_dsn)
    # Once it has stepped down, the first waits 0.5 s before trying again: the standby wins.
    first = Replica(quick_settings(service, scratch_dsn, nats_url, leader_poll=0.5))
    await eventually(lambda: first.relay.is_leader, 10, "the first relay leading")
    second = Replica(quick_settings(service, scratch_dsn, nats_url))
    try:
        await append_items(db, store, Item, items, versions, 100, tenant)
        await eventually(lambda: first.relay.published == 100, 10, "the first 100 published")
        assert not second.relay.is_leader and second.relay.published == 0
        # Keep writing while the lock moves.
        writer = asyncio.create_task(append_items(db, store, Item, items, versions, 300, tenant))
        await asyncio.sleep(0.1)
        holder = await lock_holder(admin, service)
        assert holder is not None and await admin.fetchval("SELECT pg_terminate_backend($1)",
                                                           holder)
        await eventually(lambda: second.relay.is_leader and not first.relay.is_leader, 10,
                         "the standby leading alone")
        published_by_the_old_leader = first.relay.published
        await writer
        await append_items(db, store, Item, items, versions, 100, tenant)
        messages = await read_stream(nats_url, stream_name_for_service(service), 500)
        left = await outbox_size(admin)
        assert not first.task.done() and not second.task.done()
        assert first.relay.published == published_by_the_old_leader
        assert second.relay.published > 0
        assert await lock_holder(admin, service) not in (None, holder)
    finally:
        await admin.close()
        await first.end()
        await second.end()
        await db.dispose()

    assert len(messages) == 500
    assert len({m.headers["Nats-Msg-Id"] for m in messages}) == 500
    assert_in_stream_order(messages, {str(i): 50 for i in items})
    assert left == 0


async def test_a_standby_that_loses_its_lock_connection_reconnects_and_can_still_take_over(
        scratch_dsn, nats_url):
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    items, versions = [uuid.uuid4() for _ in range(2)], defaultdict(int)
    db = Database(scratch_dsn, pool_size=5)
    admin = await asyncpg.connect(scratch_dsn)
    first = Replica(quick_settings(service, scratch_dsn, nats_url))
    await eventually(lambda: first.relay.is_leader, 10, "the first relay leading")
    second = Replica(quick_settings(service, scratch_dsn, nats_url))
    try:
        await eventually(lambda: second.relay._lock_conn is not None, 10, "the standby waiting")
        assert second.relay._lock_conn is not None
        pid = second.relay._lock_conn.get_server_pid()
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await eventually(lambda: second.task.done() or (
            second.relay._lock_conn is not None
            and second.relay._lock_conn.get_server_pid() != pid), 10, "the standby reconnecting")
        assert not second.task.done()
        await first.end()
        await eventually(lambda: second.relay.is_leader, 10, "the standby leading")
        await append_items(db, store, Item, items, versions, 10, tenant)
        await eventually(lambda: second.relay.published == 10, 10, "the standby publishing")
    finally:
        await admin.close()
        await first.end()
        await second.end()
        await db.dispose()


async def test_idle_session_timeout_costs_the_leader_neither_its_lock_nor_its_work(
        scratch_dsn, nats_url):
    """PostgreSQL ends sessions idle for longer than idle_session_timeout; the leader's lock
    connection never does anything else after taking the lock, but for its checks."""
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    items, versions = [uuid.uuid4() for _ in range(2)], defaultdict(int)
    db = Database(scratch_dsn, pool_size=5)
    # asyncpg passes unknown DSN parameters to the server as settings: only the relays'
    # sessions time out.
    relay_url = f"{scratch_dsn}?idle_session_timeout=500"
    first = Replica(quick_settings(service, relay_url, nats_url))
    await eventually(lambda: first.relay.is_leader, 10, "the first relay leading")
    second = Replica(quick_settings(service, relay_url, nats_url))
    try:
        for _ in range(40):  # 2 s, four timeouts' worth
            await asyncio.sleep(0.05)
            assert first.relay.is_leader and not second.relay.is_leader
        await append_items(db, store, Item, items, versions, 10, tenant)
        await eventually(lambda: first.relay.published == 10, 10, "the leader publishing")
        # The standby's working connection idled out long ago: it reconnects when it leads.
        await first.end()
        await eventually(lambda: second.relay.is_leader, 10, "the standby leading")
        await append_items(db, store, Item, items, versions, 10, tenant)
        await eventually(lambda: second.relay.published == 10, 10, "the standby publishing")
        assert not second.task.done()
    finally:
        await first.end()
        await second.end()
        await db.dispose()
    messages = await read_stream(nats_url, stream_name_for_service(service), 20)
    assert_in_stream_order(messages, {str(i): 10 for i in items})
