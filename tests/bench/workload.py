"""The events every scenario writes, built the Kinetic way and the raw way.

Nothing is measured here. Both ways describe the same booking event (an episode opened, a
public contract event, so it also gets an outbox row): Kinetic's through the contract model
and the event store, the raw one as a plain dict that the baseline serialises itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from kinetic_contracts.booking.v1.events import EpisodeOpened
from kinetic_contracts.naming import nats_subject
from kinetic_contracts.registry import schema_uri
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.event_store.model import EventContext, NewEvent, StreamName

TENANT_ID = UUID("0194f1d2-0000-7000-8000-000000000001")
LOCATION_ID = UUID("0194f1d2-0000-7000-8000-000000000002")
CONTEXT = EventContext(tenant_id=TENANT_ID)
EVENT_TYPE = EpisodeOpened.event_type
SUBJECT = nats_subject(TENANT_ID, EVENT_TYPE)  # kinetic.<tenant>.booking.episode.opened
SOURCE = "/kinetic/booking"
EVENTS_PER_STREAM = 100  # a writer moves on to a fresh stream after this many events


def episode_opened(episode_id: UUID) -> NewEvent:
    return NewEvent.of(EpisodeOpened(
        episode_id=episode_id, patient_id=uuid4(), location_id=LOCATION_ID,
        symptom_site="knee_anterior", opened_at=datetime.now(UTC),
    ))


def raw_episode_data(episode_id: UUID) -> dict[str, Any]:
    return {
        "episode_id": str(episode_id), "patient_id": str(uuid4()),
        "location_id": str(LOCATION_ID), "symptom_site": "knee_anterior",
        "referral": False, "goal_target_date": None,
        "opened_at": datetime.now(UTC).isoformat(),
    }


def raw_envelope(event_id: UUID, episode_id: UUID, version: int, recorded_at: datetime,
                 data: dict[str, Any]) -> bytes:
    """The same CloudEvents JSON that the event store writes to the outbox."""
    return json.dumps({
        "specversion": "1.0", "id": str(event_id), "source": SOURCE, "type": EVENT_TYPE,
        "subject": str(episode_id), "time": recorded_at.isoformat(),
        "datacontenttype": "application/json", "dataschema": schema_uri(EVENT_TYPE),
        "data": data, "tenantid": str(TENANT_ID), "sequence": version,
    }, separators=(",", ":")).encode()


@dataclass
class StreamCursor:
    """One writer's own streams: where the next batch goes and the version it expects."""

    episode_id: UUID = field(default_factory=uuid4)
    version: int = 0

    @property
    def stream(self) -> StreamName:
        return StreamName("episode", self.episode_id)

    def advance(self, appended: int) -> None:
        self.version += appended
        if self.version >= EVENTS_PER_STREAM:
            self.episode_id, self.version = uuid4(), 0


def new_event_id() -> UUID:
    return new_id()
