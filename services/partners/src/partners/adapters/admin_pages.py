"""The operator's pages for partner systems: the organization's partners and the form to
register one with its grant (event type patterns, data classes); one page per partner with
its grant, secret rotation, the delivery log (dead letters marked) and replay from a time.

Every read and action is a call of partners' own API (kinetic_infra.http.admin_pages), so
the pages follow its rules (https webhooks only, patterns that match a published event,
operators only), its tenancy and its audit trail. A refused action shows the problem in the
page's status region and keeps what was typed (the page is rendered again, not redirected);
a replay that was done redirects (post/redirect/get). A registration, rotation or new key
that was done is rendered instead: its answer carries the webhook secret or the key, shown
only then, which must never travel in a URL (history, logs), and the browser is told not to
keep that page (no-store). The registration form carries a key drawn with the page (the API's
Idempotency-Key), so a form sent twice is one partner, and either answer shows its secret.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kinetic_infra.auth.principal import Principal
from kinetic_infra.http.admin_pages import AdminKit, problem_text, redirect
from kinetic_infra.service.definition import Runtime
from partners.domain.partner import DataClass, Grant

HOME = "/admin/partners"
MENU = [("Partners", HOME)]
DATA_CLASSES: list[str] = list(get_args(DataClass))
DEFAULT_CLASSES: list[str] = list(Grant.model_fields["data_classes"].get_default(
    call_default_factory=True))
SEPARATORS = re.compile(r"[,\s]+")


# kind in the page's address -> (what it is called, the API's path, the answer's field)
KEYS = {"fhir": ("FHIR key", "fhir-key", "fhir_key"),
        "nats": ("NATS key", "nats-key", "nats_key")}


def patterns(typed: str | None) -> list[str]:
    """Event type patterns as typed: one a line, or comma-separated."""
    return [p for p in SEPARATORS.split((typed or "").strip()) if p]


def utc_since(typed: str | None) -> str:
    """A datetime-local value ("2025-05-01T10:30") as the UTC time the API takes. What does
    not parse goes as typed, so the API refuses it naming the field."""
    typed = (typed or "").strip()
    try:
        at = datetime.fromisoformat(typed)
    except ValueError:
        return typed
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _whole(text: str | None) -> Any:
    """A count as typed, or the text itself: the API then refuses it naming the field."""
    typed = (text or "").strip()
    return int(typed) if typed.isdigit() else typed or None


def router(_runtime: Runtime, kit: AdminKit) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    call = kit.call

    def render(request: Request, template: str, principal: Principal, *, title: str,
               message: str | None = None, warn: bool = False, status_code: int = 200,
               secret: str | None = None, shown: dict[str, Any] | None = None,
               **context: Any) -> Response:
        response = kit.render(request, template, principal, title=title, secret=secret,
                              shown=shown, message=message or request.query_params.get("flash"),
                              warn=warn or request.query_params.get("warn") == "1", **context)
        response.status_code = status_code
        if secret or shown:
            # Shown once (a registration's secret, a rotated one, a new FHIR or NATS key): in
            # no cache, so Back on a shared machine cannot bring it up again.
            response.headers["Cache-Control"] = "no-store"
        return response

    # -- the organization's partners -----------------------------------------------------------

    async def partners_page(request: Request, principal: Principal, *,
                            message: str | None = None, warn: bool = False,
                            kept: dict[str, Any] | None = None,
                            registered: dict[str, Any] | None = None,
                            status_code: int = 200) -> Response:
        listed = await call(request, "GET", "/partners")
        rows: list[dict[str, Any]] = []
        if listed.status_code == 200:
            rows = listed.json()
        elif message is None:
            message, warn = f"The partners could not be read: {problem_text(listed)}", True
        form = kept or {"name": "", "webhook_url": "", "event_types": "",
                        "data_classes": DEFAULT_CLASSES}
        return render(request, "partners.html", principal, title="Partners",
                      rows=rows, form=form, data_classes=DATA_CLASSES, registered=registered,
                      secret=registered["secret"] if registered else None,
                      # Drawn with the page: the partner this form registers, however many
                      # times it is sent.
                      key=str(uuid.uuid4()), message=message, warn=warn,
                      status_code=status_code)

    @pages.get(HOME)
    async def partner_list(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        return await partners_page(request, principal)

    @pages.post(HOME)
    async def register(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        raw = await request.form()
        kept = {field: str(raw.get(field, "")).strip()
                for field in ("name", "webhook_url", "event_types")}
        kept["data_classes"] = [str(c) for c in raw.getlist("data_classes")]
        key = str(raw.get("key", ""))
        response = await call(request, "POST", "/partners", json={
            "name": kept["name"], "webhook_url": kept["webhook_url"],
            "grant": {"event_types": patterns(kept["event_types"]),
                      "data_classes": kept["data_classes"]}},
            headers={"Idempotency-Key": key} if key else {})
        if response.status_code != 201:
            return await partners_page(request, principal,
                                       message=f"Not registered: {problem_text(response)}",
                                       warn=True, kept=kept, status_code=response.status_code)
        registered = response.json()
        return await partners_page(request, principal, registered=registered,
                                   message=f"Partner {registered['name']} registered.",
                                   status_code=201)

    # -- one partner ---------------------------------------------------------------------------

    async def partner_page(request: Request, principal: Principal, partner_id: str, *,
                           message: str | None = None, warn: bool = False,
                           kept: dict[str, str] | None = None,
                           shown: dict[str, Any] | None = None,
                           status_code: int = 200) -> Response:
        found = await call(request, "GET", f"/partners/{partner_id}")
        if found.status_code != 200:
            return redirect(HOME, f"Partner {partner_id}: {problem_text(found)}", warn=True)
        log = await call(request, "GET", f"/partners/{partner_id}/deliveries")
        rows: list[dict[str, Any]] = []
        if log.status_code == 200:
            rows = log.json()  # newest first, as the API lists them
        elif message is None:
            message, warn = f"The delivery log could not be read: {problem_text(log)}", True
        hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        form = {"overlap_hours": "24", "since": hour_ago, **(kept or {})}
        p = found.json()
        return render(request, "partner.html", principal, title=f"Partner {p['name']}", p=p,
                      deliveries=rows, dead=sum(d["status"] == "dead" for d in rows),
                      form=form, shown=shown, message=message, warn=warn,
                      # Drawn with the page: the rotation its form asks for, however many
                      # times it is sent (a reload shows the same new secret).
                      key=str(uuid.uuid4()), status_code=status_code)

    @pages.get(HOME + "/{partner_id}")
    async def one_partner(request: Request, partner_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        return await partner_page(request, principal, partner_id)

    @pages.post(HOME + "/{partner_id}/rotate")
    async def rotate(request: Request, partner_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        form = await request.form()
        overlap, key = str(form.get("overlap_hours", "")).strip(), str(form.get("key", ""))
        response = await call(request, "POST", f"/partners/{partner_id}/secret/rotate",
                              json={"overlap_hours": _whole(overlap)},
                              headers={"Idempotency-Key": key} if key else {})
        if response.status_code != 200:
            return await partner_page(request, principal, partner_id,
                                      message=f"Not rotated: {problem_text(response)}",
                                      warn=True, kept={"overlap_hours": overlap},
                                      status_code=response.status_code)
        previous = (f"the previous one signs too for {overlap} hours" if overlap != "0"
                    else "the previous one no longer signs")
        return await partner_page(request, principal, partner_id,
                                  message=f"New secret issued; {previous}.",
                                  shown={"title": "New webhook signing secret",
                                         "value": response.json()["secret"]})

    @pages.post(HOME + "/{partner_id}/keys/{kind}")
    async def issue_key(request: Request, partner_id: str, kind: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        if kind not in KEYS:
            return redirect(f"{HOME}/{partner_id}", f"No such key: {kind}", warn=True)
        title, path, field = KEYS[kind]
        response = await call(request, "POST", f"/partners/{partner_id}/{path}")
        if response.status_code != 200:
            return await partner_page(request, principal, partner_id,
                                      message=f"No key issued: {problem_text(response)}",
                                      warn=True, status_code=response.status_code)
        issued = response.json()
        details = {k: v for k, v in issued.items() if k not in ("partner_id", field)}
        return await partner_page(request, principal, partner_id,
                                  message=f"New {title} issued; the previous one stops working.",
                                  shown={"title": f"New {title}", "value": issued[field],
                                         "details": details})

    @pages.post(HOME + "/{partner_id}/replay")
    async def replay(request: Request, partner_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        since = str((await request.form()).get("since", "")).strip()
        response = await call(request, "POST", f"/partners/{partner_id}/replay",
                              json={"since": utc_since(since)})
        if response.status_code != 200:
            return await partner_page(request, principal, partner_id,
                                      message=f"Not replayed: {problem_text(response)}",
                                      warn=True, kept={"since": since},
                                      status_code=response.status_code)
        n = response.json()["requeued"]
        return redirect(f"{HOME}/{partner_id}", f"Replay from {since.replace('T', ' ')} UTC: "
                        f"{n} {'delivery' if n == 1 else 'deliveries'} sent again, by webhook "
                        f"and on NATS.")

    return pages
