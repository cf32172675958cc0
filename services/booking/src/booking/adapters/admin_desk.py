"""What every front-desk page shares: where the pages are, the small conversions between
what the front desk types and what booking's API takes, and ``Desk``, which asks the API as
the signed-in staff member, finds the location a page is about and renders a page (a form the
API refused comes back with what was typed and the problem as a warning)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import Response

from kinetic_contracts.booking.v1.events import WEEKDAYS
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.http.admin_pages import AdminKit

HOME = "/admin/front-desk"
PATIENTS = "/admin/front-desk/patients"
TYPES = [("initial_assessment", "Initial assessment"), ("treatment_session", "Treatment session"),
         ("reassessment", "Reassessment")]
DEFAULT_DAY = (7, 20)  # the hours shown for a location without opening hours
# A refused form comes back as a page, not a redirect: with its own status, so neither the
# browser's history nor a test mistakes it for a done action.
REFUSED = 422
# The day view chooses a slot for a patient when its address names one (from the "to book"
# list, an episode just opened, a patient's page): its "Book" links then carry these on.
PICK = ("patient_id", "episode_id", "appointment_type")
PATIENT_FIELDS = ("given_name", "family_name", "date_of_birth", "home_location_id", "email",
                  "phone", "preferred_language")


def with_query(path: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def with_params(url: str, **params: str) -> str:
    """``url`` with these query parameters set (replacing any it had)."""
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), **params}
    return urlunsplit(parts._replace(query=urlencode(query)))


def admin_target(target: object, fallback: str = HOME) -> str:
    """Where a page returns to: one of the admin pages, never another site."""
    return str(target) if str(target or "").startswith("/admin/") else fallback


def page_key() -> str:
    """Drawn with the page: the one record its form creates, however many times it is sent
    (the API answers a repeat with the first result)."""
    return str(uuid.uuid4())


def once(form: dict[str, str]) -> dict[str, str]:
    return {"Idempotency-Key": form["key"]} if form.get("key") else {}


def hours_open(location: dict[str, Any], day: date) -> range:
    spans = (location.get("opening_hours") or {}).get(WEEKDAYS[day.weekday()])
    if location.get("opening_hours") is None:
        return range(*DEFAULT_DAY)
    if not spans:
        return range(0)
    first = min(int(s["opens"][:2]) for s in spans)
    last = max(int(s["closes"][:2]) + (s["closes"][3:] != "00") for s in spans)
    return range(first, last)


def at_location(typed: str | None, zone: ZoneInfo) -> str | None:
    """A datetime-local value ("2027-03-01T10:30") as that wall-clock time at the location,
    with its offset: the API takes aware times only. A time a daylight-saving change skips or
    repeats takes the offset from before the change (fold=0). What does not parse goes as
    typed, so the API refuses it naming the field."""
    typed = (typed or "").strip()
    try:
        at = datetime.fromisoformat(typed) if typed else None
    except ValueError:
        return typed
    return at and (at if at.tzinfo else at.replace(tzinfo=zone)).isoformat()


def shown_at(value: str | None, zone: ZoneInfo) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(zone) if value else None


def symptom_code(typed: str | None) -> str:
    """A symptom site as the front desk types it ("Knee anterior") in the API's code form
    (knee_anterior); anything else is the API's to refuse."""
    return re.sub(r"[\s-]+", "_", (typed or "").strip().lower())


def therapist_names(therapists: list[dict[str, Any]]) -> dict[str, str]:
    return {t["therapist_id"]: t["display_name"] or "Therapist" for t in therapists}


def parse_instant(value: str | None) -> datetime | None:
    """A time with its offset from the address ("2027-03-01T10:30:00+01:00"), or None when it
    is not one the pages can show: unparsed, without an offset (whose clock would it be?), or
    in the calendar's first or last year. A hand-made link that leaves the offset's "+"
    unencoded sends it as a space; that space is read as the "+" it was."""
    text = (value or "").strip()
    for candidate in (text, "+".join(text.rsplit(" ", 1))):
        try:
            at = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return at if at.tzinfo and MINYEAR < at.year < MAXYEAR else None
    return None


@dataclass(frozen=True)
class Desk:
    kit: AdminKit

    async def ok(self, request: Request, path: str) -> Any:
        return await self.kit.get_or(request, path, [])

    async def context(self, request: Request, principal: Principal,
                      wanted: str | None = None) -> dict[str, Any]:
        locations = await self.ok(request, "/locations")
        visible = [loc for loc in locations if principal.can_at(
            uuid.UUID(loc["location_id"]), (Role.FRONT_DESK, Role.OPERATOR))]
        wanted = wanted or request.query_params.get("location_id")
        location = next((loc for loc in visible if loc["location_id"] == wanted),
                        visible[0] if visible else None)
        return {"locations": visible, "location": location,
                "flash": request.query_params.get("flash"),
                "warn": request.query_params.get("warn") == "1"}

    def render(self, request: Request, template: str, principal: Principal,
               ctx: dict[str, Any], *, refused: str | None = None, warning: str | None = None,
               **page: Any) -> Response:
        """A page; ``refused`` is why the form on it was not done, shown as a warning in place
        of the address's flash; ``warning`` is what the page could not use from its address
        (shown after the flash: the page itself is still the one asked for, status 200)."""
        shown = {"flash": refused, "warn": True} if refused else {
            "flash": " ".join(filter(None, (ctx.get("flash"), warning))), "warn": True,
        } if warning else {}
        response = self.kit.render(request, template, principal,
                                   **{**ctx, **page, **shown})
        response.status_code = REFUSED if refused else 200
        return response

    async def patient_name(self, request: Request, patient_id: str) -> str | None:
        found = await self.kit.call(request, "GET", f"/patients/{patient_id}")
        return (f"{found.json()['given_name']} {found.json()['family_name']}"
                if found.status_code == 200 else None)
