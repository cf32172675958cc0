"""What a service's own admin pages get from the platform: sign-in, the shared look, and a
client of the service's own API.

The pages are a client of the public API, called in-process as the signed-in staff member:
every rule, problem, tenancy check and audit record is the API's, so the pages can never
allow what the API refuses. Forms post to the page routes, which call the API and redirect
(post/redirect/get), so a reload never repeats an action.

SameSite=Lax cookies still go with a form posted from another port of the same host (every
service's, the issuer's) or another subdomain, so the session only counts for a
state-changing request from the page's own origin (``cross_origin``): any other is refused
with a 403 page, before a page route or the API runs it. Pages refuse to be framed, so no
other page can trick a click on their buttons.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, date
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from kinetic_infra.auth.tokens import InvalidTokenError

from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.http.auth import NO_FRAMING, SESSION_COOKIE, cross_origin
from kinetic_infra.settings import Settings


def _session_token(request: Request) -> str | None:
    """The session cookie, unless a page of another origin sent this request with it."""
    return None if cross_origin(request) else request.cookies.get(SESSION_COOKIE)


def _return_url(request: Request) -> str:
    """Where staff go back to after signing in (or out): this page. A form's post has no page
    of its own (a GET of its URL is a 405 or an empty form), so it is the page the form was
    on, from a same-origin Referer, else the service's admin home."""
    if request.method in ("GET", "HEAD"):
        return str(request.url)
    referer = request.headers.get("referer", "")
    return referer if referer.startswith(str(request.base_url)) else f"{request.base_url}admin"


@dataclass
class AdminKit:
    service: str
    settings: Settings
    templates: Jinja2Templates
    menu: list[tuple[str, str]]

    def signed_in(self, request: Request) -> Principal | None:
        token = _session_token(request)
        if not token:
            return None
        try:
            return request.app.state.verifier.verify(token)  # type: ignore[no-any-return]
        except InvalidTokenError:
            return None

    def sign_in(self, request: Request) -> Response:
        """The answer to a request that is not signed in: the sign-in page, or a 403 for one
        sent from another origin (its cookie was not used; signing in would not help)."""
        if cross_origin(request):
            return HTMLResponse(
                "<!doctype html><title>Refused · Kinetic</title><h1>Refused</h1><p>This request "
                "was sent by a page of another site or service, so it was not run. Open "
                "the page here and act from there.</p>", status_code=403, headers=NO_FRAMING)
        if not self.settings.oidc_login_url:
            return HTMLResponse("Sign in with your organization's identity provider.",
                                status_code=401, headers=NO_FRAMING)
        return RedirectResponse(
            f"{self.settings.oidc_login_url}?next={quote(_return_url(request))}", status_code=303)

    def render(self, request: Request, template: str, principal: Principal, **context: Any
               ) -> Response:
        response = self.templates.TemplateResponse(request, template, {
            "service": self.service, "nav": self.settings.admin_nav(), "staff": principal,
            "is_operator": principal.has_any([Role.OPERATOR]), "menu": self.menu,
            "current_path": request.url.path, "sign_out_url": self.settings.oidc_logout_url,
            "sign_out_next": _return_url(request), **context})
        response.headers.update(NO_FRAMING)
        return response

    async def call(self, request: Request, method: str, path: str, **kwargs: Any
                   ) -> httpx.Response:
        """One call of this service's API as the signed-in staff member."""
        async with self.api(request) as api:
            return await api.request(method, path, **kwargs)

    async def get_or(self, request: Request, path: str, default: Any) -> Any:
        """The API's answer to a GET, or ``default`` when it refuses (the page shows less,
        the API's rules stay the API's)."""
        response = await self.call(request, "GET", path)
        return response.json() if response.status_code == 200 else default

    @asynccontextmanager
    async def api(self, request: Request) -> AsyncIterator[httpx.AsyncClient]:
        """This service's API, in-process, as the signed-in staff member."""
        # A page route that forgot to ask signed_in() still cannot act for a forged post.
        token = _session_token(request) or ""
        async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=request.app), base_url="http://admin",
                headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            yield client


def parse_date(value: str | None) -> date | None:
    """A day from a page's address, or None when it is not one the pages can show: one that does
    not parse, or one in the calendar's first or last year, where stepping a week or turning
    a local time into UTC overflows (Python's dates end at 9999-12-31)."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return day if day and MINYEAR < day.year < MAXYEAR else None


def unshown_day(value: str | None, instead: str) -> str | None:
    """The warning for a day in the address that is not one the pages can show (``parse_date``),
    saying what is shown ``instead``; None when there is no day or it can be shown."""
    if not value or parse_date(value) is not None:
        return None
    return f"“{value}” is not a day the calendar can show: {instead} is shown."


def redirect(to: str, flash: str | None = None, warn: bool = False, anchor: str = ""
             ) -> Response:
    """After a done action (post/redirect/get), with a message for the next page."""
    if flash:
        to += ("&" if "?" in to else "?") + urlencode(
            {"flash": flash, **({"warn": "1"} if warn else {})})
    return RedirectResponse(to + (f"#{anchor}" if anchor else ""), status_code=303)


def problem_text(response: httpx.Response) -> str:
    """A refused call as one line for the page: the problem's title and detail."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.reason_phrase}"
    if isinstance(body, dict) and "title" in body:
        detail = body.get("detail")
        # Validation errors (listed under ``errors`` by the problem handler): name the fields.
        errors = detail if isinstance(detail, list) else body.get("errors")
        if isinstance(errors, list) and errors:
            detail = "; ".join(f"{'.'.join(map(str, e.get('loc', [])[1:]))}: {e.get('msg')}"
                               for e in errors if isinstance(e, dict))
        return f"{body['title']}: {detail}" if detail else str(body["title"])
    return str(body)


AdminPages = Callable[[Any, AdminKit], APIRouter]
