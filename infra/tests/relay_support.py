"""Helpers for infra's tests: a throw-away event type and stream per test, so relay tests
never feed the platform's own consumers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from uuid import UUID

import nats
from pydantic import create_model

from kinetic_contracts import EventData
from kinetic_infra.db.database import Database
from kinetic_infra.event_store.model import EventContext, Exactly, NewEvent, StreamName
from kinetic_infra.event_store.store import EventStore


def unique_service_name() -> str:
    return f"relaytest{uuid.uuid4().hex[:10]}"


def item_event_class(service: str) -> type[EventData]:
    """A contract event ``kinetic.<service>.item.appended.v1`` with ``item_id`` and ``n``."""
    model = create_model(  # type: ignore[call-overload]
        f"ItemAppended_{service}",
        __base__=EventData,
        item_id=(UUID, ...),
        n=(int, ...),
    )
    model.event_type = f"kinetic.{service}.item.appended.v1"  # type: ignore[attr-defined]
    model.aggregate_id_field = "item_id"  # type: ignore[attr-defined]
    return model


async def read_stream(nats_url: str | list[str], stream: str, expected: int,
                      timeout: float = 60.0) -> list[nats.aio.msg.Msg]:
    """Every message of a stream in stream order (an ordered consumer: no acks, no gaps)."""
    import asyncio

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    messages: list = []
    try:
        sub = await js.subscribe(f"kinetic.*.{stream.lower()}.>", ordered_consumer=True,
                                 stream=stream)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(messages) < expected and loop.time() < deadline:
            try:
                messages.append(await sub.next_msg(timeout=max(0.1, deadline - loop.time())))
            except TimeoutError:  # nats raises its own subclass or asyncio.TimeoutError
                break
        # Anything beyond `expected` would be a duplicate: give it a moment to show up.
        while True:
            try:
                messages.append(await sub.next_msg(timeout=0.5))
            except TimeoutError:  # nats raises its own subclass or asyncio.TimeoutError
                break
        await sub.unsubscribe()
    finally:
        await nc.close()
    return messages


async def stored(servers: str | list[str], stream: str, count: int,
                 timeout: float = 120.0) -> None:
    """Wait until the stream exists and holds ``count`` messages (just after a cluster node
    died, JetStream's API answers nothing until new leaders are elected)."""
    nc = await nats.connect(servers)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                if (await nc.jetstream().stream_info(stream)).state.messages >= count:
                    return
            except (nats.errors.Error, TimeoutError):
                pass
            assert asyncio.get_running_loop().time() < deadline, "the stream never filled"
            await asyncio.sleep(0.5)
    finally:
        await nc.close()


async def append_round_robin(db: Database, store: EventStore, event_class: type[EventData],
                             items: list[UUID], total: int, tenant: UUID,
                             after_each: Callable[[int], Awaitable[None]] | None = None) -> None:
    """Append ``total`` events, the n-th to ``items[n % len(items)]``, one per transaction;
    ``after_each(n)`` runs after each commit (to pace the writer or break something)."""
    for n in range(total):
        item = items[n % len(items)]
        async with db.transaction() as conn:
            await store.append(conn, StreamName("item", item),
                               [NewEvent.of(event_class(item_id=item, n=n))],
                               expected=Exactly(n // len(items)),
                               context=EventContext(tenant_id=tenant))
        if after_each is not None:
            await after_each(n)


def assert_in_stream_order(messages: list[nats.aio.msg.Msg],
                           expected_per_item: dict[str, int]) -> None:
    """Every stream's events arrive once each, as versions 1..n in order."""
    seen: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        envelope = json.loads(m.data)
        seen[envelope["subject"]].append(envelope["sequence"])
    assert set(seen) == set(expected_per_item)
    for item, versions in seen.items():
        assert versions == list(range(1, expected_per_item[item] + 1)), item


async def eventually(condition: Callable[[], bool], timeout: float = 15.0,
                     what: str = "the condition") -> None:
    """Wait, polling every 20 ms, until ``condition()`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"{what} never held"
        await asyncio.sleep(0.02)


async def append_items(db: Database, store: EventStore, event_class: type[EventData],
                       items: list[UUID], versions: dict[UUID, int], count: int,
                       tenant: UUID) -> None:
    """Append ``count`` more events round robin over ``items``, continuing each stream at
    ``versions[item]`` (which is advanced)."""
    for n in range(count):
        item = items[n % len(items)]
        async with db.transaction() as conn:
            await store.append(conn, StreamName("item", item),
                               [NewEvent.of(event_class(item_id=item, n=versions[item]))],
                               expected=Exactly(versions[item]),
                               context=EventContext(tenant_id=tenant))
        versions[item] += 1
