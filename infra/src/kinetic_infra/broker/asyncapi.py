"""The AsyncAPI 3.0 description of every event Kinetic publishes, as a FastStream app.

``app`` is never run: it exists so that ``faststream docs gen
kinetic_infra.broker.asyncapi:app`` can describe the contract. It declares one publisher per
registered event type, on the channel ``kinetic.{tenant}.<service>.<aggregate>.<event>``, whose
message payload is the CloudEvent envelope with ``type`` and ``source`` pinned and ``data``
typed as that event's model. Everything comes from ``kinetic_contracts``, so the document
cannot drift from the models and JSON Schemas generated from the same registry.

FastStream's generator leaves a few things that AsyncAPI 3.0 tooling rejects or that would be
wrong for Kinetic; ``KineticAsyncAPI`` corrects them and re-parses the result with
FastStream's own 3.0 model:

* the ``{tenant}`` expression in each channel address is declared in ``parameters`` (the
  spec requires every address parameter to be declared);
* component message keys drop FastStream's ``:Message`` suffix, since component keys must
  match ``^[A-Za-z0-9._-]+$``;
* messages state the relay's real headers, content type and correlation location;
* channels lose FastStream's ``nats`` channel binding, which only repeats the address and
  which the NATS binding reserves (it must have no properties);
* channels, operations and components are sorted, because the broker keeps its publishers in
  an unordered set and the committed document must be byte-for-byte reproducible.
"""

from __future__ import annotations

from typing import Any, Literal

from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.v3_0_0.schema import ApplicationSchema
from pydantic import Field, create_model

from kinetic_contracts.build import contracts_version, subject_template
from kinetic_contracts.envelope import CloudEvent, EventData
from kinetic_contracts.naming import EventType
from kinetic_contracts.registry import EVENT_MODELS, schema_uri

TITLE = "Kinetic events"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
SERVER_URL = "nats://localhost:4222"
_FASTSTREAM_MESSAGE_SUFFIX = ":Message"

DESCRIPTION = """\
Every event Kinetic publishes on NATS JetStream, one channel per event type.

Each message is a CloudEvents 1.0 envelope in structured JSON mode; its `data` is the event's
payload, whose JSON Schema is the URI in `dataschema`. Subjects carry no version, so one
subscription receives every version of an event (`type` ends in `.v<N>`): consumers upcast.
Within a version changes are additive only; a breaking change is a new version.

Each service's events are kept in one stream named after the service in upper case, capturing
`kinetic.*.<service>.>`. The `Nats-Msg-Id` header is the event id: JetStream drops a
re-publication of the same id within its duplicate window, and consumers de-duplicate on it
beyond that.

Partner systems read the events their grant covers on subjects of their own,
`kinetic.{tenant}.partners.feed.{partner}.<service>.<aggregate>.<event>` in the `PARTNERS`
stream: the same messages (the envelope keeps the event's own id), through the durable
consumer `partner-{partner}`, connected with the partner's NATS key as the token. The server
allows a partner nothing else (`kinetic_contracts.partner_feed`).
"""

_TENANT_PARAMETER = {
    "description": "The organization (tenant) the event belongs to: the envelope's `tenantid`.",
}

_HEADERS_SCHEMA = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "format": "uuid",
            "description": "The event id (the envelope's `id`), used for de-duplication.",
        },
        "Content-Type": {"type": "string", "const": CLOUDEVENTS_CONTENT_TYPE},
        "traceparent": {"type": "string", "description": "W3C trace context, when traced."},
    },
    "required": ["Nats-Msg-Id", "Content-Type"],
}


def _class_stem(event_type: str) -> str:
    parsed = EventType.parse(event_type)
    words = f"{parsed.service}_{parsed.aggregate}_{parsed.event}".split("_")
    return "".join(word.capitalize() for word in words) + f"V{parsed.version}"


