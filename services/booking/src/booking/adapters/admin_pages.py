"""The front desk's pages: the day and week view of a location (therapists × hours), patient
search and registration, booking, rescheduling, cancelling, check-in and no-show (and
reversing a completion, no-show or late cancellation), the waitlist and the "to book" list.
Every action is a call of booking's own API (see kinetic_infra.http.admin_pages), so the
pages follow its rules and its audit trail.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kinetic_contracts.booking.v1.events import WEEKDAYS
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.http.admin_pages import AdminKit, problem_text, redirect
from kinetic_infra.service.definition import Runtime

HOME = "/admin/front-desk"
PATIENTS = "/admin/front-desk/patients"
MENU = [("Front desk", HOME), ("Patients", PATIENTS)]
TYPES = [("initial_assessment", "Initial assessment"), ("treatment_session", "Treatment session"),
         ("reassessment", "Reassessment")]
DEFAULT_DAY = (7, 20)  # the hours shown for a location without opening hours


@dataclass
class Cell:
    appointments: list[dict[str, Any]] = field(default_factory=list)
    free: list[dict[str, Any]] = field(default_factory=list)


def _q(path: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def _local(target: object, fallback: str = HOME) -> str:
    """Where a page returns to: one of the admin pages, never another site."""
    return str(target) if str(target or "").startswith("/admin/") else fallback


def _hours(location: dict[str, Any], day: date) -> range:
    spans = (location.get("opening_hours") or {}).get(WEEKDAYS[day.weekday()])
    if location.get("opening_hours") is None:
        return range(*DEFAULT_DAY)
    if not spans:
        return range(0)
    first = min(int(s["opens"][:2]) for s in spans)
    last = max(int(s["closes"][:2]) + (s["closes"][3:] != "00") for s in spans)
    return range(first, last)


def router(runtime: Runtime, kit: AdminKit) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    call = kit.call

    async def ok(request: Request, path: str) -> Any:
        return await kit.get_or(request, path, [])

    async def context(request: Request, principal: Principal) -> dict[str, Any]:
        locations = await ok(request, "/locations")
        visible = [loc for loc in locations if principal.can_at(
            uuid.UUID(loc["location_id"]), (Role.FRONT_DESK, Role.OPERATOR))]
        wanted = request.query_params.get("location_id")
        location = next((loc for loc in visible if loc["location_id"] == wanted),
                        visible[0] if visible else None)
        return {"locations": visible, "location": location,
                "flash": request.query_params.get("flash"),
                "warn": request.query_params.get("warn") == "1"}

    @pages.get(HOME)
    async def day_view(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        ctx = await context(request, principal)
        location = ctx["location"]
        if location is None:
            return kit.render(request, "front_desk.html", principal, title="Front desk", **ctx)
        zone = ZoneInfo(location["timezone"])
        today = datetime.now(zone).date()
        day = _date(request.query_params.get("date")) or today
        week = request.query_params.get("view") == "week"
        first = day - timedelta(days=day.weekday()) if week else day
        days = [first + timedelta(days=i) for i in range(7 if week else 1)]
        start = datetime.combine(days[0], time(), tzinfo=zone)
        end = datetime.combine(days[-1] + timedelta(days=1), time(), tzinfo=zone)
        loc_id = location["location_id"]
        therapists = [t for t in await ok(request, "/therapists") if loc_id in t["location_ids"]]
        appointments = await ok(request, _q("/appointments", location_id=loc_id,
                                            start=start.isoformat(), end=end.isoformat()))
        slots = await ok(request, _q("/availability", location_id=loc_id,
                                     appointment_type="treatment_session",
                                     start_date=days[0].isoformat(),
                                     end_date=days[-1].isoformat(), limit=5000))
        grid: dict[tuple[date, int, str], Cell] = defaultdict(Cell)
        for a in appointments:
            at = datetime.fromisoformat(a["starts_at"]).astimezone(zone)
            a["local_start"], a["local_end"] = at, datetime.fromisoformat(
                a["ends_at"]).astimezone(zone)
            grid[(at.date(), at.hour, a["therapist_id"])].appointments.append(a)
        for s in slots:
            at = datetime.fromisoformat(s["starts_at"]).astimezone(zone)
            s["local_start"] = at
            grid[(at.date(), at.hour, s["therapist_id"])].free.append(s)
        hours = sorted({h for d in days for h in _hours(location, d)}
                       | {k[1] for k in grid}) or list(range(*DEFAULT_DAY))
        step = timedelta(days=7 if week else 1)
        here = request.url.path + "?" + request.url.query
        return kit.render(
            request, "front_desk.html", principal, title="Front desk", **ctx, day=day,
            days=days, week=week, hours=hours, therapists=therapists, grid=grid,
            today=today, here=here, waitlist=await ok(request, _q("/waitlist", location_id=loc_id)),
            to_book=await ok(request, _q("/to-book", location_id=loc_id)),
            names={t["therapist_id"]: t["display_name"] or "Therapist" for t in therapists},
            prev_url=_q(HOME, location_id=loc_id, date=(day - step).isoformat(),
                        view="week" if week else None),
            next_url=_q(HOME, location_id=loc_id, date=(day + step).isoformat(),
                        view="week" if week else None),
            today_url=_q(HOME, location_id=loc_id, view="week" if week else None),
            toggle_url=_q(HOME, location_id=loc_id, date=day.isoformat(),
                          view=None if week else "week"),
            day_url=lambda d: _q(HOME, location_id=loc_id, date=d.isoformat()),
            book_url=lambda **p: _q(f"{HOME}/book", location_id=loc_id, back=here, **p))

    @pages.get(PATIENTS)
    async def patients_page(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        ctx = await context(request, principal)
        q = (request.query_params.get("q") or "").strip()
        found = await ok(request, _q("/patients", q=q)) if len(q) >= 2 else []
        return kit.render(request, "patients.html", principal, title="Patients", **ctx, q=q,
                          found=found, back=request.query_params.get("back") or "")

    @pages.post(PATIENTS)
    async def register(request: Request) -> Response:
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        form = await request.form()
        body = {k: str(form.get(k) or "").strip() or None for k in (
            "given_name", "family_name", "date_of_birth", "home_location_id", "email", "phone",
            "preferred_language")}
        response = await call(request, "POST", "/patients", json=body)
        if response.status_code != 201:
            return redirect(_q(PATIENTS, location_id=body["home_location_id"]),
                            f"Not registered: {problem_text(response)}", warn=True)
        created = response.json()
        name = f"{body['given_name']} {body['family_name']}"
        message = f"Registered {name}."
        if created["possible_duplicates"]:
            message += (f" Possible duplicate: {len(created['possible_duplicates'])} patient(s) "
                        "with the same name and date of birth are already registered.")
        return redirect(_q(PATIENTS, location_id=body["home_location_id"], q=name,
                           back=str(form.get("back") or "")), message,
                        warn=bool(created["possible_duplicates"]))

    @pages.get(f"{HOME}/book")
    async def book_form(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        ctx = await context(request, principal)
        p = request.query_params
        q = (p.get("q") or "").strip()
        patient_id = p.get("patient_id")
        episodes = [e for e in await ok(request, _q("/episodes", patient_id=patient_id))
                    if e["status"] == "open"] if patient_id else []
        zone = ZoneInfo(ctx["location"]["timezone"]) if ctx["location"] else None
        starts_at = datetime.fromisoformat(p["starts_at"]) if p.get("starts_at") else None
        return kit.render(
            request, "book.html", principal, title="Book", **ctx, q=q, params=dict(p),
            found=await ok(request, _q("/patients", q=q)) if len(q) >= 2 else [],
            patient_id=patient_id, episodes=episodes, types=TYPES,
            local_start=starts_at.astimezone(zone) if starts_at and zone else None,
            names={t["therapist_id"]: t["display_name"] or "Therapist"
                   for t in await ok(request, "/therapists")},
            choose_url=lambda pid: _q(f"{HOME}/book", **{**dict(p), "patient_id": pid}))

    @pages.post(f"{HOME}/book")
    async def book(request: Request) -> Response:
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        body = {k: form.get(k) or None for k in (
            "patient_id", "therapist_id", "location_id", "episode_id", "appointment_type",
            "starts_at", "waitlist_entry_id")}
        response = await call(request, "POST", "/appointments", json=body)
        back = _local(form.get("back"))
        if response.status_code != 201:
            return redirect(back, f"Not booked: {problem_text(response)}", warn=True)
        return redirect(back, "Booked.")

    @pages.post(f"{HOME}/appointments/{{appointment_id}}/{{action}}")
    async def act(request: Request, appointment_id: str, action: str) -> Response:
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        back = _local(form.get("back"))
        if action not in ("cancel", "check-in", "no-show", "complete", "reschedule", "reverse"):
            return redirect(back, f"Unknown action {action}", warn=True)
        json = {"starts_at": form["starts_at"], "therapist_id": form.get("therapist_id")} \
            if action == "reschedule" else {"reason_code": form.get("reason_code")} \
            if action == "reverse" else None
        response = await call(request, "POST", f"/appointments/{appointment_id}/{action}",
                              json=json)
        if response.status_code != 200:
            return redirect(back, f"Not done: {problem_text(response)}", warn=True)
        message = {"cancel": "Cancelled", "check-in": "Checked in", "no-show": "No-show recorded",
                   "complete": "Completed", "reschedule": "Moved",
                   "reverse": "Reversed: billing credits what it charged for it."}[action]
        if action == "cancel":
            result = response.json()
            message += " (late cancellation)." if result["late"] else "."
            if result["offered_to"]:
                message += " The freed hour was offered to the first patient on the waitlist."
        return redirect(back, message)

    @pages.get(f"{HOME}/appointments/{{appointment_id}}/reschedule")
    async def reschedule_form(request: Request, appointment_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        ctx = await context(request, principal)
        back = _local(request.query_params.get("back"))
        found = await call(request, "GET", f"/appointments/{appointment_id}")
        if found.status_code != 200:
            return redirect(back, f"Not found: {problem_text(found)}", warn=True)
        current = found.json()
        loc = next((x for x in ctx["locations"] if x["location_id"] == current["location_id"]),
                   ctx["location"])
        zone = ZoneInfo(loc["timezone"])
        current["local_start"] = datetime.fromisoformat(current["starts_at"]).astimezone(zone)
        # A week of free slots, from the session's own day (or the day asked for).
        first = max(datetime.now(zone).date(),
                    _date(request.query_params.get("date")) or current["local_start"].date())
        slots = await ok(request, _q("/availability", location_id=current["location_id"],
                                     appointment_type=current["appointment_type"],
                                     start_date=first.isoformat(),
                                     end_date=(first + timedelta(days=6)).isoformat(),
                                     limit=5000))
        for s in slots:
            s["local_start"] = datetime.fromisoformat(s["starts_at"]).astimezone(zone)
        who = await call(request, "GET", f"/patients/{current['patient_id']}")
        if who.status_code == 200:
            current["patient_name"] = f"{who.json()['given_name']} {who.json()['family_name']}"
        return kit.render(request, "reschedule.html", principal, title="Reschedule", **ctx,
                          current=current, slots=slots, back=back, first=first,
                          earlier_url=_q(request.url.path, back=back,
                                         date=(first - timedelta(days=7)).isoformat()),
                          later_url=_q(request.url.path, back=back,
                                       date=(first + timedelta(days=7)).isoformat()),
                          names={t["therapist_id"]: t["display_name"] or "Therapist"
                                 for t in await ok(request, "/therapists")})

    @pages.post(f"{HOME}/waitlist")
    async def join_waitlist(request: Request) -> Response:
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        body = {"patient_id": form.get("patient_id"), "location_id": form.get("location_id"),
                "therapist_id": form.get("therapist_id") or None,
                "appointment_type": form.get("appointment_type") or "treatment_session"}
        response = await call(request, "POST", "/waitlist", json=body)
        back = _q(HOME, location_id=form.get("location_id"))
        if response.status_code != 201:
            return redirect(back, f"Not added: {problem_text(response)}", warn=True)
        return redirect(back, "Added to the waitlist.")

    @pages.post(f"{HOME}/waitlist/{{entry_id}}/withdraw")
    async def withdraw(request: Request, entry_id: str) -> Response:
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        response = await call(request, "POST", f"/waitlist/{entry_id}/withdraw")
        back = _local(form.get("back"))
        if response.status_code != 204:
            return redirect(back, f"Not withdrawn: {problem_text(response)}", warn=True)
        return redirect(back, "Taken off the waitlist.")

    return pages


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None
