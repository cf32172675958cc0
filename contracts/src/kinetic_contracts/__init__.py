"""Kinetic's public event contracts.

Partners can depend on this package alone: the CloudEvents 1.0 envelope, one pydantic
model per event, the subject naming rules and the registry of event types.
"""

from kinetic_contracts.envelope import CloudEvent, EventData
from kinetic_contracts.naming import EventType, nats_subject, stream_name_for_service
from kinetic_contracts.registry import EVENT_MODELS, model_for

__all__ = [
    "EVENT_MODELS",
    "CloudEvent",
    "EventData",
    "EventType",
    "model_for",
    "nats_subject",
    "stream_name_for_service",
]
