"""Value types of the event store: stream names, expected versions, new and recorded events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel

from kinetic_contracts import EventData


@dataclass(frozen=True)
class StreamName:
    """``<category>-<id>``, the EventStoreDB convention (``patient-…``, ``episode-…``)."""

    category: str
    id: UUID

    def __str__(self) -> str:
        return f"{self.category}-{self.id}"


@dataclass(frozen=True)
class Any_:
    """Append whatever the stream's current version is (still serialised by the unique key)."""


@dataclass(frozen=True)
class NoStream:
    """The stream must not exist yet: creation commands use this."""


@dataclass(frozen=True)
class Exactly:
    version: int


ExpectedVersion = Any_ | NoStream | Exactly
ANY = Any_()
NO_STREAM = NoStream()


class StoredEvent(BaseModel):
    """Base of a service's private (stored) event payload. It may hold more than the public
    contract, e.g. a patient's name, which never goes on the wire unless granted."""

    model_config = {"frozen": True, "extra": "forbid"}
    event_type: ClassVar[str]


@dataclass(frozen=True)
class NewEvent:
    """What a decider produced, ready to append. ``public`` is what the outbox publishes;
    ``None`` keeps the event internal to the service."""

    data: BaseModel
    public: EventData | None

    @classmethod
    def of(cls, data: EventData) -> NewEvent:
        """An event whose stored and public payloads are the same contract model."""
        return cls(data=data, public=data)

    @property
    def type(self) -> str:
        return type(self.data).event_type  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EventContext:
    """Who and why: copied into every event's metadata and CloudEvents extensions."""

    tenant_id: UUID
    location_id: UUID | None = None
    episode_id: UUID | None = None
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    traceparent: str | None = None


@dataclass(frozen=True)
class RecordedEvent:
    event_id: UUID
    stream_name: str
    version: int
    global_position: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    tenant_id: UUID
    recorded_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)
