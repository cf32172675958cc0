"""Authentication and authorization at the HTTP edge.

Every request carries a JWT: ``Authorization: Bearer …`` for API clients, or the session
cookie the development issuer sets for the admin pages. No token, or an expired, forged or
wrong-audience one: 401. A valid token whose roles do not allow the operation: 403. The
organization (tenant) comes from the token, never from the request.

The cookie, unlike a bearer token, goes with every request the browser makes to the host,
whichever page makes it, so it only counts for a state-changing request from a page of the
same origin (``cross_origin``): SameSite=Lax is not enough, as "same site" ignores ports and
every service (and the issuer) is another port of one host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kinetic_contracts.problems import DomainError
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.auth.tokens import InvalidTokenError, TokenVerifier

SESSION_COOKIE = "kinetic_token"

# Methods a browser may send to another origin without asking (and that change nothing here).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# On every page a signed-in browser sees: no other page may frame it (clickjacking); the CSP
# form for current browsers, X-Frame-Options for older ones.
NO_FRAMING = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}

_bearer = HTTPBearer(auto_error=False, description="A JWT from the organization's OIDC issuer")


class UnauthenticatedError(DomainError):
    type_slug = "unauthenticated"
    title = "Sign in first: the request has no valid token"


class ForbiddenError(DomainError):
    type_slug = "forbidden"
    title = "Your roles do not allow this"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_origin(request: Request) -> bool:
    """Whether a request was sent by a page of another origin (a forged form post from another
    site or another service's port, or its ``<img>`` or script reading a patient's record):
    the session cookie must not act for it.

    Browsers say where a request comes from: ``Sec-Fetch-Site`` (every current one), else
    ``Origin``, which they always send on a cross-origin POST ("null" from a sandboxed or
    privacy-redirected page, refused too), else ``Referer``. A request naming none of them
    is not from a browser (a script, a test client), so no page can have forged it.

    A read changes nothing, but it is audited as the signed-in staff member's: with the
    cookie, only staff following a link (a navigation, from any page) or a page of this origin
    read; another page's embedded or scripted request does not (browsers without
    ``Sec-Fetch-*`` cannot tell the two apart, so their reads go on).
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if request.method in SAFE_METHODS:
        return fetch_site not in (None, "same-origin", "none") and \
            request.headers.get("sec-fetch-mode") != "navigate"
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")  # none: typed or bookmarked by staff
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return False
    return _origin(source) != _origin(str(request.url))


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # Async, so that a request does not hop to a worker thread and back for it (FastAPI
    # runs a plain function dependency in its thread pool); only a token not verified
    # recently goes there, as verifying it may fetch the issuer's key set.
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not credentials and token and cross_origin(request):
        raise ForbiddenError("a form or script on another origin (another port counts) sent "
                             "this request with your session cookie; it was not run")
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
