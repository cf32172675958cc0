"""A three-node JetStream cluster on loopback (the `make run NATS_NODES=3` servers): streams
created with three replicas, and the outbox relay connected to the cluster keeps publishing
when the node it is connected to is killed (SIGKILL): every event arrives once, in each
stream's order, read back through the nodes that remain."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
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
from kinetic_infra.outbox.relay import OutboxRelay, RelaySettings
from kinetic_infra.stack.nats import NatsCluster
from kinetic_infra.stack.processes import free_port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    root: Path = tmp_path_factory.mktemp("nats-cluster")
    nodes = NatsCluster(root, [free_port() for _ in range(3)], [free_port() for _ in range(3)],
                        [free_port() for _ in range(3)]).start(root / "logs")
    try:
        yield nodes
    finally:
        nodes.stop()


async def test_a_node_killed_under_the_relay_loses_and_duplicates_no_event_of_an_r3_stream(
        scratch_dsn: str, cluster: NatsCluster) -> None:
    service = unique_service_name()
    Item, store, tenant = item_event_class(service), EventStore(service), uuid.uuid4()
    db = Database(scratch_dsn, pool_size=5)
    relay = OutboxRelay(RelaySettings(service, scratch_dsn, cluster.url, batch_size=50,
                                      stream_replicas=3, publish_timeout=5.0))
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    total, items = 1500, [uuid.uuid4() for _ in range(30)]  # 50 events per stream
    killed = None
    try:

        async def kill_the_relays_node(n: int) -> None:
            nonlocal killed
            if n != total // 3:
                return
            assert relay._nc is not None and relay._nc.connected_url is not None
            port = relay._nc.connected_url.port
            killed = next(node for node in cluster.nodes if node.settings.port == port)
            assert killed.process is not None and killed.process.popen is not None
            killed.process.popen.kill()

        await append_round_robin(db, store, Item, items, total, tenant, kill_the_relays_node)
        assert killed is not None
        survivors = [node.url for node in cluster.nodes if node is not killed]
        await stored(survivors, stream_name_for_service(service), total)
        for attempt in range(5):  # a new consumer may time out while leaders settle
            try:
                messages = await read_stream(survivors, stream_name_for_service(service),
                                             total, timeout=120)
                break
            except TimeoutError:
                if attempt == 4:
                    raise
                await asyncio.sleep(2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await db.dispose()

    assert len(messages) == total
    assert len({m.headers["Nats-Msg-Id"] for m in messages}) == total
    assert_in_stream_order(messages, {str(i): total // len(items) for i in items})

    nc = await nats.connect(survivors)
    try:
        info = await nc.jetstream().stream_info(stream_name_for_service(service))
        assert info.config.num_replicas == 3
    finally:
        await nc.close()
