"""Outbox relay throughput, Kinetic beside raw nats-py.

Measures messages per second through ``OutboxRelay.relay_once()`` called in a loop until a
pre-filled outbox is empty; each call selects a batch of committed rows, publishes them to
JetStream, waits for every ack (on disk: the server syncs each message) and deletes them.
The outbox is filled beforehand through ``EventStore.append`` (10 events per transaction,
16 writers), outside the clock. Two rounds, each on a fresh outbox and a re-created stream;
which side runs first alternates, and each side's rounds are added up.

Baseline: raw nats-py ``js.publish_async`` of the same payloads and subjects, with the same
``Nats-Msg-Id`` and content-type headers, into an identical stream (re-created empty: same
duplicate window, file storage), awaiting all acks in batches of the relay's batch size. No
database is involved, so the ratio shows what reading and deleting the outbox rows costs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg
import nats

from kinetic_infra.outbox.relay import OutboxRelay, RelaySettings
from tests.bench.appends import AppendCase, Throughput, kinetic_appends
from tests.bench.stack import SERVICE, BenchStack

PREFILL_CASE = AppendCase(events_per_tx=10, writers=16)
BATCH_SIZE: int = RelaySettings.batch_size  # the relay's default; the baseline batches alike


@dataclass(frozen=True)
class OutboxMessage:
    event_id: str
    subject: str
    payload: bytes


async def prefill(stack: BenchStack, rows: int) -> list[OutboxMessage]:
    """Append ``rows`` events through the event store; return their outbox rows in order."""
    await kinetic_appends(stack.producer_url, PREFILL_CASE,
                          transactions=rows // PREFILL_CASE.events_per_tx, warmup=0)
    conn = await asyncpg.connect(stack.producer_url)
    try:
        await conn.execute("VACUUM ANALYZE outbox")
        records = await conn.fetch("SELECT event_id, subject, payload FROM outbox "
                                   "ORDER BY position")
    finally:
        await conn.close()
    return [OutboxMessage(str(r["event_id"]), r["subject"], bytes(r["payload"]))
            for r in records]


async def stream_messages(stack: BenchStack) -> int:
    nc = await nats.connect(stack.nats_url)
    try:
        info = await nc.jetstream().stream_info(SERVICE.upper())
        return int(info.state.messages)
    finally:
        await nc.drain()


async def kinetic_relay(stack: BenchStack) -> Throughput:
    """Drain the outbox with ``relay_once`` (default settings: batches of 500)."""
    relay = OutboxRelay(RelaySettings(service=SERVICE, database_url=stack.producer_url,
                                      nats_url=stack.nats_url))
    await relay.connect()
    try:
        start = time.perf_counter()
        published = 0
        while batch := await relay.relay_once():
            published += batch
        elapsed = time.perf_counter() - start
    finally:
        await relay.close()
    return Throughput(published, elapsed)


async def raw_publish(stack: BenchStack, messages: list[OutboxMessage],
                      batch_size: int) -> Throughput:
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream(publish_async_max_pending=batch_size * 2)
        start = time.perf_counter()
        for first in range(0, len(messages), batch_size):
            futures = []
            for m in messages[first:first + batch_size]:
                headers = {"Nats-Msg-Id": m.event_id,
                           "Content-Type": "application/cloudevents+json"}
                futures.append(await js.publish_async(m.subject, m.payload, headers=headers))
            await asyncio.wait_for(asyncio.gather(*futures), 10.0)
        elapsed = time.perf_counter() - start
    finally:
        await nc.drain()
    return Throughput(len(messages), elapsed)


@dataclass(frozen=True)
class RelayResult:
    kinetic: Throughput
    raw: Throughput
    kinetic_stored: int  # messages the stream held after each drain, added up: all must arrive
    raw_stored: int
    rounds: int


async def measure_relay(stack: BenchStack, rows: int, rounds: int) -> RelayResult:
    """``rounds`` rounds of ``rows`` outbox rows each; which side goes first alternates."""
    kinetic: list[Throughput] = []
    raw: list[Throughput] = []
    kinetic_stored = raw_stored = 0
    for round_ in range(rounds):
        await stack.reset_tables()
        messages = await prefill(stack, rows)
        for side in ("kinetic", "raw") if round_ % 2 == 0 else ("raw", "kinetic"):
            await stack.reset_stream()
            await stack.settle()
            if side == "kinetic":
                kinetic.append(await kinetic_relay(stack))
                kinetic_stored += await stream_messages(stack)
            else:
                raw.append(await raw_publish(stack, messages, BATCH_SIZE))
                raw_stored += await stream_messages(stack)
    return RelayResult(Throughput.combined(kinetic), Throughput.combined(raw),
                       kinetic_stored, raw_stored, rounds)
