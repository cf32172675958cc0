"""Generate the committed JSON Schemas of Kinetic's public events.

Guarantees:

* one file per registered event type, ``<event_type>.json``, describing the CloudEvent's
  ``data``; its ``$id`` is ``schema_uri(event_type)``, the same URI that every published
  event carries in its ``dataschema`` attribute, so a consumer can fetch the schema an event
  names;
* ``cloudevent.json`` for the envelope and ``index.json`` listing every file;
* byte-for-byte determinism (sorted keys, two-space indent, trailing newline), so that the
  committed files can be compared with a fresh generation in a test and reviewed as diffs.

Only pydantic is needed: partners install this package alone. Run it as
``python -m kinetic_contracts.build [--out DIR] [--check]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from kinetic_contracts.envelope import CloudEvent, EventData
from kinetic_contracts.naming import EventType, nats_subject
from kinetic_contracts.registry import EVENT_MODELS, schema_uri

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_FILE = "cloudevent.json"
INDEX_FILE = "index.json"
# The envelope shares the payload schemas' URI space so that every $id resolves alike.
ENVELOPE_SCHEMA_URI = schema_uri("cloudevent")
SUBJECT_TEMPLATE_TENANT = "{tenant}"

_SOURCE_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"


def contracts_version() -> str:
    try:
        return version("kinetic-contracts")
    except PackageNotFoundError:  # imported from a source checkout that is not installed
        return "0.0.0"


def schema_file_name(event_type: str) -> str:
    return f"{event_type}.json"


def subject_template(event_type: str) -> str:
    """The NATS subject of an event type with the tenant left as a placeholder."""
    return nats_subject(SUBJECT_TEMPLATE_TENANT, event_type)


def event_schema(model: type[EventData]) -> dict[str, Any]:
    """The JSON Schema of one event's ``data``."""
    parsed = EventType.parse(model.event_type)
    schema = model.model_json_schema()
    doc = (model.__doc__ or "").strip()
    summary = (
        f"The `data` of a `{model.event_type}` CloudEvent: {model.__name__}, published by "
        f"the {parsed.service} service for its {parsed.aggregate} aggregate. The event's "
        f"`subject` is the `{model.aggregate_id_field}` field."
    )
    schema.update(
        {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": schema_uri(model.event_type),
            "title": model.event_type,
            "description": f"{summary}\n\n{doc}" if doc else summary,
            # Annotations (ignored by validators) that let tools route without parsing prose.
            "x-kinetic-event-type": model.event_type,
            "x-kinetic-aggregate-id-field": model.aggregate_id_field,
            "x-kinetic-subject": subject_template(model.event_type),
        }
    )
    return schema


def envelope_schema() -> dict[str, Any]:
    schema = CloudEvent.model_json_schema()
    schema.update(
        {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": ENVELOPE_SCHEMA_URI,
            "title": "Kinetic CloudEvent",
            "description": (
                "A Kinetic event on the wire: a CloudEvents 1.0 envelope in structured JSON "
                "mode with Kinetic's extension attributes. `data` holds the payload described "
                "by the schema that `dataschema` names (one per event `type`)."
            ),
        }
    )
    return schema


def index(models: Mapping[str, type[EventData]]) -> dict[str, Any]:
    return {
        "contractsVersion": contracts_version(),
        "envelope": {"$id": ENVELOPE_SCHEMA_URI, "file": ENVELOPE_FILE},
        "events": [
            {
                "$id": schema_uri(event_type),
                "aggregateIdField": models[event_type].aggregate_id_field,
                "file": schema_file_name(event_type),
                "subject": subject_template(event_type),
                "type": event_type,
            }
            for event_type in sorted(models)
        ],
    }


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(models: Mapping[str, type[EventData]] | None = None) -> dict[str, str]:
    """Every file of the schemas directory, by name, as the exact text to write."""
    models = EVENT_MODELS if models is None else models
    files = {schema_file_name(t): dumps(event_schema(m)) for t, m in sorted(models.items())}
    files[ENVELOPE_FILE] = dumps(envelope_schema())
    files[INDEX_FILE] = dumps(index(models))
    return files


def write(out_dir: Path, models: Mapping[str, type[EventData]] | None = None) -> list[Path]:
    """Write the schemas into ``out_dir``, removing JSON files no longer generated (the
    directory is owned by this generator: a stale file would advertise a dead contract)."""
    files = render(models)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in sorted(out_dir.glob("*.json")):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def differences(out_dir: Path, models: Mapping[str, type[EventData]] | None = None) -> list[str]:
    """Names of the files in ``out_dir`` that differ from (or are missing from, or are not
    part of) a fresh generation. Empty when the directory is up to date."""
    files = render(models)
    present = {p.name for p in out_dir.glob("*.json")} if out_dir.is_dir() else set()
    changed = [
        name for name, text in files.items()
        if name not in present or (out_dir / name).read_text(encoding="utf-8") != text
    ]
    return sorted(changed + [name for name in present if name not in files])


def default_out_dir() -> Path | None:
    """``contracts/schemas`` when running from the source tree; there is none in a wheel."""
    if (_SOURCE_SCHEMAS_DIR.parent / "pyproject.toml").is_file():
        return _SOURCE_SCHEMAS_DIR
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kinetic_contracts.build",
                                     description="Generate Kinetic's event JSON Schemas.")
    parser.add_argument("--out", type=Path, default=default_out_dir(),
                        help="directory to write (default: contracts/schemas in the source tree)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the directory is not up to date")
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("--out is required outside the source tree")
    if args.check:
        stale = differences(args.out)
        for name in stale:
            print(f"out of date: {args.out / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
