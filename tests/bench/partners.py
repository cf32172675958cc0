"""From a service's commit to a partner's verified webhook and to its NATS consumer, beside
raw NATS.

Kinetic path, as in a deployment: a writer process appends booking's ``episode.opened`` (one
per transaction, paced) through the event store with its outbox row; the outbox relay
publishes it to JetStream; the partners service's real processes (``consumer``: the feed's
durable consumer, which writes a delivery, the FHIR projection and the dispatch queue row in
one transaction; ``dispatcher``: the signed POST, in order per patient) deliver it to a
receiver in this process (the end-to-end tests' ``Receiver``), which verifies each signature
with ``standardwebhooks`` (as a partner does) and notes when it arrived. Latency = arrival -
PostgreSQL's commit timestamp of the event; throughput = verified arrivals per second.

The same partner reads the same events from NATS, as a partner system does: connected with
its NATS key (admitted by the server's auth callout, which the dispatcher answers), pulling
from its durable consumer. That path is the feed's outbox row, published by the partners
service's own relay to the partner's subjects.

Baseline: raw nats-py publish -> JetStream -> durable pull consumer at the same rate
(``latency.measure_raw_latency``), in the same run.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats

from kinetic_contracts.partner_feed import FeedAccess
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.stack.platform import Platform, Ports, discover_services
from kinetic_infra.stack.processes import free_port
from kinetic_infra.stack.temporal import EmbeddedTemporal, TemporalSettings
from tests.bench.latency import (
    _SPAWN,
    WARMUP_EVENTS,
    LatencyStats,
    _join,
    _start,
    _wait_for,
    commit_times,
    measure_raw_latency,
    processes,
    ramp_events,
    relay_main,
    writer_main,
)
from tests.bench.stack import BenchStack
from tests.bench.workload import EVENT_TYPE, TENANT_ID
from tests.e2e.test_partners import Receiver  # the e2e tests' verifying receiver

OPERATOR = Principal("bench-operator", "Benchmark operator", TENANT_ID,
                     frozenset({Role.OPERATOR}))
DRAIN_SECONDS = 120.0


@dataclass(frozen=True)
class PartnersResult:
    rate: float  # requested events per second
    webhook: LatencyStats  # commit -> verified receipt
    delivered_per_second: float  # verified receipts per second over the measured events
    rejected: int
    nats: LatencyStats  # commit -> the partner's NATS consumer
    nats_per_second: float
    raw: LatencyStats  # raw NATS publish -> JetStream -> consume


@dataclass
class PartnersBench:
    """The partners service's api, consumer and dispatcher on the benchmark's servers."""

    stack: BenchStack
    platform: Platform | None = None

    def start(self) -> None:
        stack = self.stack
        assert stack.postgres is not None and stack.nats is not None
        definition = next(d for d in discover_services() if d.name == "partners")
        root = stack.root / "partners"
        platform = Platform(data_dir=root, ports=Ports.free([definition]),
                            services=[definition], durable=True,
                            roles=("api", "relay", "consumer", "dispatcher"),
                            extra_env={"KINETIC_PARTNERS_ALLOW_LOOPBACK_HTTP": "true"})
        self.platform = platform
        platform.log_dir.mkdir(parents=True, exist_ok=True)
        platform.postgres, platform.nats = stack.postgres, stack.nats  # borrowed
        platform.temporal = EmbeddedTemporal(TemporalSettings(  # never started: unused
            root / "temporal", free_port(), free_port(), free_port(), free_port()))
        platform.start_issuer()
        platform.prepare_databases()
        api = platform.start_process(definition, "api")
        platform.start_process(definition, "relay")
        platform.start_process(definition, "consumer")
        platform.start_process(definition, "dispatcher")
        url = f"{platform.base_url('partners')}/healthz"
        api.wait_ready(lambda: _answers(url), timeout=90, what="partners API")

    def stop(self) -> None:
        if self.platform is not None:
            platform, self.platform = self.platform, None
            platform.postgres = platform.nats = platform.temporal = None  # not ours to stop
            platform.stop()

    async def register(self, receiver: Receiver) -> str:
        """Register the partner with the receiver's address; return its NATS key."""
        assert self.platform is not None
        async with httpx.AsyncClient(base_url=self.platform.base_url("partners"), headers={
                "Authorization": f"Bearer {self.platform.mint(OPERATOR)}"}) as client:
            response = await client.post("/partners", json={
                "name": "bench-crm", "webhook_url": receiver.url,
                "grant": {"event_types": [EVENT_TYPE]}})
            response.raise_for_status()
            receiver.secret = response.json()["secret"]
            issued = await client.post(f"/partners/{response.json()['partner_id']}/nats-key")
        issued.raise_for_status()
        return str(issued.json()["nats_key"])


