"""FastStream wiring: one durable JetStream pull consumer per Subscription.

Acknowledgement is manual, after the inbox transaction commits (see inbox/consumer.py):
ack on applied/duplicate/ignored/rejected/dead-lettered, nack with a growing delay on a
transient failure. JetStream's own ``max_deliver`` is unlimited because the dead-letter
decision is ours (it must record the message for the admin page before giving up).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import nats
from faststream import AckPolicy, FastStream
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy

from kinetic_contracts.naming import service_subjects, stream_name_for_service
from kinetic_infra.broker.streams import (
    DEAD_LETTER_STREAM,
    dead_letter_stream,
    dead_letter_subject,
    ensure_stream,
    service_stream,
)
from kinetic_infra.db.database import Database
from kinetic_infra.inbox.consumer import InboxConsumer, Outcome, Subscription, retry_delay

log = logging.getLogger(__name__)

_ACKED = {Outcome.APPLIED, Outcome.DUPLICATE, Outcome.IGNORED, Outcome.REJECTED,
          Outcome.DEAD_LETTERED}


async def declare_streams(nats_url: str, services: Sequence[str]) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for service in sorted(set(services)):
            await ensure_stream(js, service_stream(service))
        await ensure_stream(js, dead_letter_stream())
    finally:
        await nc.drain()


def build_consumer_app(nats_url: str, db: Database, subscriptions: Sequence[Subscription],
                       *, ack_wait: float = 60.0) -> tuple[FastStream, NatsBroker]:
    broker = NatsBroker(nats_url, max_reconnect_attempts=-1)

    async def publish_dead_letter(consumer: str, payload: bytes, headers: dict[str, str]) -> None:
        await broker.publish(payload, dead_letter_subject(consumer), headers=headers,
                             stream=DEAD_LETTER_STREAM)

    for subscription in subscriptions:
        _register(broker, InboxConsumer(db, subscription, publish_dead_letter), ack_wait)

    app = FastStream(broker)

    @app.on_startup
    async def _declare() -> None:
        await declare_streams(nats_url, [s.source_service for s in subscriptions])

    return app, broker


def _register(broker: NatsBroker, consumer: InboxConsumer, ack_wait: float) -> None:
    subscription = consumer.subscription

    @broker.subscriber(
        service_subjects(subscription.source_service),
        stream=JStream(name=stream_name_for_service(subscription.source_service), declare=False),
        durable=subscription.name,
        pull_sub=PullSub(batch_size=64, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
        config=ConsumerConfig(
            durable_name=subscription.name,
            ack_policy=JsAckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait,
            max_deliver=-1,
            max_ack_pending=1000,
        ),
        title=subscription.name,
    )
    async def handle(msg: NatsMessage) -> None:
        raw = msg.raw_message
        attempt = raw.metadata.num_delivered if raw.metadata else 1
        message_id = (raw.headers or {}).get("Nats-Msg-Id") or msg.message_id
        outcome = await consumer.handle(message_id=message_id, subject=raw.subject,
                                        payload=raw.data, attempt=attempt)
        if outcome in _ACKED:
            await msg.ack()
        else:
            await msg.nack(delay=retry_delay(attempt))
