"""Every registered event model agrees with the naming rules and with its committed schema.

No JSON Schema validator is a dependency, so schema and model are checked against each other
through pydantic: an instance built from the committed schema alone must validate against the
model, round-trip unchanged, travel inside a CloudEvent and come back out of ``payload()``;
the schema's required fields and closedness must be exactly what the model enforces.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kinetic_contracts import build
from kinetic_contracts.envelope import CloudEvent, EventData
from kinetic_contracts.naming import EventType, nats_subject, stream_name_for_service
from kinetic_contracts.registry import EVENT_MODELS, model_for, schema_uri

SCHEMAS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"
TENANT = uuid.UUID("0190c2a4-7b1e-7000-8000-000000000001")
EVENT_TYPES = sorted(EVENT_MODELS)


def _load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def example_from_schema(root: dict[str, Any], node: dict[str, Any], seed: int = 1,
                        given: dict[str, Any] | None = None) -> Any:
    """A value that the schema admits, with every optional property filled in too; ``given``
    supplies top-level properties this generator cannot invent (patterned strings)."""
    node = _resolve(root, node)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            branch = next(b for b in node[keyword] if b.get("type") != "null")
            return example_from_schema(root, branch, seed)
    kind = node["type"]
    if kind == "object":
        given = given or {}
        return {name: given[name] if name in given else example_from_schema(root, prop, seed + i)
                for i, (name, prop) in enumerate(sorted(node.get("properties", {}).items()))}
    if kind == "array":
        return [example_from_schema(root, node["items"], seed)
                for _ in range(max(1, node.get("minItems", 1)))]
    if kind == "boolean":
        return True
    if kind == "integer":
        return node.get("minimum", node.get("maximum", seed))
    if kind == "number":
        return float(node.get("minimum", node.get("maximum", seed)))
    if kind == "string":
        if "pattern" in node:  # a patterned string brings its own example
            example = (node.get("examples") or [None])[0]
            assert example is not None and re.search(node["pattern"], example), \
                "give this patterned string a matching example"
            return example
        fmt = node.get("format")
        if fmt == "uuid":
            return str(uuid.UUID(int=(0x0190C2A47B1E7000 << 64) | 0x8000000000000000 | seed))
        if fmt == "date-time":
            return "2025-03-01T09:30:00Z"
        if fmt == "date":
            return "2025-03-01"
        assert fmt is None, f"teach example_from_schema the {fmt} format"
        length = max(node.get("minLength", 0), 1)
        return "x" * min(length, node.get("maxLength", length))
    raise AssertionError(f"teach example_from_schema the {kind} type")


def _example(event_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = _load(build.schema_file_name(event_type))
    return schema, example_from_schema(schema, schema)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_event_type_follows_the_naming_rules(event_type: str) -> None:
    model = EVENT_MODELS[event_type]
    parsed = EventType.parse(event_type)

    assert str(parsed) == event_type == model.event_type
    assert model_for(event_type) is model
    subject = nats_subject(TENANT, event_type)
    tokens = subject.split(".")
    assert len(tokens) == 5
    assert tokens == ["kinetic", str(TENANT), parsed.service, parsed.aggregate, parsed.event]
    assert stream_name_for_service(parsed.service) == parsed.service.upper()
    assert model.aggregate_id_field in model.model_fields


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_names_itself_as_events_name_it(event_type: str) -> None:
    schema = _load(build.schema_file_name(event_type))

    assert schema["$id"] == schema_uri(event_type)
    assert schema["title"] == event_type
    assert schema["description"]
    assert schema["x-kinetic-subject"] == nats_subject("{tenant}", event_type)
    assert schema["x-kinetic-aggregate-id-field"] == EVENT_MODELS[event_type].aggregate_id_field


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_example_validates_and_round_trips_through_the_model(event_type: str) -> None:
    model = EVENT_MODELS[event_type]
    schema, example = _example(event_type)

    instance = model.model_validate(example)

    assert instance.model_dump(mode="json") == example
    assert set(example) == set(schema["properties"])


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_required_and_closed_match_the_model(event_type: str) -> None:
    model = EVENT_MODELS[event_type]
    schema, example = _example(event_type)
    required = set(schema.get("required", ()))
    assert required, "an event without required fields carries no aggregate id"
    assert model.aggregate_id_field in required

    for name in schema["properties"]:
        partial = {k: v for k, v in example.items() if k != name}
        if name in required:
            with pytest.raises(ValidationError):
                model.model_validate(partial)
        else:
            model.model_validate(partial)

    extra = {**example, "not_in_the_contract": 1}
    if schema.get("additionalProperties") is False:
        with pytest.raises(ValidationError):
            model.model_validate(extra)
    else:
        model.model_validate(extra)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_example_travels_in_a_cloudevent_and_comes_back_from_payload(event_type: str) -> None:
    model: type[EventData] = EVENT_MODELS[event_type]
    parsed = EventType.parse(event_type)
    _, data = _example(event_type)
    envelope_schema = _load(build.ENVELOPE_FILE)
    envelope = example_from_schema(envelope_schema, envelope_schema, given={
        "source": f"/kinetic/{parsed.service}",
        "type": event_type,
        "subject": data[model.aggregate_id_field],
        "dataschema": schema_uri(event_type),
        "tenantid": str(TENANT),
        "data": data,
    })
    assert set(envelope) == set(envelope_schema["properties"])

    event = CloudEvent.model_validate_json(json.dumps(envelope))
    payload = event.payload()

    assert isinstance(payload, model)
    assert payload == model.model_validate(data)
    assert str(payload.aggregate_id()) == event.subject
    assert event.dataschema == _load(build.schema_file_name(event_type))["$id"]


def test_index_lists_every_schema_file() -> None:
    index = _load(build.INDEX_FILE)
    files = {p.name for p in SCHEMAS.glob("*.json")} - {build.INDEX_FILE}

    assert index["envelope"]["file"] == build.ENVELOPE_FILE
    assert [e["type"] for e in index["events"]] == EVENT_TYPES
    assert {e["file"] for e in index["events"]} | {build.ENVELOPE_FILE} == files
    for entry in index["events"]:
        assert _load(entry["file"])["$id"] == entry["$id"] == schema_uri(entry["type"])


def test_envelope_schema_is_the_cloudevent_model() -> None:
    schema = _load(build.ENVELOPE_FILE)

    assert schema["$id"] == build.ENVELOPE_SCHEMA_URI
    assert set(schema["properties"]) == set(CloudEvent.model_fields)
    assert set(schema["required"]) == {
        name for name, field in CloudEvent.model_fields.items() if field.is_required()
    }
