"""Event-type and subject naming rules (ARCHITECTURE.md, "Events").

type:    kinetic.<service>.<aggregate>.<event>.v<N>   e.g. kinetic.booking.episode.opened.v1
subject: kinetic.<tenant>.<service>.<aggregate>.<event>   (no version: a consumer that
         upcasts reads every version of an event from one subject)
stream:  one JetStream stream per service, named after it in upper case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

_TOKEN = r"[a-z][a-z0-9_]*"
_TYPE = re.compile(rf"^kinetic\.({_TOKEN})\.({_TOKEN})\.({_TOKEN})\.v([1-9][0-9]*)$")


@dataclass(frozen=True)
class EventType:
    service: str
    aggregate: str
    event: str
    version: int

    @classmethod
    def parse(cls, value: str) -> EventType:
        match = _TYPE.match(value)
        if match is None:
            raise ValueError(
                f"event type {value!r} is not kinetic.<service>.<aggregate>.<event>.v<N>"
            )
        service, aggregate, event, version = match.groups()
        return cls(service, aggregate, event, int(version))

    def __str__(self) -> str:
        return f"kinetic.{self.service}.{self.aggregate}.{self.event}.v{self.version}"

    @property
    def unversioned(self) -> str:
        return f"{self.service}.{self.aggregate}.{self.event}"


def nats_subject(tenant_id: UUID | str, event_type: str | EventType) -> str:
    parsed = event_type if isinstance(event_type, EventType) else EventType.parse(event_type)
    return f"kinetic.{tenant_id}.{parsed.unversioned}"


def service_subjects(service: str) -> str:
    """The wildcard that a service's stream captures: every tenant, every aggregate."""
    return f"kinetic.*.{service}.>"


def stream_name_for_service(service: str) -> str:
    return service.upper()
