"""The development OIDC issuer that `make run` starts: it signs staff in to the admin pages
and publishes its key set for the services to verify tokens with.

Not for production (any OIDC issuer takes its place there, by configuration). Staff come
from ``staff.json`` in the data directory, written when the demo organization is seeded.
The session is a cookie holding the JWT; cookies ignore ports, so one sign-in on
127.0.0.1 reaches every service's admin page.
"""

from __future__ import annotations

import argparse
import html
import json
from pathlib import Path
from urllib.parse import quote, urlparse

from fastapi import FastAPI, Form
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from kinetic_infra.auth.principal import Principal
from kinetic_infra.auth.tokens import SigningKey
# Its pages are not to be framed either: a framed click on a staff member would sign them in.
from kinetic_infra.http.auth import NO_FRAMING

COOKIE = "kinetic_token"
AUDIENCE = "kinetic"
# One sign-in lasts a working day at most: the token's lifetime. The cookie holding it is a
# session cookie, gone when the browser closes, so the next person at a shared front-desk
# computer does not open the browser signed in as the last one.
SESSION_SECONDS = 8 * 3600


def key_path(data_dir: Path) -> Path:
    return data_dir / "dev-issuer" / "signing-key.pem"


def staff_path(data_dir: Path) -> Path:
    return data_dir / "dev-issuer" / "staff.json"


def load_staff(data_dir: Path) -> list[Principal]:
    path = staff_path(data_dir)
    if not path.exists():
        return []
    return [Principal.from_claims(c) for c in json.loads(path.read_text())]


def save_staff(data_dir: Path, staff: list[Principal]) -> None:
    path = staff_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([p.claims() for p in staff], indent=2))


def _local(url: str) -> bool:
    return urlparse(url).hostname in {"127.0.0.1", "localhost"}


def create_issuer_app(data_dir: Path, issuer: str) -> FastAPI:
    key = SigningKey.load_or_create(key_path(data_dir))
    app = FastAPI(title="Kinetic development issuer", docs_url=None, redoc_url=None)

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, object]:
        return {"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json",
                "id_token_signing_alg_values_supported": ["RS256"]}

    @app.get("/jwks.json")
    async def jwks() -> JSONResponse:
        return JSONResponse(key.jwks())

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(next: str = "/") -> HTMLResponse:  # noqa: A002 - the OIDC name
        rows = "".join(
            f'<li><form method="post" action="/login"><input type="hidden" name="staff_id" '
            f'value="{html.escape(p.staff_id)}"><input type="hidden" name="next" '
            f'value="{html.escape(next)}"><button>{html.escape(p.name)}</button> '
            f'<small>{html.escape(p.role_label())}</small></form></li>'
            for p in load_staff(data_dir))
        return HTMLResponse(
            "<!doctype html><title>Sign in · Kinetic</title>"
            "<style>body{font:15px system-ui;margin:3rem auto;max-width:34rem}"
            "li{list-style:none;margin:.5rem 0}button{min-width:14rem;padding:.4rem}</style>"
            "<h1>Sign in to Kinetic</h1><p>Development issuer: choose a demo staff member.</p>"
            f"<ul>{rows or '<li>No staff yet: the demo organization is seeded by make run.</li>'}"
            "</ul>", headers=NO_FRAMING)

    @app.post("/login")
    async def login(staff_id: str = Form(...), next: str = Form("/")) -> RedirectResponse:  # noqa: A002
        staff = {p.staff_id: p for p in load_staff(data_dir)}
        if staff_id not in staff:
            return RedirectResponse(f"/login?next={quote(next)}", status_code=303)
        token = key.mint(staff[staff_id], issuer=issuer, audience=AUDIENCE,
                         ttl_seconds=SESSION_SECONDS)
        response = RedirectResponse(next if _local(next) else "/login", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path="/")
        return response

    @app.post("/logout")
    async def logout(next: str = Form("/login")) -> RedirectResponse:  # noqa: A002
        """The admin pages' Sign out (KINETIC_OIDC_LOGOUT_URL): the cookie is the host's,
        whichever port set it, so clearing it here signs out of every service's pages."""
        response = RedirectResponse(next if _local(next) else "/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="kinetic-dev-issuer")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    # In a container it listens on every interface and browsers reach it as localhost.
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--public-url", default="",
                        help="its address as browsers and tokens name it (the issuer, iss)")
    args = parser.parse_args()
    issuer = args.public_url.rstrip("/") or f"http://127.0.0.1:{args.port}"
    uvicorn.run(create_issuer_app(args.data_dir, issuer), host=args.host, port=args.port,
                log_level="warning")


if __name__ == "__main__":
    main()
