"""problem+json (RFC 9457) for every error, through ``fastapi-problem``.

Domain errors stay HTTP-free (kinetic_contracts.problems); this module maps their kind to a
status once. Anything unexpected becomes a 500 whose body says nothing about the cause: the
exception is logged server-side with the trace id, never sent to the client. Each problem
type is a stable relative URI, ``/problems/<slug>``, documented in infra/README.md.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi_problem.error import Problem, ServerProblem
from fastapi_problem.handler import (
    add_exception_handler,
    new_exception_handler,
    request_validation_handler_,
)
from opentelemetry import trace
from sqlalchemy.exc import DBAPIError
from starlette.responses import Response

from kinetic_infra.http.auth import ForbiddenError, UnauthenticatedError
from kinetic_contracts.problems import (
    ConflictError,
    DomainError,
    NotFoundError,
    PreconditionRequiredError,
    RuleViolationError,
)

log = logging.getLogger("kinetic.http")

ERROR_STATUS: dict[type[DomainError], int] = {
    UnauthenticatedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PreconditionRequiredError: 428,
    RuleViolationError: 422,
    DomainError: 422,
}

PROBLEM_URI = "/problems/{type}"


class InternalProblem(ServerProblem):
    type_ = "internal-error"
    title = "Internal server error"

    def __init__(self, *_: Any, **__: Any) -> None:
        # Deliberately drops the exception text: it may hold SQL or internal names.
        super().__init__(detail="The request could not be completed. It has been logged.")


def status_for(exc: DomainError) -> int:
    for kind in type(exc).__mro__:
        if kind in ERROR_STATUS:
            return ERROR_STATUS[kind]  # type: ignore[index]
    return 422


def _out_of_range(_eh: Any, _request: Request, _exc: OverflowError) -> Problem:
    """Date arithmetic on a caller's date near year 1 or 9999 (a week's search from
    9999-12-31, a time zone moving 0001-01-01 before year 1) overflows: the input is out of
    range, not the server broken."""
    return Problem(title="A date, time or number is out of range", type_="out-of-range",
                   detail="a date, time or number in the request is too far from today to "
                          "work with", status=422)


# SQLSTATEs of text PostgreSQL cannot store: a NUL character in a text column (22021) or as
# \u0000 in jsonb (22P05). pydantic lets both through, and any string field may carry one.
UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, raised by asyncpg or wrapped by SQLAlchemy."""
    for error in (exc, getattr(exc, "orig", None), exc.__cause__):
        code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if code:
            return str(code)
    return None


def _unstorable_text(_eh: Any, _request: Request, exc: Exception) -> Problem | None:
    """The input, not the server, is at fault; the transaction rolled back with it, so
    nothing was written. Any other database error stays a 500 (None: the default)."""
    if _sqlstate(exc) not in UNSTORABLE_TEXT:
        return None
    return Problem(title="The request holds a character that cannot be stored",
                   type_="unstorable-text", status=422,
                   detail="a text in the request holds a NUL character (\\u0000) or another "
                          "character that cannot be stored; remove it and send it again")


def _domain_error(_eh: Any, _request: Request, exc: DomainError) -> Problem:
    status = status_for(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="kinetic"'} if status == 401 else None
    return Problem(title=exc.title, type_=exc.type_slug, detail=exc.detail,
                   status=status, headers=headers, **exc.extensions)


def _invalid_input(eh: Any, request: Request, exc: RequestValidationError) -> Problem:
    """The 422 lists each error with the input it refused. FastAPI's JSON parser reads NaN
    and Infinity, which JSON has not, so such an input is quoted as text (``"nan"``): the
    answer could not be written otherwise, and the refusal would become a 500."""
    return request_validation_handler_(eh, request, RequestValidationError(
        _quoted(exc.errors()), body=exc.body))


def _quoted(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _quoted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_quoted(v) for v in value]
    return value


def _with_trace_id(content: dict, _request: Request, response: Response
                   ) -> tuple[dict, Response]:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        import json

        content = {**content, "trace_id": format(span.trace_id, "032x")}
        response.body = json.dumps(content).encode()
    return content, response


def install_problem_handlers(app: FastAPI) -> None:
    handler = new_exception_handler(
        logger=log,
        handlers={DomainError: _domain_error,  # type: ignore[dict-item]
                  OverflowError: _out_of_range,
                  asyncpg.DataError: _unstorable_text,
                  DBAPIError: _unstorable_text},
        unhandled_wrappers={"default": InternalProblem},
        post_hooks=[_with_trace_id],
        documentation_uri_template=PROBLEM_URI,
        request_validation_handler=_invalid_input,
    )
    add_exception_handler(app, handler)
    # Registered on its own so Starlette treats it as handled (not re-raised as a 500 crash).
    app.add_exception_handler(DomainError, handler)
    app.add_exception_handler(OverflowError, handler)
    app.add_exception_handler(asyncpg.DataError, handler)
    app.add_exception_handler(DBAPIError, handler)
    _document_rule_violations(app)


def _document_rule_violations(app: FastAPI) -> None:
    """A 422 is either invalid input (a problem with ``errors``) or a business rule that
    refused the request (a plain problem): say both in every operation's OpenAPI entry."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                response = operation.get("responses", {}).get("422")
                if response is None:
                    continue
                response["description"] = "Invalid input, or a business rule refused it"
                response["content"] = {"application/problem+json": {"schema": {"anyOf": [
                    {"$ref": "#/components/schemas/HTTPValidationError"},
                    {"$ref": "#/components/schemas/Problem"},
                ]}}}
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
