"""The committed AsyncAPI document is a well-formed AsyncAPI 3.0 description of every event.

Structure is checked here (version, one channel per event type, declared address
parameters, resolvable references, component key syntax), and the document is parsed with
FastStream's own AsyncAPI 3.0 model; the payloads are checked against the committed JSON
Schemas so the two artefacts cannot describe different events.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from faststream.specification.asyncapi.v3_0_0.schema import ApplicationSchema

from kinetic_contracts import build
from kinetic_contracts.naming import EventType, nats_subject
from kinetic_contracts.registry import EVENT_MODELS, schema_uri
from kinetic_infra.broker import asyncapi

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
DOCUMENT: dict[str, Any] = json.loads((CONTRACTS / "asyncapi.json").read_text(encoding="utf-8"))
COMPONENT_KEY = re.compile(r"^[\w.\-]+$")
ADDRESS_PARAMETER = re.compile(r"\{([^}]+)\}")
EVENT_TYPES = sorted(EVENT_MODELS)


def _pointer(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"non-local reference {ref}"
    target: Any = document
    for part in ref[2:].split("/"):
        key = unquote(part).replace("~1", "/").replace("~0", "~")
        assert isinstance(target, dict) and key in target, f"unresolvable reference {ref}"
        target = target[key]
    return target


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _pointer(DOCUMENT, node["$ref"])
    return node


def test_document_is_asyncapi_3_for_kinetic_events() -> None:
    assert DOCUMENT["asyncapi"] == "3.0.0"
    assert DOCUMENT["info"]["title"] == "Kinetic events"
    assert DOCUMENT["info"]["version"] == build.contracts_version()
    assert DOCUMENT["servers"], "a server tells readers the protocol"
    assert {server["protocol"] for server in DOCUMENT["servers"].values()} == {"nats"}


def test_faststreams_asyncapi_3_model_accepts_the_document() -> None:
    parsed = ApplicationSchema.model_validate(DOCUMENT)

    assert parsed.asyncapi == "3.0.0"
    assert sorted(parsed.channels) == EVENT_TYPES


def test_one_channel_per_event_type_on_its_subject_pattern() -> None:
    assert sorted(DOCUMENT["channels"]) == EVENT_TYPES
    for event_type, channel in DOCUMENT["channels"].items():
        parsed = EventType.parse(event_type)
        assert channel["address"] == nats_subject("{tenant}", event_type)
        assert channel["address"].split(".") == [
            "kinetic", "{tenant}", parsed.service, parsed.aggregate, parsed.event]


def test_every_address_parameter_is_declared() -> None:
    for name, channel in DOCUMENT["channels"].items():
        used = set(ADDRESS_PARAMETER.findall(channel["address"]))
        assert used == {"tenant"}, name
        assert set(channel.get("parameters", {})) == used, name


def test_every_channel_has_one_send_operation() -> None:
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for operation in DOCUMENT["operations"].values():
        channel_name = operation["channel"]["$ref"].removeprefix("#/channels/")
        by_channel.setdefault(channel_name, []).append(operation)
    assert sorted(by_channel) == EVENT_TYPES
    for channel_name, operations in by_channel.items():
        assert [op["action"] for op in operations] == ["send"], channel_name
        for ref in operations[0]["messages"]:
            assert ref["$ref"].startswith(f"#/channels/{channel_name}/messages/")


def test_every_reference_resolves_and_component_keys_are_valid() -> None:
    refs = _refs(DOCUMENT)
    assert refs
    for ref in refs:
        _pointer(DOCUMENT, ref)
    for section, entries in DOCUMENT["components"].items():
        for key in entries:
            assert COMPONENT_KEY.match(key), f"components.{section}.{key}"


def _local_refs(schema: object) -> object:
    text = json.dumps(schema).replace('"#/components/schemas/', '"#/$defs/')
    return json.loads(text)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_message_is_the_cloudevent_carrying_the_committed_payload_schema(event_type: str) -> None:
    (message_ref,) = DOCUMENT["channels"][event_type]["messages"].values()
    message = _resolve(message_ref)
    envelope = _resolve(message["payload"])
    committed = json.loads((CONTRACTS / "schemas" / build.schema_file_name(event_type))
                           .read_text(encoding="utf-8"))
    data = _resolve(envelope["properties"]["data"])

    assert message["contentType"] == asyncapi.CLOUDEVENTS_CONTENT_TYPE
    assert envelope["properties"]["type"]["const"] == event_type
    assert envelope["properties"]["source"]["const"] == \
        f"/kinetic/{EventType.parse(event_type).service}"
    assert envelope["properties"]["dataschema"]["const"] == schema_uri(event_type)
    assert "data" in envelope["required"]
    # Nested models live in the document's components and in the schema file's $defs.
    assert _local_refs(data["properties"]) == committed["properties"]
    assert data.get("required") == committed.get("required")
    assert data.get("additionalProperties") == committed.get("additionalProperties")
