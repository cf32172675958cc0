"""JetStream stream declarations (one stream per service, plus the dead-letter stream) and
the durable consumers' life: created once, re-created when lost, rewound by an operator.

Both the publishing relay and every consuming service declare the streams they touch, with
the same configuration, so start-up order does not matter. ``duplicate_window`` is the span
in which JetStream drops a re-published ``Nats-Msg-Id``; beyond it the consumers' inbox is
what keeps effects exactly-once (the broker's de-duplication is a second line of defence).
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from kinetic_contracts.naming import service_subjects, stream_name_for_service

DUPLICATE_WINDOW_SECONDS = 120.0
DEAD_LETTER_STREAM = "DEADLETTER"


def dead_letter_subject(consumer: str) -> str:
    return f"deadletter.{consumer}"


def service_stream(service: str, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=stream_name_for_service(service),
        subjects=[service_subjects(service)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


def dead_letter_stream(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=DEAD_LETTER_STREAM,
        subjects=["deadletter.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError:
        # Exists with a different configuration (an upgrade): converge on ours.
        await js.update_stream(config)


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> bool:
    """Create the durable consumer if it does not exist, and say whether it had to. An
    existing one keeps its position and its start (a rewound one starts where the operator
    put it)."""
    assert config.durable_name
    try:
        await js.consumer_info(stream, config.durable_name)
        return False
    except NotFoundError:
        await js.add_consumer(stream, config)
        return True


async def rewind_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> bool:
    """Replace the durable consumer by ``config``, whose deliver policy says where it starts
    again. A consumer that does not exist yet has no position to move: False, and nothing
    is created (its first reader creates it from its own start)."""
    assert config.durable_name
    try:
        await js.delete_consumer(stream, config.durable_name)
    except NotFoundError:
        return False
    try:
        await js.add_consumer(stream, config)
    except BadRequestError:
        # A reader found it missing and re-created it from its default start in between:
        # rewind that one.
        await js.delete_consumer(stream, config.durable_name)
        await js.add_consumer(stream, config)
    return True
