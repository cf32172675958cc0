"""Helpers for infra's tests: a throw-away event type and stream per test, so relay tests
never feed the platform's own consumers."""

from __future__ import annotations

import asyncio
import uuid
from uuid import UUID

import nats
from pydantic import create_model

from kinetic_contracts import EventData


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