@dataclass
class NatsReader:
    """The partner's NATS client: notes when each event first arrived, acknowledges it."""

    url: str
    key: str
    arrived_at: dict[str, float] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        feed = FeedAccess.from_key(self.key)
        nc = await nats.connect(self.url, token=self.key, inbox_prefix=feed.inbox_prefix)
        try:
            sub = await nc.jetstream().pull_subscribe_bind(feed.durable, feed.stream)
            while not stop.is_set():
                try:
                    messages = await sub.fetch(256, timeout=1)
                except asyncio.TimeoutError:  # nothing new (nats-py raises either kind)
                    continue
                now = time.time()
                for message in messages:
                    self.arrived_at.setdefault(json.loads(message.data)["id"], now)
                    await message.ack()
        finally:
            await nc.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def measure_partners(stack: BenchStack, rate: float, seconds: float) -> PartnersResult:
    await stack.reset_tables()
    await stack.reset_stream()
    bench = PartnersBench(stack)
    receiver = Receiver()
    await receiver.start()
    reading = asyncio.Event()
    reader_task: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(bench.start)
        reader = NatsReader(stack.nats_url, await bench.register(receiver))
        reader_task = asyncio.create_task(reader.run(reading))

        def arrived() -> int:
            return min(len(receiver.arrived_at), len(reader.arrived_at))

        count = int(rate * seconds)
        work = stack.root / "partners-kinetic"
        work.mkdir(exist_ok=True)
        stop = _SPAWN.Event()
        with processes(stop) as started:
            ready = [_SPAWN.Event() for _ in range(2)]  # relay up, writer warm
            go = _SPAWN.Event()
            relay = _start(started, work / "relay.log", relay_main, stack.producer_url,
                           stack.nats_url, ready[0], stop)
            writer = _start(started, work / "writer.log", writer_main, stack.producer_url,
                            rate, count, work / "writer.json", ready[1], go)
            for flag in ready:
                await _wait_for(flag, 120)
            total = WARMUP_EVENTS + ramp_events(rate) + count
            await _until(lambda: arrived() >= WARMUP_EVENTS, DRAIN_SECONDS)
            go.set()
            await _join(writer, seconds + 60, "the writer", work / "writer.log")
            await _until(lambda: arrived() >= total, DRAIN_SECONDS)
            stop.set()
            await _join(relay, 30, "the relay", work / "relay.log")
        written = json.loads((work / "writer.json").read_text())
        measured: list[str] = written["measured"]
        committed = await commit_times(stack.producer_url, "events")
        webhook, delivered = _measured(receiver.arrived_at, committed, measured, count,
                                       written["rate"])
        over_nats, read = _measured(reader.arrived_at, committed, measured, count,
                                    written["rate"])
    finally:
        reading.set()
        if reader_task is not None:
            await reader_task
        await receiver.stop()
        bench.stop()
    raw = await measure_raw_latency(stack, rate, seconds, jetstream=True)
    return PartnersResult(rate, webhook, delivered, receiver.rejected, over_nats, read, raw)


def _measured(arrived_at: dict[str, float], committed: dict[str, float], measured: list[str],
              count: int, achieved_rate: float) -> tuple[LatencyStats, float]:
    """Latency of the measured events (commit -> arrival), and arrivals per second."""
    latencies = [arrived_at[i] - committed[i] for i in measured
                 if i in arrived_at and i in committed]
    span = (max((arrived_at[i] for i in measured if i in arrived_at), default=0.0)
            - min((committed[i] for i in measured if i in committed), default=0.0))
    per_second = len(latencies) / span if span > 0 else 0.0
    return LatencyStats.of(latencies, count, achieved_rate), per_second


async def _until(done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
