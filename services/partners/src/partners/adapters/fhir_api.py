"""The FHIR read API for EHR partners: ``/fhir/R4`` serves each partner the resources built
from the events its grant and the patients' consents let it receive (adapters/fhir_store.py).

A partner's EHR authenticates with its FHIR key (``Authorization: Bearer kfk_…``, see
adapters/keys.py).
Answers are ``application/fhir+json``; every error under ``/fhir/R4`` is an OperationOutcome,
as FHIR clients expect (the routes' own class renders them, so neither the app's problem+json
handlers nor its 404/405 answer here). Every read and search is in the organization's audit
trail, the partner as the actor, with one record per patient a search answered about.

Search is strict: a parameter this server does not support is refused with a 400 naming it,
never ignored (an ignored ``subject`` or ``date`` would widen the answer to every patient).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace
from sqlalchemy import ColumnElement, false, or_
from starlette.exceptions import HTTPException

from kinetic_infra.auth.principal import Principal
from kinetic_infra.db.database import Database
from kinetic_infra.http.audit import AuditedRoute, audited, note
from partners.adapters import fhir_store
from partners.adapters.fhir_store import fhir_resources
from partners.adapters.keys import FHIR_KEY
from partners.domain.fhir import MODELS, WITHOUT_PATIENT, capability_statement

FHIR_JSON = "application/fhir+json"
FORM = "application/x-www-form-urlencoded"
PREFIX = "/fhir/R4"
DEFAULT_COUNT = 100
MAX_COUNT = 500
MAX_NUMBER = 10**18  # a larger _count or _offset means the same (and fits a bigint)
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR's id datatype

# Types whose R4 search defines ``subject``: here it is always the patient, so it means the
# same as ``patient``. (Appointment and EpisodeOfCare have ``patient`` only.)
WITH_SUBJECT = frozenset({"CarePlan", "ClinicalImpression", "Condition", "Encounter", "Goal",
                          "Invoice", "Observation"})
# Types whose resources carry identifiers here (Observation, Condition and Goal have none).
WITH_IDENTIFIER = frozenset({"Appointment", "CarePlan", "ClinicalImpression", "Encounter",
                             "EpisodeOfCare", "Invoice", "Location", "Patient",
                             "Practitioner"})
RESULT_PARAMETERS = {
    "_count": f"entries per page: {DEFAULT_COUNT} unless given, at most {MAX_COUNT}; "
              "0 answers the total only",
    "_offset": "matches to skip (the next and previous links carry it)",
}

log = logging.getLogger("kinetic.partners.fhir")

_key = HTTPBearer(auto_error=False, scheme_name="FhirKey",
                  description="The partner's FHIR key (kfk_…), issued by an operator")


def search_parameters(kind: str) -> dict[str, tuple[str, str]]:
    """The search parameters of a type: name -> (FHIR type, what it matches). Any other
    parameter, and any modifier, is refused; ``_count`` and ``_offset`` page every type."""
    params = {"_id": ("token", "the resource's id (several: comma-separated, any of them)")}
    if kind in WITH_IDENTIFIER:
        params["identifier"] = ("token", "an identifier: system|value, value (any system) "
                                         "or system| (any value); several: comma-separated")
    if kind not in WITHOUT_PATIENT:
        params["patient"] = ("reference", "the patient: Patient/<id> or <id>; several: "
                                          "comma-separated")
    if kind in WITH_SUBJECT:
        params["subject"] = ("reference", "the patient, as for patient")
    return params


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON  # also what the OpenAPI document says the answers are


def fhir_json(body: dict[str, Any], status: int = 200,
              headers: dict[str, str] | None = None) -> JSONResponse:
    return FhirJSONResponse(body, status_code=status, headers=headers)


def outcome(status: int, code: str, *texts: str, headers: dict[str, str] | None = None
            ) -> JSONResponse:
    """An OperationOutcome with one error issue per text."""
    return fhir_json({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": code, "diagnostics": text} for text in texts]},
        status, headers)


# -- search parameters, parsed without I/O ----------------------------------------------------

class SearchError(ValueError):
    """The search cannot be run as asked: one (code, text) issue per parameter at fault."""

    def __init__(self, issues: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(text for _, text in issues))
        self.issues = issues


@dataclass
class Search:
    """A parsed search. Each parameter given is one condition (repeating one ANDs them); the
    values of one parameter, comma-separated, are alternatives."""

    ids: list[list[str]] = field(default_factory=list)
    patients: list[list[UUID]] = field(default_factory=list)
    # (system, value): None is any; a system of "" is an identifier without one
    identifiers: list[list[tuple[str | None, str | None]]] = field(default_factory=list)
    used: list[tuple[str, str]] = field(default_factory=list)  # as applied, for the links
    count: int = DEFAULT_COUNT
    offset: int = 0

    def requested_patients(self) -> list[UUID]:
        return list(dict.fromkeys(p for alternatives in self.patients for p in alternatives))

    def conditions(self) -> list[ColumnElement[bool]]:
        c = fhir_resources.c
        return [*(c.id.in_(ids) for ids in self.ids),
                *(c.patient_id.in_(patients) for patients in self.patients),
                *(or_(*(false() if system == "" else fhir_store.with_identifier(system, value)
                        for system, value in tokens))  # every identifier here has a system
                  for tokens in self.identifiers)]

    def query(self, offset: int | None = None) -> str:
        """The parameters as applied, for a link to this page (or another offset)."""
        return urlencode([*self.used, ("_count", str(self.count)),
                          ("_offset", str(self.offset if offset is None else offset))])


def parse_search(kind: str, pairs: list[tuple[str, str]], base: str = "") -> Search:
    """The search ``pairs`` (query or form parameters, in order) ask for, on ``kind``; raises
    SearchError naming every parameter it cannot apply as given."""
    known = search_parameters(kind)
    search = Search()
    issues: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            issues.append(("value", f"the parameter {name!r} holds a NUL character"))
        elif name in RESULT_PARAMETERS:
            if name in seen:
                issues.append(("invalid", f"{name} is given more than once"))
            elif not re.fullmatch(r"[0-9]+", value):
                issues.append(("value", f"{name} must be a whole number, not {value!r}"))
            else:
                number = int(value) if len(value) <= 18 else MAX_NUMBER
                if name == "_count":
                    search.count = min(number, MAX_COUNT)
                else:
                    search.offset = number
            seen.add(name)
        elif name not in known:
            issues.append(("not-supported", _unsupported(kind, name, known)))
        elif value == "":
            issues.append(("value", f"{name} has no value"))
        else:
            try:
                search.used.append((name, _parse_value(search, name, value, base)))
            except ValueError as exc:
                issues.append(("value", f"{name}: {exc}"))
    if issues:
        raise SearchError(issues)
    return search


def _unsupported(kind: str, name: str, known: dict[str, Any]) -> str:
    supported = ", ".join([*known, *RESULT_PARAMETERS])
    if ":" in name or "." in name:
        why = "modifiers and chained parameters are not supported"
    elif name == "identifier" and kind in MODELS:
        why = f"{kind} resources here carry no identifiers"
    elif name in ("patient", "subject") and kind in WITHOUT_PATIENT:
        why = f"{kind} has no patient"
    else:
        why = f"{name} is not a search parameter of {kind} here"
    return f"unsupported search parameter {name!r}: {why} (supported: {supported})"


def _parse_value(search: Search, name: str, value: str, base: str) -> str:
    """Adds the parameter's condition to ``search``; returns its value as applied."""
    if name == "_id":
        ids = value.split(",")
        if bad := [i for i in ids if not FHIR_ID.fullmatch(i)]:
            raise ValueError(f"{bad[0]!r} is not a FHIR id")
        search.ids.append(ids)
        return value
    if name == "identifier":
        tokens = [_token(t) for t in re.split(r"(?<!\\),", value)]
        search.identifiers.append(tokens)
        return value
    patients = [_patient(reference, base) for reference in value.split(",")]
    search.patients.append(patients)
    return ",".join(f"Patient/{p}" for p in patients)


