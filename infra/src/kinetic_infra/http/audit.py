"""Audit at the HTTP edge: every call of an endpoint marked ``audited(...)`` writes exactly
one audit record, whatever happens: success, denied (403, or 404 for what the caller may
not see) or error (invalid input, a refused rule, a failure); an endpoint whose answer is
about several patients (a FHIR search) notes them all, and writes one record per patient,
with the same request id. The route class wraps the
whole request, validation included, so no path through an endpoint escapes it.
Calls without a valid token belong to no organization and are not in any organization's
trail (they are answered 401 and logged).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from fastapi import Request, Response
from fastapi.routing import APIRoute
from opentelemetry import trace

from kinetic_contracts.problems import NotFoundError
from kinetic_infra.audit.trail import AuditRecord, write
from kinetic_infra.auth.principal import Principal
from kinetic_infra.http.auth import ForbiddenError

AUDIT_KEY = "x-kinetic-audit"


def audited(action: str, resource_type: str) -> dict[str, Any]:
    """``openapi_extra`` for a patient-data endpoint (it also documents the audit)."""
    return {AUDIT_KEY: {"action": action, "resource_type": resource_type}}


@dataclass
class AuditNote:
    """What the endpoint learns while it runs, for its audit record."""

    resource_id: str | None = None
    patient_id: UUID | None = None
    location_id: UUID | None = None
    # An answer about several patients (a search across them): one record for each.
    patient_ids: list[UUID] = field(default_factory=list)


def note(request: Request) -> AuditNote:
    return request.state.audit  # type: ignore[no-any-return]


def _outcome(exc: BaseException | None, response: Response | None) -> str:
    if exc is None:
        return "success" if response is not None and response.status_code < 400 else "error"
    if isinstance(exc, ForbiddenError | NotFoundError):
        return "denied"
    return "error"


class AuditedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        spec = (self.openapi_extra or {}).get(AUDIT_KEY)
        if spec is None:
            return handler

        async def audited_handler(request: Request) -> Response:
            request.state.audit = AuditNote()
            response: Response | None = None
            failure: BaseException | None = None
            try:
                response = await handler(request)
                return response
            except BaseException as exc:
                failure = exc
                raise
            finally:
                principal: Principal | None = getattr(request.state, "principal", None)
                if principal is not None:
                    await _record(request, principal, spec, _outcome(failure, response))

        return audited_handler


async def _record(request: Request, principal: Principal, spec: dict[str, str],
                  outcome: str) -> None:
    audit: AuditNote = request.state.audit
    params = request.path_params
    span = trace.get_current_span().get_span_context()
    request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
    patients = list(dict.fromkeys(
        p for p in (audit.patient_id, *audit.patient_ids) if p is not None)) or [None]
    await write(request.app.state.runtime.db, *(AuditRecord(
        tenant_id=principal.tenant_id, actor=principal.staff_id,
        role=principal.role_label(), action=spec["action"],
        resource_type=spec["resource_type"], outcome=outcome,
        resource_id=audit.resource_id or (str(next(iter(params.values())))
                                          if params else None),
        location_id=audit.location_id, patient_id=patient_id, request_id=request_id,
        trace_id=format(span.trace_id, "032x") if span.is_valid else None,
    ) for patient_id in patients))
