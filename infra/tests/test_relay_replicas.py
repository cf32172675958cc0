"""Relays of one service run side by side (`make run REPLICAS=3`): one publishes, holding the
leader lock, the others wait. SIGKILL of whichever leads hands over to a waiting one: no event
is published under two ids, none is lost, each stream keeps its order, and nothing stalls."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

from relay_support import (
    append_round_robin,
    assert_in_stream_order,
    item_event_class,
    read_stream,
    stored,
    unique_service_name,
)

from kinetic_contracts import stream_name_for_service
from kinetic_infra.db.database import Database
from kinetic_infra.event_store.store import EventStore


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
