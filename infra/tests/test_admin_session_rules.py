"""The admin session cookie acts only for its own origin's pages, pages cannot be framed,
staff can sign out, and a form posted after the session expired returns to its page.

A service app in miniature: the shared AdminKit, one page, one form route written the way
every service writes them, and one API route signed in by ``CurrentStaff``.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.auth.tokens import InvalidTokenError
from kinetic_infra.http.admin_pages import AdminKit, redirect
from kinetic_infra.http.app import TEMPLATES_DIR
from kinetic_infra.http.auth import SESSION_COOKIE, CurrentStaff
from kinetic_infra.http.problems import install_problem_handlers
from kinetic_infra.settings import Settings

HERE = "http://127.0.0.1:8103"  # billing's port
OTHER_PORT = "http://127.0.0.1:8105"  # partners': the same site, another origin
ISSUER = "http://127.0.0.1:8100"
TENANT = uuid.uuid4()
OPERATOR = Principal("olga", "Olga", TENANT, frozenset({Role.OPERATOR}))
THERAPIST = Principal("theo", "Theo", TENANT, frozenset({Role.THERAPIST}))


class _Verifier:
    """Tokens are the staff ids of OPERATOR and THERAPIST."""

    def verified(self, token: str) -> Principal | None:
        return None

    def verify(self, token: str) -> Principal:
        staff = {p.staff_id: p for p in (OPERATOR, THERAPIST)}
        if token not in staff:
            raise InvalidTokenError("unknown")
        return staff[token]


def _app(actions: list[str]) -> FastAPI:
    app = FastAPI()
    app.state.verifier = _Verifier()
    install_problem_handlers(app)
    settings = Settings(service="billing", database_url="postgresql://u@h/d",
                        oidc_login_url=f"{ISSUER}/login", oidc_logout_url=f"{ISSUER}/logout")
    kit = AdminKit("billing", settings, Jinja2Templates(directory=str(TEMPLATES_DIR)), [])

    @app.get("/admin")
    async def page(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        return kit.render(request, "admin.html", principal, title="Admin", tables=[],
                          dead_letters=[], base="")

    @app.post("/admin/accounts/{patient}/packs/{pack}/refund")
    async def refund_page(request: Request, patient: str, pack: str) -> Response:
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        done = await kit.call(request, "POST", f"/packs/{pack}/refund")
        return redirect(f"/admin/accounts/{patient}", f"refund: {done.status_code}")

    @app.get("/patients/{patient}")
    async def read_api(patient: str, staff: CurrentStaff) -> dict[str, str]:
        actions.append(f"read {patient} by {staff.staff_id}")  # audited, in a service
        return {"patient": patient}

    @app.post("/packs/{pack}/refund")
    async def refund_api(pack: str, staff: CurrentStaff) -> dict[str, str]:
        actions.append(f"refund {pack} by {staff.staff_id}")
        return {"refunded": pack}

    return app


@pytest.fixture
def actions() -> list[str]:
    return []


@pytest.fixture
async def client(actions: list[str]) -> httpx.AsyncClient:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(actions)),
                                 base_url=HERE) as c:
        yield c


REFUND = "/admin/accounts/p1/packs/k1/refund"


@pytest.mark.parametrize("headers", [
    {"Origin": OTHER_PORT},  # another service's page on this host: "same site" to a browser
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # a sandboxed frame or a privacy redirect
    {"Referer": f"{OTHER_PORT}/admin"},
    {"Sec-Fetch-Site": "same-site", "Origin": OTHER_PORT},
    {"Sec-Fetch-Site": "cross-site"},
])
async def test_a_form_posted_from_another_origin_is_refused_and_changes_nothing(
        client: httpx.AsyncClient, actions: list[str], headers: dict[str, str]) -> None:
    client.cookies.set(SESSION_COOKIE, "olga")
    refused = await client.post(REFUND, headers=headers)
    assert refused.status_code == 403
    assert "another site or service" in refused.text
    assert refused.headers["x-frame-options"] == "DENY"
    assert actions == []


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin", "Origin": HERE},
    {"Origin": HERE},  # a browser without Fetch Metadata
    {"Referer": f"{HERE}/admin/accounts/p1"},
    {},  # no browser at all (a script, a test client): no page can have forged it
])
async def test_a_form_posted_from_the_page_itself_is_run(
        client: httpx.AsyncClient, actions: list[str], headers: dict[str, str]) -> None:
    client.cookies.set(SESSION_COOKIE, "olga")
    done = await client.post(REFUND, headers=headers)
    assert done.status_code == 303 and "refund%3A+200" in done.headers["location"]
    assert actions == ["refund k1 by olga"]


async def test_the_api_refuses_the_session_cookie_on_a_cross_origin_post(
        client: httpx.AsyncClient, actions: list[str]) -> None:
    """An API route with no body is as forgeable as a page's form: the cookie must not act
    for it either. A bearer token is never sent by a browser on its own, so it still does."""
    client.cookies.set(SESSION_COOKIE, "olga")
    refused = await client.post("/packs/k1/refund", headers={"Origin": OTHER_PORT})
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/forbidden"
    assert actions == []
    same = await client.post("/packs/k1/refund", headers={"Sec-Fetch-Site": "same-origin"})
    client.cookies.clear()
    bearer = await client.post("/packs/k2/refund", headers={
        "Origin": OTHER_PORT, "Authorization": "Bearer olga"})
    assert (same.status_code, bearer.status_code) == (200, 200)
    assert actions == ["refund k1 by olga", "refund k2 by olga"]


async def test_a_link_followed_from_another_origin_still_works(
        client: httpx.AsyncClient, actions: list[str]) -> None:
    """Following a link from another service's page (or a bookmark, or an e-mail) is staff
    reading, as they meant to."""
    client.cookies.set(SESSION_COOKIE, "olga")
    navigation = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate",
                  "Referer": f"{OTHER_PORT}/admin"}
    page = await client.get("/admin", headers=navigation)
    assert page.status_code == 200 and "Olga" in page.text
    record = await client.get("/patients/p1", headers=navigation)
    assert record.status_code == 200 and actions == ["read p1 by olga"]


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"},
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
])
async def test_another_pages_embedded_read_is_refused_and_audits_nothing(
        client: httpx.AsyncClient, actions: list[str], headers: dict[str, str]) -> None:
    """Another page's <img src> or fetch of a patient's record, sent with the staff member's
    cookie, would be audited as their read: neither the API nor a page reads for it."""
    client.cookies.set(SESSION_COOKIE, "olga")
    record = await client.get("/patients/p1", headers=headers)
    page = await client.get("/admin", headers=headers)
    assert record.status_code == 403 and record.json()["type"] == "/problems/forbidden"
    assert page.status_code == 403 and "Olga" not in page.text
    same_origin = await client.get("/patients/p2", headers={
        "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"})
    assert same_origin.status_code == 200
    assert actions == ["read p2 by olga"]


async def test_admin_pages_cannot_be_framed(client: httpx.AsyncClient) -> None:
    client.cookies.set(SESSION_COOKIE, "olga")
    page = await client.get("/admin")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"


async def test_every_page_has_a_sign_out_that_ends_the_session_at_the_issuer(
        client: httpx.AsyncClient) -> None:
    client.cookies.set(SESSION_COOKIE, "olga")
    page = await client.get("/admin")
    assert f'<form method="post" action="{ISSUER}/logout"' in page.text
    assert f'name="next" value="{HERE}/admin"' in page.text
    assert ">Sign out</button>" in page.text


def _next_of(response: httpx.Response) -> str:
    location = response.headers["location"]
    assert location.startswith(f"{ISSUER}/login?next=")
    return parse_qs(urlsplit(location).query)["next"][0]


async def test_a_form_posted_after_the_session_expired_returns_to_the_page_it_was_on(
        client: httpx.AsyncClient, actions: list[str]) -> None:
    """Signing in again leads back to a page (GET), never to the form's POST URL (a 405, or
    an empty form)."""
    form_page = f"{HERE}/admin/accounts/p1?tab=packs"
    expired = await client.post(REFUND, headers={"Origin": HERE, "Referer": form_page})
    assert expired.status_code == 303 and _next_of(expired) == form_page
    no_referer = await client.post(REFUND)
    assert _next_of(no_referer) == f"{HERE}/admin"
    foreign_referer = await client.post(REFUND, headers={"Referer": "http://evil.example/x"})
    assert foreign_referer.status_code == 403  # and never a redirect to the foreign page
    page = await client.get("/admin?flash=x")
    assert _next_of(page) == f"{HERE}/admin?flash=x"
    assert actions == []


async def test_only_operators_are_told_there_are_no_dead_letters(
        client: httpx.AsyncClient) -> None:
    """Others are not shown dead letters at all, so "every message was processed" would be a
    claim about what they cannot see."""
    client.cookies.set(SESSION_COOKIE, "theo")
    therapist = await client.get("/admin")
    assert "every message was processed" not in therapist.text
    assert "shown to the organization's operators only" in therapist.text
    client.cookies.set(SESSION_COOKIE, "olga")
    operator = await client.get("/admin")
    assert "No dead letters: every message was processed." in operator.text


async def test_signing_out_at_the_development_issuer_clears_the_session_cookie(
        tmp_path) -> None:
    from kinetic_infra.auth.dev_issuer import create_issuer_app, save_staff

    save_staff(tmp_path, [OPERATOR])
    issuer = create_issuer_app(tmp_path, ISSUER)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=issuer),
                                 base_url=ISSUER) as browser:
        login = await browser.get("/login")
        assert login.headers["x-frame-options"] == "DENY"
        signed_in = await browser.post("/login", data={"staff_id": "olga",
                                                       "next": f"{HERE}/admin"})
        assert SESSION_COOKIE in browser.cookies
        out = await browser.post("/logout", data={"next": f"{HERE}/admin"})
    assert out.status_code == 303 and out.headers["location"] == f"{HERE}/admin"
    assert SESSION_COOKIE not in browser.cookies
    cleared = out.headers["set-cookie"]
    assert cleared.startswith(f'{SESSION_COOKIE}="";') and "Max-Age=0" in cleared
    assert "Path=/" in cleared
    assert signed_in.status_code == 303


async def test_a_sign_in_ends_with_the_browser_or_the_working_day(tmp_path) -> None:
    """The cookie is a session cookie (no Max-Age, no Expires): closing the browser of a
    shared front-desk computer signs its user out; a browser kept open is signed out when the
    token expires, after eight hours."""
    from kinetic_infra.auth.dev_issuer import create_issuer_app, save_staff

    save_staff(tmp_path, [OPERATOR])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(
            app=create_issuer_app(tmp_path, ISSUER)), base_url=ISSUER) as browser:
        signed_in = await browser.post("/login", data={"staff_id": "olga", "next": "/"})
    cookie = signed_in.headers["set-cookie"]
    claims = jwt.decode(browser.cookies[SESSION_COOKIE], options={"verify_signature": False})
    assert "max-age" not in cookie.lower() and "expires" not in cookie.lower()
    assert claims["exp"] - claims["iat"] == 8 * 3600
