"""The FHIR read API for EHR partners: ``/fhir/R4`` serves each partner the resources built
from the events its grant and the patients' consents let it receive (adapters/fhir_store.py).

A partner's EHR authenticates with its FHIR key (``Authorization: Bearer kfk_…``, see
adapters/keys.py).
Answers are ``application/fhir+json``; errors are OperationOutcomes, as FHIR clients expect.
Every read is in the organization's audit trail, the partner as the actor.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Select, select

from kinetic_infra.auth.principal import Principal
from kinetic_infra.db.database import Database
from kinetic_infra.http.audit import AuditedRoute, audited, note
from partners.adapters.fhir_store import fhir_resources
from partners.adapters.keys import FHIR_KEY
from partners.domain.fhir import MODELS, WITHOUT_PATIENT, capability_statement

FHIR_JSON = "application/fhir+json"
MAX_COUNT = 500

_key = HTTPBearer(auto_error=False, scheme_name="FhirKey",
                  description="The partner's FHIR key (kfk_…), issued by an operator")


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON  # also what the OpenAPI document says the answers are


def fhir_json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return FhirJSONResponse(body, status_code=status)


def outcome(status: int, code: str, text: str) -> JSONResponse:
    return fhir_json({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": code, "diagnostics": text}]}, status)


class _Denied(Exception):
    pass


def _served(row: Any) -> dict[str, Any]:
    body = dict(row["body"])
    body["meta"] = {**body.get("meta", {}), "versionId": str(row["version_id"])}
    return body


def router(db: Database) -> APIRouter:
    api = APIRouter(prefix="/fhir/R4", tags=["fhir"], route_class=AuditedRoute)
    def operation_outcome(description: str) -> dict[str, Any]:
        return {"description": description, "content": {FHIR_JSON: {"schema": {
            "type": "object", "required": ["resourceType", "issue"]}}}}

    errors = {400: operation_outcome("A search parameter FHIR cannot use here"),
              401: operation_outcome("No valid FHIR key"),
              404: operation_outcome("Unknown resource type or id")}

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
                       resource_type: str) -> tuple[UUID, Select[Any]] | JSONResponse:
        """The organization and a query of the partner's resources of this type, or the
        OperationOutcome that answers the request."""
        try:
            tenant_id, partner_id = await partner_of(request, credentials)
        except _Denied:
            return outcome(401, "login", "a valid FHIR key is required")
        if resource_type not in MODELS:
            return outcome(404, "not-supported", f"{resource_type} is not served here")
        return tenant_id, select(fhir_resources).where(
            fhir_resources.c.partner_id == partner_id,
            fhir_resources.c.resource_type == resource_type)

    async def read_rows(tenant_id: UUID, query: Any) -> list[Any]:
        async with db.read(tenant_id) as conn:
            return list((await conn.execute(query)).mappings())

    @api.get("/metadata", summary="The capability statement (public)",
             response_class=FhirJSONResponse)
    async def metadata(request: Request) -> JSONResponse:
        return fhir_json(capability_statement(str(request.base_url).rstrip("/") + "/fhir/R4",
                                              datetime.now(UTC)))

    @api.get("/{resource_type}/{resource_id}", summary="Read one resource",
             responses=errors, response_class=FhirJSONResponse,
             openapi_extra=audited("read", "fhir"))
    async def read(request: Request, resource_type: str, resource_id: str,
                   credentials: HTTPAuthorizationCredentials | None = Depends(_key)
                   ) -> JSONResponse:
        found = await admitted(request, credentials, resource_type)
        if isinstance(found, JSONResponse):
            return found
        tenant_id, of_type = found
        note(request).resource_id = f"{resource_type}/{resource_id}"
        rows = await read_rows(tenant_id, of_type.where(fhir_resources.c.id == resource_id))
        if not rows:
            return outcome(404, "not-found", f"{resource_type}/{resource_id} is not known")
        note(request).patient_id = rows[0]["patient_id"]
        return fhir_json(_served(rows[0]))

    @api.get("/{resource_type}", summary="Search one resource type (a searchset Bundle)",
             responses=errors, response_class=FhirJSONResponse,
             openapi_extra=audited("search", "fhir"))
    async def search(request: Request, resource_type: str,
                     patient: str | None = Query(default=None,
                                                 description="Patient/<id> or <id>"),
                     _id: str | None = Query(default=None, alias="_id"),
                     identifier: str | None = Query(default=None,
                                                    description="urn:kinetic:…|<id> or <id>"),
                     _count: str | None = Query(default=None, alias="_count"),
                     credentials: HTTPAuthorizationCredentials | None = Depends(_key)
                     ) -> JSONResponse:
        found = await admitted(request, credentials, resource_type)
        if isinstance(found, JSONResponse):
            return found
        tenant_id, query = found
        count = int(_count) if _count and _count.isdigit() else 100
        if patient is not None:
            if resource_type in WITHOUT_PATIENT:
                return outcome(400, "not-supported", f"{resource_type} has no patient")
            try:
                patient_id = UUID(patient.removeprefix("Patient/"))
            except ValueError:
                return outcome(400, "value", "patient must be Patient/<id>")
            note(request).patient_id = patient_id
            query = query.where(fhir_resources.c.patient_id == patient_id)
        for wanted in (_id, identifier.rsplit("|", 1)[-1] if identifier else None):
            if wanted is not None:
                query = query.where(fhir_resources.c.id == wanted)
        rows = await read_rows(tenant_id, query.order_by(fhir_resources.c.updated_at,
                                                        fhir_resources.c.id)
                               .limit(min(count, MAX_COUNT)))
        return fhir_json({"resourceType": "Bundle", "type": "searchset", "total": len(rows),
                          "entry": [{"fullUrl": f"{resource_type}/{r['id']}",
                                     "resource": _served(r), "search": {"mode": "match"}}
                                    for r in rows]})

    return api
