"""Kinetic's public contracts as pages a partner's engineer reads and downloads: every event
type with its JSON Schema, the CloudEvents envelope, and the AsyncAPI 3.0 document. Generated
from the same models as the committed files (so they are the same bytes), public (they hold
no one's data), and cached once made."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from functools import cache
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from kinetic_contracts import build
from kinetic_contracts.problems import NotFoundError
from kinetic_contracts.registry import EVENT_MODELS
from kinetic_infra.contracts_build import render_asyncapi


class SchemaNotFoundError(NotFoundError):
    type_slug = "schema-not-found"
    title = "No such schema"


@cache
def schema_files() -> dict[str, str]:
    return build.render()


_asyncapi: str | None = None


async def asyncapi_document() -> str:
    global _asyncapi
    if _asyncapi is None:  # FastStream's generator runs in a process of its own: once
        _asyncapi = await asyncio.to_thread(render_asyncapi)
    return _asyncapi


def summary(event_type: str) -> str:
    """The first paragraph of the event model's docstring, if it has one of its own."""
    doc = (EVENT_MODELS[event_type].__dict__.get("__doc__") or "").strip()
    return f"— {' '.join(doc.split(chr(10) * 2)[0].split())}" if doc else ""


def data_class_note(event_type: str) -> str:
    """Events beyond identifiers and codes say so: a grant cannot name them."""
    data_class = EVENT_MODELS[event_type].data_class
    return "" if data_class == "identifiers" else f" [{data_class}]"


def index_page() -> str:
    by_service: dict[str, list[str]] = defaultdict(list)
    for event_type in sorted(EVENT_MODELS):
        by_service[event_type.split(".")[1]].append(event_type)
    sections = "".join(
        f"<h2>{escape(service)}</h2><ul>" + "".join(
            f'<li><a href="/contracts/schemas/{escape(build.schema_file_name(t))}">'
            f"<code>{escape(t)}</code></a>{escape(data_class_note(t))} {escape(summary(t))}</li>"
            for t in types) + "</ul>"
        for service, types in by_service.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kinetic event contracts</title>
<style>body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; }}
code {{ font-size: .95em; }}</style></head><body>
<h1>Kinetic event contracts</h1>
<p>Every event is a CloudEvent (<a href="/contracts/schemas/{build.ENVELOPE_FILE}">envelope
schema</a>) whose <code>data</code> follows the event type's JSON Schema. The whole set as
<a href="/contracts/asyncapi.json">AsyncAPI 3.0</a> and the
<a href="/contracts/schemas/{build.INDEX_FILE}">schema index</a>. Within a version changes are
additive only; a change of meaning is a new version. Webhooks are signed per Standard
Webhooks; <code>pip install kinetic-contracts</code> and
<code>kinetic_contracts.webhooks.verify</code> check them. A grant names event types of
identifiers and codes; types marked with a richer data class are restricted (the partners
service's alone) or are one partner's own disclosures, sent only when the partner is granted
that class and the patient's data-sharing consent names it.</p>
{sections}
</body></html>"""


def router() -> APIRouter:
    api = APIRouter(tags=["contracts"])

    @api.get("/contracts", response_class=HTMLResponse,
             summary="The public event contracts: every event type and its schema")
    async def contracts_index() -> HTMLResponse:
        return HTMLResponse(index_page())

    @api.get("/contracts/asyncapi.json", response_class=Response,
             responses={200: {"content": {"application/json": {}}}},
             summary="The AsyncAPI 3.0 document (subjects, envelopes, payloads)")
    async def asyncapi() -> Response:
        return Response(await asyncapi_document(), media_type="application/json",
                        headers={"content-disposition": 'inline; filename="asyncapi.json"'})

    @api.get("/contracts/schemas/{name}", response_class=Response,
             responses={200: {"content": {"application/schema+json": {}}}},
             summary="One JSON Schema (an event type's payload, the envelope, the index)")
    async def schema(name: str) -> Response:
        text = schema_files().get(name)
        if text is None:
            raise SchemaNotFoundError(f"no schema {name!r}", name=name)
        return Response(text, media_type="application/schema+json",
                        headers={"content-disposition": f'inline; filename="{name}"'})

    return api
