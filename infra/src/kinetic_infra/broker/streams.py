"""JetStream stream declarations: one stream per service, plus the dead-letter stream.

Both the publishing relay and every consuming service declare the streams they touch, with
the same configuration, so start-up order does not matter. ``duplicate_window`` is the span
in which JetStream drops a re-published ``Nats-Msg-Id``; beyond it the consumers' inbox is
what keeps effects exactly-once (the broker's de-duplication is a second line of defence).
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

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
