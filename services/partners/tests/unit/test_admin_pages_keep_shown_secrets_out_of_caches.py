"""The partner admin pages that show a secret or key once tell the browser not to keep them
(Cache-Control: no-store), so Back on a shared machine cannot bring one up again. The pages'
own logic, with the API and the templates replaced by fakes (no stack)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from kinetic_infra.auth.principal import Principal, Role
from partners.adapters import admin_pages

PARTNER = str(uuid.uuid4())
OPERATOR = Principal("olga", "Olga", uuid.uuid4(), frozenset({Role.OPERATOR}))


class FakeKit:
    """Signed in as an operator; the API answers as a partner of one name would."""

    def __init__(self) -> None:
        self.rendered: list[dict[str, Any]] = []

    def signed_in(self, _request: Any) -> Principal:
        return OPERATOR

    def render(self, _request: Any, _template: str, _principal: Any, **context: Any
               ) -> HTMLResponse:
        self.rendered.append(context)
        return HTMLResponse("page")

    async def call(self, _request: Any, method: str, path: str, **_kwargs: Any
                   ) -> httpx.Response:
        answers: dict[tuple[str, str], Any] = {
            ("GET", "/partners"): [],
            ("GET", f"/partners/{PARTNER}"): {"partner_id": PARTNER, "name": "acme-ehr"},
            ("GET", f"/partners/{PARTNER}/deliveries"): [],
            ("POST", "/partners"): {"partner_id": PARTNER, "name": "acme-ehr",
                                    "secret": "whsec_registered"},
            ("POST", f"/partners/{PARTNER}/secret/rotate"): {"secret": "whsec_rotated"},
            ("POST", f"/partners/{PARTNER}/fhir-key"): {"partner_id": PARTNER,
                                                        "fhir_key": "kfk_new"},
            ("POST", f"/partners/{PARTNER}/nats-key"): {"partner_id": PARTNER,
                                                        "nats_key": "knk_new",
                                                        "stream": "PARTNERS"},
        }
        status = 201 if (method, path) == ("POST", "/partners") else 200
        return httpx.Response(status, json=answers[(method, path)])


def client() -> tuple[TestClient, FakeKit]:
    kit = FakeKit()
    app = FastAPI()
    app.include_router(admin_pages.router(None, kit))  # type: ignore[arg-type]
    return TestClient(app), kit


def test_a_rotated_webhook_secret_is_shown_on_a_page_no_cache_keeps() -> None:
    pages, kit = client()
    answer = pages.post(f"/admin/partners/{PARTNER}/rotate", data={"overlap_hours": "24"})
    assert answer.status_code == 200
    assert kit.rendered[-1]["shown"]["value"] == "whsec_rotated"
    assert answer.headers.get("cache-control") == "no-store"


def test_a_new_fhir_or_nats_key_is_shown_on_a_page_no_cache_keeps() -> None:
    pages, kit = client()
    for kind, key in (("fhir", "kfk_new"), ("nats", "knk_new")):
        answer = pages.post(f"/admin/partners/{PARTNER}/keys/{kind}")
        assert answer.status_code == 200
        assert kit.rendered[-1]["shown"]["value"] == key
        assert answer.headers.get("cache-control") == "no-store", kind


def test_a_registrations_secret_is_shown_on_a_page_no_cache_keeps() -> None:
    pages, kit = client()
    answer = pages.post("/admin/partners", data={
        "name": "acme-ehr", "webhook_url": "https://ehr.example/hook",
        "event_types": "kinetic.booking.*", "data_classes": "identifiers"})
    assert answer.status_code == 201
    assert kit.rendered[-1]["secret"] == "whsec_registered"
    assert answer.headers.get("cache-control") == "no-store"


def test_a_partner_page_that_shows_no_secret_may_be_cached_as_usual() -> None:
    pages, kit = client()
    answer = pages.get(f"/admin/partners/{PARTNER}")
    assert answer.status_code == 200
    assert kit.rendered[-1]["shown"] is None
    assert "cache-control" not in answer.headers