def _token(text: str) -> tuple[str | None, str | None]:
    """system|value, |value (no system), system| (any value) or value (any system), with
    FHIR's escapes (a backslash before , | $ or itself)."""
    parts = [re.sub(r"\\([\\,|$])", r"\1", part)
             for part in re.split(r"(?<!\\)\|", text, maxsplit=1)]
    system, value = (None, parts[0]) if len(parts) == 1 else parts
    if not system and not value:
        raise ValueError(f"{text!r} is not system|value, value or system|")
    return system, value or None


def _patient(reference: str, base: str) -> UUID:
    local = reference.removeprefix(f"{base}/") if base else reference
    try:
        return UUID(local.removeprefix("Patient/"))
    except ValueError:
        raise ValueError(f"{reference!r} is not Patient/<id> (a Kinetic patient id)") from None


# -- errors under /fhir/R4 --------------------------------------------------------------------

class FhirRoute(AuditedRoute):
    """An audited route whose every error is an OperationOutcome: invalid input (FastAPI's
    validation), HTTP errors and anything unexpected (a 500 that says nothing of the cause:
    it is logged with the trace id)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def fhir_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return outcome(400, "invalid", *(
                    f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}"
                    for e in exc.errors()))
            except HTTPException as exc:
                return outcome(exc.status_code, "processing", str(exc.detail),
                               headers=exc.headers)
            except Exception:
                span = trace.get_current_span().get_span_context()
                trace_id = format(span.trace_id, "032x") if span.is_valid else "none"
                log.exception("FHIR request failed (trace %s)", trace_id)
                return outcome(500, "exception", "The request could not be completed. It has "
                                                 f"been logged (trace {trace_id}).")

        return fhir_handler


class _Denied(Exception):
    pass


def _served(row: Any) -> dict[str, Any]:
    body = dict(row["body"])
    body["meta"] = {**body.get("meta", {}), "versionId": str(row["version_id"])}
    return body


def fhir_base(request: Request) -> str:
    """The absolute base of this API, as the request reached it."""
    return str(request.base_url).rstrip("/") + PREFIX


def capability(base: str, now: datetime) -> dict[str, Any]:
    """The capability statement, each type with exactly the search parameters it takes."""
    statement = capability_statement(base, now)
    [rest] = statement["rest"]
    rest["documentation"] = (
        "Search is strict: an unsupported parameter or modifier is refused (400). Every "
        "type pages with " + "; ".join(f"{n} ({d})" for n, d in RESULT_PARAMETERS.items())
        + ". GET and POST [type]/_search (form-encoded) take the same parameters.")
    for resource in rest["resource"]:
        resource["searchParam"] = [
            {"name": name, "type": kind, "documentation": text}
            for name, (kind, text) in search_parameters(resource["type"]).items()]
    return statement


def router(db: Database) -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["fhir"], route_class=FhirRoute)

    def operation_outcome(description: str) -> dict[str, Any]:
        return {"description": description, "content": {FHIR_JSON: {"schema": {
            "type": "object", "required": ["resourceType", "issue"]}}}}

    errors: dict[int | str, dict[str, Any]] = {
        400: operation_outcome("A search parameter or value this server does not take here "
                               "(each named in an issue), or an invalid id"),
        401: operation_outcome("No valid FHIR key"),
        404: operation_outcome("Unknown resource type, id or version"),
        500: operation_outcome("An unexpected failure (logged)"),
        # FastAPI would document a 422 problem+json: the FHIR routes answer 400 instead.
        "4XX": operation_outcome("Another client error")}
    search_doc = {"parameters": [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
         "description": text}
        for name, text in {
            "patient": "Patient/<id> or <id> (types with a patient)",
            "subject": "the patient, as patient (types whose R4 search has subject)",
            "_id": "the resource's id", "identifier": "system|value or value (types with "
            "identifiers)", **RESULT_PARAMETERS}.items()]}

    async def partner_of(request: Request, credentials: HTTPAuthorizationCredentials | None
                         ) -> tuple[UUID, UUID]:
        """(organization, partner) of a valid key; the partner becomes the request's actor."""
        holder = (await FHIR_KEY.holder(db, credentials.credentials)
                  if credentials is not None else None)
        if holder is None:
            raise _Denied
        tenant_id, partner_id, name = holder
        request.state.principal = Principal(f"partner:{partner_id}", name, tenant_id)
        return tenant_id, partner_id

    async def admitted(request: Request, credentials: HTTPAuthorizationCredentials | None,
                       resource_type: str) -> tuple[UUID, UUID] | JSONResponse:
        """(organization, partner), or the OperationOutcome that answers the request."""
        try:
            tenant_id, partner_id = await partner_of(request, credentials)
        except _Denied:
            return outcome(401, "login", "a valid FHIR key is required",
                           headers={"WWW-Authenticate": "Bearer"})
        if resource_type not in MODELS:
            return outcome(404, "not-supported", f"{resource_type} is not served here")
        return tenant_id, partner_id

    async def one(request: Request, credentials: HTTPAuthorizationCredentials | None,
                  resource_type: str, resource_id: str, version_id: str | None = None
                  ) -> JSONResponse:
        found = await admitted(request, credentials, resource_type)
        if isinstance(found, JSONResponse):
            return found
        tenant_id, partner_id = found
        if not FHIR_ID.fullmatch(resource_id):
            return outcome(400, "value", f"{resource_id!r} is not a FHIR id")
        note(request).resource_id = f"{resource_type}/{resource_id}"
        async with db.read(tenant_id) as conn:
            row = await fhir_store.find(conn, partner_id, resource_type, resource_id)
        if row is None:
            return outcome(404, "not-found", f"{resource_type}/{resource_id} is not known")
        note(request).patient_id = row["patient_id"]
        if version_id is not None and version_id != str(row["version_id"]):
            return outcome(404, "not-found", f"version {version_id} of {resource_type}/"
                           f"{resource_id} is not kept: only the current one, "
                           f"{row['version_id']}")
        return fhir_json(_served(row), headers={"ETag": f'W/"{row["version_id"]}"'})

    async def search(request: Request, credentials: HTTPAuthorizationCredentials | None,
                     resource_type: str, pairs: list[tuple[str, str]] | JSONResponse
                     ) -> JSONResponse:
        found = await admitted(request, credentials, resource_type)
        if isinstance(found, JSONResponse):
            return found
        tenant_id, partner_id = found
        if isinstance(pairs, JSONResponse):  # a POST body that holds no parameters
            return pairs
        base = fhir_base(request)
        try:
            wanted = parse_search(resource_type, pairs, base)
        except SearchError as exc:
            return fhir_json({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": code, "diagnostics": text}
                for code, text in exc.issues]}, 400)
        # One audit record for each patient asked about (a count with _count=0 discloses of
        # them too) and each patient an entry is about; none without either.
        note(request).patient_ids = wanted.requested_patients()
        async with db.read(tenant_id) as conn:
            total, rows = await fhir_store.search(conn, partner_id, resource_type,
                                                  wanted.conditions(), wanted.count,
                                                  wanted.offset)
        note(request).patient_ids += [r["patient_id"] for r in rows if r["patient_id"]]
        here = f"{base}/{resource_type}?"
        links = [{"relation": "self", "url": here + wanted.query()}]
        if wanted.count and wanted.offset + wanted.count < total:
            links.append({"relation": "next",
                          "url": here + wanted.query(wanted.offset + wanted.count)})
        if wanted.count and wanted.offset:
            links.append({"relation": "previous",
                          "url": here + wanted.query(max(0, wanted.offset - wanted.count))})
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                  "total": total, "link": links}
        if rows:
            bundle["entry"] = [{"fullUrl": f"{base}/{resource_type}/{r['id']}",
                                "resource": _served(r), "search": {"mode": "match"}}
                               for r in rows]
        return fhir_json(bundle)

    @api.get("/metadata", summary="The capability statement (public)",
             response_class=FhirJSONResponse)
    async def metadata(request: Request) -> JSONResponse:
        return fhir_json(capability(fhir_base(request), datetime.now(UTC)))

    search_summary = "Search one resource type (a searchset Bundle)"

    @api.get("/{resource_type}/_search", summary=search_summary, responses=errors,
             response_class=FhirJSONResponse,
             openapi_extra={**audited("search", "fhir"), **search_doc})
    async def search_at_search(
            request: Request, resource_type: str,
            credentials: HTTPAuthorizationCredentials | None = Depends(_key)) -> JSONResponse:
        return await search(request, credentials, resource_type,
                            request.query_params.multi_items())

    @api.post("/{resource_type}/_search",
              summary="Search one resource type by POST (a searchset Bundle)",
              description=f"The same parameters as GET, in a {FORM} body (and the URL).",
              responses={**errors, 415: operation_outcome(f"A body that is not {FORM}")},
              response_class=FhirJSONResponse, openapi_extra=audited("search", "fhir"))
    async def search_by_post(request: Request, resource_type: str,
                             credentials: HTTPAuthorizationCredentials | None = Depends(_key)
                             ) -> JSONResponse:
        return await search(request, credentials, resource_type, await _form(request))

    @api.get("/{resource_type}/{resource_id}", summary="Read one resource",
             responses=errors, response_class=FhirJSONResponse,
             openapi_extra=audited("read", "fhir"))
    async def read(request: Request, resource_type: str, resource_id: str,
                   credentials: HTTPAuthorizationCredentials | None = Depends(_key)
                   ) -> JSONResponse:
        return await one(request, credentials, resource_type, resource_id)

    @api.get("/{resource_type}/{resource_id}/_history/{version_id}",
             summary="Read one version of a resource (the current one is kept)",
             responses=errors, response_class=FhirJSONResponse,
             openapi_extra=audited("read", "fhir"))
    async def vread(request: Request, resource_type: str, resource_id: str, version_id: str,
                    credentials: HTTPAuthorizationCredentials | None = Depends(_key)
                    ) -> JSONResponse:
        return await one(request, credentials, resource_type, resource_id, version_id)

    @api.get("/{resource_type}", summary=search_summary, responses=errors,
             response_class=FhirJSONResponse,
             openapi_extra={**audited("search", "fhir"), **search_doc})
    async def search_by_get(request: Request, resource_type: str,
                            credentials: HTTPAuthorizationCredentials | None = Depends(_key)
                            ) -> JSONResponse:
        return await search(request, credentials, resource_type,
                            request.query_params.multi_items())

    @api.api_route("/{rest:path}", include_in_schema=False,
                   methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    async def elsewhere(request: Request, rest: str) -> JSONResponse:
        """Whatever no route above serves, as an OperationOutcome (not the app's
        problem+json): an unknown interaction, or a method this read API does not take."""
        if request.method == "GET":
            return outcome(404, "not-supported", f"{PREFIX}/{rest} is not served here "
                                                 "(read, vread and search only)")
        allow = "GET, POST" if rest.endswith("/_search") else "GET"
        return outcome(405, "not-supported", f"{request.method} is not supported on "
                                             f"{PREFIX}/{rest}: this API is read-only",
                       headers={"Allow": allow})

    return api


async def _form(request: Request) -> list[tuple[str, str]] | JSONResponse:
    """The URL's parameters and then the form body's, or the OperationOutcome refusing the
    body (another media type, or text that is not form-encoded UTF-8)."""
    body = await request.body()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and media_type != FORM:
        return outcome(415, "not-supported", f"POST _search takes its parameters as {FORM}, "
                                             f"not {media_type or 'an untyped body'}")
    try:
        form = parse_qsl(body.decode(), keep_blank_values=True, encoding="utf-8",
                         errors="strict", max_num_fields=100)
    except ValueError as exc:  # UnicodeDecodeError too
        return outcome(400, "invalid", f"the form cannot be read: {exc}")
    return [*request.query_params.multi_items(), *form]
