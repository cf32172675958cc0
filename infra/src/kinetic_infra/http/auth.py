"""Authentication and authorization at the HTTP edge.

Every request carries a JWT: ``Authorization: Bearer …`` for API clients, or the session
cookie the development issuer sets for the admin pages. No token, or an expired, forged or
wrong-audience one: 401. A valid token whose roles do not allow the operation: 403. The
organization (tenant) comes from the token, never from the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kinetic_contracts.problems import DomainError
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.auth.tokens import InvalidTokenError, TokenVerifier

SESSION_COOKIE = "kinetic_token"

_bearer = HTTPBearer(auto_error=False, description="A JWT from the organization's OIDC issuer")


class UnauthenticatedError(DomainError):
    type_slug = "unauthenticated"
    title = "Sign in first: the request has no valid token"


class ForbiddenError(DomainError):
    type_slug = "forbidden"
    title = "Your roles do not allow this"


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # Async, so that a request does not hop to a worker thread and back for it (FastAPI
    # runs a plain function dependency in its thread pool); only a token not verified
    # recently goes there, as verifying it may fetch the issuer's key set.
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise UnauthenticatedError("send a bearer token (or sign in to the admin pages)")
    verifier: TokenVerifier = request.app.state.verifier
    principal = verifier.verified(token)
    if principal is None:
        try:
            principal = await run_in_threadpool(verifier.verify, token)
        except InvalidTokenError:
            raise UnauthenticatedError("the token is invalid or expired") from None
    request.state.principal = principal
    return principal


CurrentStaff = Annotated[Principal, Depends(current_principal)]


def requires(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency: the caller must hold one of ``roles`` somewhere in the organization."""

    async def check(principal: CurrentStaff) -> Principal:
        if not principal.has_any(roles):
            raise ForbiddenError(f"needs one of: {', '.join(r.value for r in roles)}")
        return principal

    return check


def Staff(*roles: Role) -> type[Principal]:  # noqa: N802 - reads as a type in signatures
    return Annotated[Principal, Depends(requires(*roles))]  # type: ignore[return-value]
