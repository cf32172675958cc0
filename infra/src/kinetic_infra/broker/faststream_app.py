"""The consumer process: a FastStream application hosting one durable JetStream pull
consumer per Subscription.

FastStream owns the broker connection, the process lifecycle (signals, start-up and
shutdown hooks) and the dead-letter publisher. The pull loops are ours, for two reasons
found the hard way (tests/bench and infra/tests/test_inbox_consumers.py):

- order: FastStream runs the messages of one pull as concurrent tasks, so an
  ``episode.closed`` could be applied before its ``episode.opened``. We apply a pull's
  messages in stream order, in one transaction (inbox/consumer.py).
- latency without loss: FastStream's batch mode waits for a batch to fill; the short fetch
  time-outs that would need lose messages to a race in Python 3.11's ``asyncio.wait_for``
  (redelivered only after ``ack_wait``). Our pull returns as soon as a message is there and
  waits ``PULL_TIMEOUT`` only when idle.

Acknowledgement is manual, after the inbox transaction commits: ack on applied / duplicate
/ ignored / rejected / dead-lettered, nack with a growing delay on a transient failure.
JetStream's ``max_deliver`` is unlimited because the dead-letter decision is ours (it must
record the message for the admin page before giving up).

A durable consumer that disappears (deleted by hand, lost with a NATS node's state) is
re-created from the stream's start: the inbox skips what was already handled, so nothing is
applied twice, and nothing published meanwhile is missed. ``catch-up`` (service/__main__.py)
rewinds one on purpose, for a handler an upgrade added for events already in the stream.

A pull loop outlives any failure (PostgreSQL away while a dead letter is recorded, an ack
on a closed connection, …): it logs, waits a growing pause and goes on, since what it had
not acked comes back after ``ack_wait``. A loop that ends all the same stops the process,
so that its supervisor restarts it instead of it running on without consuming.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import nats
from faststream import FastStream
from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from kinetic_contracts.naming import service_subjects, stream_name_for_service
from kinetic_infra.backoff import Backoff
from kinetic_infra.broker.streams import (
    DEAD_LETTER_STREAM,
    dead_letter_stream,
    dead_letter_subject,
    ensure_consumer,
    ensure_stream,
    service_stream,
)
from kinetic_infra.db.database import Database
from kinetic_infra.inbox.consumer import (
    Delivery,
    InboxConsumer,
    Outcome,
    Subscription,
    retry_delay,
)
from kinetic_infra.settings import nats_servers

log = logging.getLogger(__name__)

BATCH_SIZE = 100
PULL_TIMEOUT = 5.0  # seconds an idle pull waits for a first message
FAILURE_PAUSE = 0.5  # seconds after a pull loop's failure, doubling while failures repeat …
MAX_FAILURE_PAUSE = 30.0  # … up to this

_ACKED = {Outcome.APPLIED, Outcome.DUPLICATE, Outcome.IGNORED, Outcome.REJECTED,
          Outcome.DEAD_LETTERED}


async def declare_streams(nats_url: str, services: Sequence[str], replicas: int = 1) -> None:
    nc = await nats.connect(nats_servers(nats_url))
    try:
        js = nc.jetstream()
        for service in sorted(set(services)):
            await ensure_stream(js, service_stream(service, replicas))
        await ensure_stream(js, dead_letter_stream(replicas))
    finally:
        await nc.drain()


def consumer_config(subscription: Subscription, ack_wait: float,
                    since: datetime | None = None) -> ConsumerConfig:
    """The subscription's durable consumer: from the stream's start, or from ``since``."""
    return ConsumerConfig(
        durable_name=subscription.name,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.BY_START_TIME if since else DeliverPolicy.ALL,
        opt_start_time=since.astimezone(UTC) if since else None,
        filter_subject=service_subjects(subscription.source_service),
        ack_wait=ack_wait,
        max_deliver=-1,
        max_ack_pending=1000,
    )


def _delivery(msg: Msg) -> Delivery:
    headers = msg.headers or {}
    return Delivery(message_id=headers.get("Nats-Msg-Id") or _message_id(msg),
                    subject=msg.subject, payload=msg.data,
                    attempt=msg.metadata.num_delivered if msg.metadata else 1)


def _message_id(msg: Msg) -> str:
    """The inbox key of a message published without ``Nats-Msg-Id``: the same on every
    redelivery and every re-publish (the reply subject is new on each delivery)."""
    try:
        event_id = json.loads(msg.data).get("id")
    except (ValueError, AttributeError):  # not JSON, or not an object
        event_id = None
    if event_id is not None:
        return str(event_id)  # what the relay puts in Nats-Msg-Id
    # Not a CloudEvent (it will be dead-lettered): its place in the stream never changes.
    return f"{msg.metadata.stream}:{msg.metadata.sequence.stream}"


class PullLoop:
    """One durable pull consumer: pull, apply in order, then ack or nack each message."""

    def __init__(self, js: JetStreamContext, consumer: InboxConsumer, ack_wait: float) -> None:
        self.js = js
        self.consumer = consumer
        self.ack_wait = ack_wait

    async def run(self) -> None:
        sub = self.consumer.subscription
        stream, config = stream_name_for_service(sub.source_service), consumer_config(
            sub, self.ack_wait)
        pull: JetStreamContext.PullSubscription | None = None
        backoff = Backoff(FAILURE_PAUSE, MAX_FAILURE_PAUSE)
        try:
            while True:
                try:
                    if pull is None:
                        pull = await self.js.pull_subscribe(
                            service_subjects(sub.source_service), durable=sub.name,
                            stream=stream, config=config)
                    await self._pull_once(pull, stream, config)
                except Exception:  # noqa: BLE001 - a loop that ended would consume no more
                    pause = backoff.next()
                    log.exception("consumer %s: pull loop failed, going on in %.1f s (what "
                                  "was not acked is redelivered after ack_wait)", sub.name,
                                  pause)
                    await asyncio.sleep(pause)
                else:
                    backoff.reset()
        finally:
            # A pull subscription left behind holds the connection's drain at shutdown until
            # its timeout (30 s): nothing reads what a last fetch still brings it. Without it
            # the connection drains at once; the durable consumer stays on the server.
            if pull is not None:
                with contextlib.suppress(Exception):
                    await pull.unsubscribe()

    async def _pull_once(self, pull: JetStreamContext.PullSubscription, stream: str,
                         config: ConsumerConfig) -> None:
        try:
            messages = await pull.fetch(BATCH_SIZE, timeout=PULL_TIMEOUT)
        except TimeoutError:
            return
        except nats.js.errors.ServiceUnavailableError:
            # No one answers the pull: NATS is electing a leader, or the consumer is gone.
            await self._recreate_if_missing(stream, config)
            await asyncio.sleep(1)
            return
        except nats.errors.ConnectionClosedError:
            await asyncio.sleep(1)  # unacked messages are redelivered after ack_wait
            return
        messages.sort(key=lambda m: m.metadata.sequence.stream)
        deliveries = [_delivery(m) for m in messages]
        outcomes = await self.consumer.handle_batch(deliveries)
        for msg, delivery, outcome in zip(messages, deliveries, outcomes, strict=True):
            if outcome in _ACKED:
                await msg.ack()
            else:
                await msg.nak(delay=retry_delay(delivery.attempt))

    async def _recreate_if_missing(self, stream: str, config: ConsumerConfig) -> None:
        try:
            if await ensure_consumer(self.js, stream, config):
                log.warning("durable consumer %s was missing: re-created, reading %s from "
                            "its start (the inbox skips what was handled)",
                            config.durable_name, stream)
        except (nats.errors.Error, TimeoutError) as exc:
            log.info("durable consumer %s not reachable yet: %s", config.durable_name,
                     type(exc).__name__)


def build_consumer_app(nats_url: str, db: Database, subscriptions: Sequence[Subscription],
                       *, ack_wait: float = 60.0, stream_replicas: int = 1
                       ) -> tuple[FastStream, NatsBroker]:
    broker = NatsBroker(nats_servers(nats_url), max_reconnect_attempts=-1)
    app = FastStream(broker)
    tasks: list[asyncio.Task[None]] = []

    async def publish_dead_letter(consumer: str, payload: bytes, headers: dict[str, str]) -> None:
        await broker.publish(payload, dead_letter_subject(consumer), headers=headers,
                             stream=DEAD_LETTER_STREAM)

    @app.on_startup
    async def _declare() -> None:
        await declare_streams(nats_url, [s.source_service for s in subscriptions],
                              stream_replicas)

    def _loop_ended(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return  # shutting down
        log.critical("consumer %s: pull loop ended; stopping the process for its supervisor "
                     "to restart it", task.get_name(), exc_info=task.exception())
        app.exit()

    @app.after_startup
    async def _start_loops() -> None:
        js = broker.config.connection_state.stream
        for subscription in subscriptions:
            loop = PullLoop(js, InboxConsumer(db, subscription, publish_dead_letter), ack_wait)
            task = asyncio.create_task(loop.run(), name=subscription.name)
            task.add_done_callback(_loop_ended)
            tasks.append(task)

    @app.on_shutdown
    async def _stop_loops() -> None:
        for task in tasks:
            task.cancel()
        # A loop that had ended is logged already: its error must not fail the shutdown.
        await asyncio.gather(*tasks, return_exceptions=True)
        tasks.clear()

    return app, broker
