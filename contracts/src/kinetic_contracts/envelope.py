"""The CloudEvents 1.0 envelope (structured JSON mode) and the base of every event payload.

The envelope is a pydantic model rather than the ``cloudevents`` SDK's class because it is
a *contract*: its JSON Schema is generated and committed alongside the payload schemas, and
the Kinetic extension attributes are typed. The attribute names follow the spec (lower-case
alphanumerics only for extensions).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

DataClass = Literal["identifiers", "contact_details", "clinical_free_text"]
DATA_CLASSES: tuple[DataClass, ...] = ("identifiers", "contact_details", "clinical_free_text")


class EventData(BaseModel):
    """Base of every event payload. ``event_type`` is the CloudEvents ``type``; within one
    version, changes are additive only (new optional fields). New meaning is a new version.

    Unknown fields are ignored, not rejected (a tolerant reader): a consumer on an older
    release of this package keeps accepting an event that gained an optional field."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    aggregate_id_field: ClassVar[str]
    #: What the payload may hold. "identifiers" (ids, codes, dates): a partner gets the event
    #: when its grant names the type. A richer class (names and contact details, clinical free
    #: text) reaches a partner only through the partners service's disclosure, when the
    #: partner is granted that class and the patient consented to that partner.
    data_class: ClassVar[DataClass] = "identifiers"

    def aggregate_id(self) -> UUID:
        return getattr(self, self.aggregate_id_field)


class CloudEvent(BaseModel):
    """A Kinetic event on the wire: CloudEvents 1.0 attributes plus Kinetic's extensions."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: UUID = Field(description="UUIDv7; also the NATS message id used for de-duplication")
    source: str = Field(pattern=r"^/kinetic/[a-z][a-z0-9_]*$", description="/kinetic/<service>")
    type: str = Field(pattern=r"^kinetic(\.[a-z][a-z0-9_]*){3}\.v[1-9][0-9]*$",
                      description="kinetic.<service>.<aggregate>.<event>.v<N>")
    subject: str = Field(description="The aggregate id the event belongs to")
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = Field(default=None, description="URI of the payload's JSON Schema")
    data: dict[str, Any]
    tenantid: UUID = Field(description="The organization the event belongs to")
    locationid: UUID | None = None
    episodeid: UUID | None = None
    sequence: int = Field(ge=1, description="Version of the event in its aggregate's stream")
    correlationid: UUID | None = None
    causationid: UUID | None = None
    traceparent: str | None = Field(default=None, description="W3C trace context")

    def payload(self) -> EventData:
        from kinetic_contracts.registry import model_for

        return model_for(self.type).model_validate(self.data)
