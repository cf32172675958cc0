"""What a service's own admin pages get from the platform: sign-in, the shared look, and a
client of the service's own API.

The pages are a client of the public API, called in-process as the signed-in staff member:
every rule, problem, tenancy check and audit record is the API's, so the pages can never
allow what the API refuses. Forms post to the page routes, which call the API and redirect
(post/redirect/get), so a reload never repeats an action. Cookies are SameSite=Lax, so
another site cannot post a form with them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from kinetic_infra.auth.tokens import InvalidTokenError

from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.http.auth import SESSION_COOKIE
from kinetic_infra.settings import Settings


@dataclass
class AdminKit:
    service: str
    settings: Settings
    templates: Jinja2Templates
    menu: list[tuple[str, str]]

    def signed_in(self, request: Request) -> Principal | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        try:
            return request.app.state.verifier.verify(token)  # type: ignore[no-any-return]
        except InvalidTokenError:
            return None

    def sign_in(self, request: Request) -> Response:
        if not self.settings.oidc_login_url:
            return HTMLResponse("Sign in with your organization's identity provider.",
                                status_code=401)
        return RedirectResponse(f"{self.settings.oidc_login_url}?next={quote(str(request.url))}",
                                status_code=303)

    def render(self, request: Request, template: str, principal: Principal, **context: Any
               ) -> Response:
        return self.templates.TemplateResponse(request, template, {
            "service": self.service, "nav": self.settings.admin_nav(), "staff": principal,
            "is_operator": principal.has_any([Role.OPERATOR]), "menu": self.menu,
            "current_path": request.url.path, **context})

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
        token = request.cookies.get(SESSION_COOKIE, "")
        async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=request.app), base_url="http://admin",
                headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            yield client


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