def envelope_model(model: type[EventData]) -> type[CloudEvent]:
    """The CloudEvent of one event type, as a pydantic model for the AsyncAPI payload.

    The payload model is subclassed under a versioned name because component schemas are
    keyed by class name: ``EpisodeOpened`` v1 and v2 must not overwrite each other.
    """
    event_type = model.event_type
    parsed = EventType.parse(event_type)
    stem = _class_stem(event_type)
    data_model = create_model(
        f"{stem}Data",
        __base__=model,
        __doc__=model.__doc__ or f"The payload (`data`) of {event_type}.",
    )
    uri = schema_uri(event_type)
    # Literal of a runtime value: pins the attribute to one constant in the schema.
    pinned_type: Any = Literal[event_type]  # type: ignore[valid-type]
    pinned_source: Any = Literal[f"/kinetic/{parsed.service}"]  # type: ignore[valid-type]
    pinned_uri: Any = Literal[uri]  # type: ignore[valid-type]
    return create_model(
        f"{stem}Event",
        __base__=CloudEvent,
        __doc__=f"A {event_type} event in its CloudEvents envelope.",
        type=(pinned_type, Field(description="The CloudEvents type")),
        source=(pinned_source, Field(description="The publishing service")),
        subject=(str, Field(description=f"The aggregate id: `data.{model.aggregate_id_field}`")),
        dataschema=(pinned_uri, Field(default=uri, description="URI of the payload's JSON Schema")),
        data=(data_model, ...),
    )


class KineticAsyncAPI(AsyncAPI):
    """FastStream's AsyncAPI 3.0 factory, with the corrections listed in the module doc."""

    def to_specification(self) -> ApplicationSchema:
        document = super().to_specification().to_jsonable()
        return ApplicationSchema.model_validate(normalise(document))


def normalise(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    old_messages: dict[str, Any] = components.get("messages", {})
    renamed = {key: key.removesuffix(_FASTSTREAM_MESSAGE_SUFFIX) for key in old_messages}

    messages: dict[str, Any] = {}
    for old_key, message in old_messages.items():
        event_type = renamed[old_key]
        message.update(
            {
                "name": event_type,
                "title": event_type,
                "summary": f"A {event_type} CloudEvent",
                "contentType": CLOUDEVENTS_CONTENT_TYPE,
                "correlationId": {
                    "description": "Shared by every event caused by one request",
                    "location": "$message.payload#/correlationid",
                },
                "headers": _HEADERS_SCHEMA,
            }
        )
        messages[event_type] = message
    components["messages"] = dict(sorted(messages.items()))
    components["schemas"] = dict(sorted(components.get("schemas", {}).items()))

    for channel in document.get("channels", {}).values():
        channel["parameters"] = {"tenant": dict(_TENANT_PARAMETER)}
        channel.pop("bindings", None)
        for ref in channel.get("messages", {}).values():
            target = ref["$ref"].removeprefix("#/components/messages/")
            if target in renamed:
                ref["$ref"] = f"#/components/messages/{renamed[target]}"

    document["channels"] = dict(sorted(document.get("channels", {}).items()))
    document["operations"] = dict(sorted(document.get("operations", {}).items()))
    return document


def build_app() -> FastStream:
    broker = NatsBroker(
        SERVER_URL,
        protocol_version=None,
        description="NATS JetStream of a local Kinetic stack; every deployment uses the same "
                    "subjects and streams.",
    )
    for event_type, model in sorted(EVENT_MODELS.items()):
        parsed = EventType.parse(event_type)
        broker.publisher(
            subject_template(event_type),
            title=event_type,
            description=(
                f"{event_type} events of every tenant's {parsed.aggregate} aggregates, "
                f"published by the {parsed.service} service. The subject has no version: "
                f"later versions of `{parsed.unversioned}` share this channel."
            ),
            schema=envelope_model(model),
        )
    specification = KineticAsyncAPI(
        title=TITLE,
        version=contracts_version(),
        description=DESCRIPTION,
        schema_version="3.0.0",
    )
    return FastStream(broker, specification=specification)


app = build_app()
