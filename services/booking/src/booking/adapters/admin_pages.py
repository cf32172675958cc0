"""The front desk's pages: the day and week view of a location (therapists × hours), patient
search and registration, a patient's page (episodes of care, intake, joining the waitlist),
booking, rescheduling, cancelling, check-in and no-show (and reversing a completion, no-show
or late cancellation), the waitlist and the "to book" list.

Every action is a call of booking's own API (see kinetic_infra.http.admin_pages), so the
pages follow its rules and its audit trail. A form the API refuses is rendered again with
what was typed and the problem as a warning (422), not redirected, so nothing has to be
typed twice; a done action redirects (post/redirect/get). The forms that create something
(a patient, an episode, a booking, a waitlist entry) carry a key drawn with the page, sent as
the API's Idempotency-Key, so a double click or a resent form is one record. Times are shown,
and typed, in the location's timezone.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
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
# A refused form comes back as a page, not a redirect: with its own status, so neither the
# browser's history nor a test mistakes it for a done action.
REFUSED = 422
# The day view chooses a slot for a patient when its address names one (from the "to book"
# list, an episode just opened, a patient's page): its "Book" links then carry these on.
PICK = ("patient_id", "episode_id", "appointment_type")
PATIENT_FIELDS = ("given_name", "family_name", "date_of_birth", "home_location_id", "email",
                  "phone", "preferred_language")


@dataclass
class Cell:
    appointments: list[dict[str, Any]] = field(default_factory=list)
    free: list[dict[str, Any]] = field(default_factory=list)


def _q(path: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def _with(url: str, **params: str) -> str:
    """``url`` with these query parameters set (replacing any it had)."""
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), **params}
    return urlunsplit(parts._replace(query=urlencode(query)))


def _local(target: object, fallback: str = HOME) -> str:
    """Where a page returns to: one of the admin pages, never another site."""
    return str(target) if str(target or "").startswith("/admin/") else fallback


def _key() -> str:
    """Drawn with the page: the one record its form creates, however many times it is sent
    (the API answers a repeat with the first result)."""
    return str(uuid.uuid4())


def _once(form: dict[str, str]) -> dict[str, str]:
    return {"Idempotency-Key": form["key"]} if form.get("key") else {}


def _hours(location: dict[str, Any], day: date) -> range:
    spans = (location.get("opening_hours") or {}).get(WEEKDAYS[day.weekday()])
    if location.get("opening_hours") is None:
        return range(*DEFAULT_DAY)
    if not spans:
        return range(0)
    first = min(int(s["opens"][:2]) for s in spans)
    last = max(int(s["closes"][:2]) + (s["closes"][3:] != "00") for s in spans)
    return range(first, last)


def _at_location(typed: str | None, zone: ZoneInfo) -> str | None:
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


def _shown(value: str | None, zone: ZoneInfo) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(zone) if value else None


def _code(typed: str | None) -> str:
    """A symptom site as the front desk types it ("Knee anterior") in the API's code form
    (knee_anterior); anything else is the API's to refuse."""
    return re.sub(r"[\s-]+", "_", (typed or "").strip().lower())


def _names(therapists: list[dict[str, Any]]) -> dict[str, str]:
    return {t["therapist_id"]: t["display_name"] or "Therapist" for t in therapists}


def router(runtime: Runtime, kit: AdminKit) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    call = kit.call

    async def ok(request: Request, path: str) -> Any:
        return await kit.get_or(request, path, [])

    async def context(request: Request, principal: Principal, wanted: str | None = None
                      ) -> dict[str, Any]:
        locations = await ok(request, "/locations")
        visible = [loc for loc in locations if principal.can_at(
            uuid.UUID(loc["location_id"]), (Role.FRONT_DESK, Role.OPERATOR))]
        wanted = wanted or request.query_params.get("location_id")
        location = next((loc for loc in visible if loc["location_id"] == wanted),
                        visible[0] if visible else None)
        return {"locations": visible, "location": location,
                "flash": request.query_params.get("flash"),
                "warn": request.query_params.get("warn") == "1"}

    def render(request: Request, template: str, principal: Principal, ctx: dict[str, Any], *,
               refused: str | None = None, **page: Any) -> Response:
        """A page; ``refused`` is why the form on it was not done, shown as a warning in place
        of the address's flash."""
        shown = {"flash": refused, "warn": True} if refused else {}
        response = kit.render(request, template, principal, **{**ctx, **page, **shown})
        response.status_code = REFUSED if refused else 200
        return response

    async def patient_name(request: Request, patient_id: str) -> str | None:
        found = await call(request, "GET", f"/patients/{patient_id}")
        return (f"{found.json()['given_name']} {found.json()['family_name']}"
                if found.status_code == 200 else None)

    @pages.get(HOME)
    async def day_view(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        ctx = await context(request, principal)
        location = ctx["location"]
        if location is None:
            return kit.render(request, "front_desk.html", principal, title="Front desk", **ctx)
        p = request.query_params
        zone = ZoneInfo(location["timezone"])
        today = datetime.now(zone).date()
        day = _date(p.get("date")) or today
        week = p.get("view") == "week"
        first = day - timedelta(days=day.weekday()) if week else day
        days = [first + timedelta(days=i) for i in range(7 if week else 1)]
        start = datetime.combine(days[0], time(), tzinfo=zone)
        end = datetime.combine(days[-1] + timedelta(days=1), time(), tzinfo=zone)
        loc_id = location["location_id"]
        pick = {k: p.get(k) for k in PICK} if p.get("patient_id") else {}
        kind = pick.get("appointment_type") or "treatment_session"
        therapists = [t for t in await ok(request, "/therapists") if loc_id in t["location_ids"]]
        appointments = await ok(request, _q("/appointments", location_id=loc_id,
                                            start=start.isoformat(), end=end.isoformat()))
        slots = await ok(request, _q("/availability", location_id=loc_id, appointment_type=kind,
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
        waitlist = await ok(request, _q("/waitlist", location_id=loc_id))
        for w in waitlist:
            w["local_joined"] = _shown(w["joined_at"], zone)
            w["local_before"] = _shown(w["wants_before"], zone)
            w["local_offered"] = _shown(w["offered_starts_at"], zone)
        hours = sorted({h for d in days for h in _hours(location, d)}
                       | {k[1] for k in grid}) or list(range(*DEFAULT_DAY))
        step = timedelta(days=7 if week else 1)
        view = "week" if week else None
        here = _q(request.url.path, **{k: v for k, v in p.items() if k not in ("flash", "warn")})
        # Once booked, the day view stops choosing a slot for the patient.
        done = _q(HOME, location_id=loc_id, date=day.isoformat(), view=view)

        def book_url(**params: Any) -> str:
            return _q(f"{HOME}/book", location_id=loc_id, back=done if pick else here, **params)

        return kit.render(
            request, "front_desk.html", principal, title="Front desk", **ctx, day=day,
            days=days, week=week, hours=hours, therapists=therapists, grid=grid,
            today=today, here=here, waitlist=waitlist,
            to_book=await ok(request, _q("/to-book", location_id=loc_id)),
            names=_names(therapists), pick=pick, kind=kind, done_url=done,
            pick_name=await patient_name(request, pick["patient_id"]) if pick else None,
            prev_url=_q(HOME, location_id=loc_id, date=(day - step).isoformat(), view=view,
                        **pick),
            next_url=_q(HOME, location_id=loc_id, date=(day + step).isoformat(), view=view,
                        **pick),
            today_url=_q(HOME, location_id=loc_id, view=view, **pick),
            toggle_url=_q(HOME, location_id=loc_id, date=day.isoformat(),
                          view=None if week else "week", **pick),
            day_url=lambda d: _q(HOME, location_id=loc_id, date=d.isoformat(), **pick),
            book_url=book_url,
            slot_url=lambda **s: book_url(**pick, **s),
            pick_url=lambda e: _q(HOME, location_id=loc_id, date=day.isoformat(), view=view,
                                  patient_id=e["patient_id"], episode_id=e["episode_id"],
                                  appointment_type="treatment_session"))

    # -- patients ------------------------------------------------------------------------------

    async def patients_page(request: Request, principal: Principal, *,
                            kept: dict[str, str] | None = None,
                            refused: str | None = None) -> Response:
        ctx = await context(request, principal, (kept or {}).get("home_location_id"))
        q = (request.query_params.get("q") or "").strip()
        found = await ok(request, _q("/patients", q=q)) if len(q) >= 2 else []
        loc_id = ctx["location"] and ctx["location"]["location_id"]
        return render(request, "patients.html", principal, ctx, title="Patients", q=q,
                      found=found, form=kept or {}, key=_key(), refused=refused,
                      back=(kept or {}).get("back") or request.query_params.get("back") or "",
                      patient_url=lambda pid, focus=None: _q(
                          f"{PATIENTS}/{pid}", location_id=loc_id, focus=focus))

    @pages.get(PATIENTS)
    async def patients_list(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        return await patients_page(request, principal)

    @pages.post(PATIENTS)
    async def register(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        form = {k: str(v).strip() for k, v in (await request.form()).items()}
        body = {k: form.get(k) or None for k in PATIENT_FIELDS}
        response = await call(request, "POST", "/patients", json=body, headers=_once(form))
        if response.status_code != 201:
            return await patients_page(request, principal, kept=form,
                                       refused=f"Not registered: {problem_text(response)}")
        created = response.json()
        name = f"{body['given_name']} {body['family_name']}"
        message = f"Registered {name}."
        if created["possible_duplicates"]:
            message += (f" Possible duplicate: {len(created['possible_duplicates'])} patient(s) "
                        "with the same name and date of birth are already registered.")
        return redirect(_q(PATIENTS, location_id=body["home_location_id"], q=name,
                           back=form.get("back")), message,
                        warn=bool(created["possible_duplicates"]))

    async def patient_page(request: Request, principal: Principal, patient_id: str, *,
                           location_id: str | None = None,
                           intake: dict[str, str] | None = None,
                           wait: dict[str, str] | None = None,
                           refused: str | None = None) -> Response:
        found = await call(request, "GET", f"/patients/{patient_id}")
        if found.status_code != 200:
            return redirect(PATIENTS, f"Not found: {problem_text(found)}", warn=True)
        patient = found.json()
        ctx = await context(request, principal, location_id or request.query_params.get(
            "location_id") or patient["home_location_id"])
        loc_id = ctx["location"] and ctx["location"]["location_id"]
        p = request.query_params
        return render(
            request, "patient.html", principal, ctx, refused=refused,
            title=f"{patient['given_name']} {patient['family_name']}", patient=patient,
            episodes=await ok(request, _q("/episodes", patient_id=patient_id)),
            therapists=[t for t in await ok(request, "/therapists")
                        if loc_id in t["location_ids"]],
            types=TYPES, intake=intake or {}, wait=wait or {},
            focus="intake" if intake else "waitlist" if wait else p.get("focus"),
            back=(intake or {}).get("back") or p.get("back") or "",
            intake_key=_key(), wait_key=_key(),
            book_url=lambda e: _q(HOME, location_id=e["location_id"], patient_id=patient_id,
                                  episode_id=e["episode_id"]))

    @pages.get(PATIENTS + "/{patient_id}")
    async def one_patient(request: Request, patient_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        return await patient_page(request, principal, patient_id)

    @pages.post(PATIENTS + "/{patient_id}/episodes")
    async def open_episode(request: Request, patient_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        form = {k: str(v).strip() for k, v in (await request.form()).items()}
        form["referral"] = "yes" if form.get("referral") else ""
        body = {"patient_id": patient_id, "location_id": form.get("location_id"),
                "reason": form.get("reason", ""), "symptom_site": _code(form.get("symptom_site")),
                "goal": form.get("goal") or None,
                "goal_target_date": form.get("goal_target_date") or None,
                "referral": bool(form["referral"])}
        response = await call(request, "POST", "/episodes", json=body, headers=_once(form))
        if response.status_code != 201:
            return await patient_page(request, principal, patient_id,
                                      location_id=form.get("location_id"), intake=form,
                                      refused=f"Not opened: {problem_text(response)}")
        episode_id = response.json()["id"]
        if form.get("back"):  # opened for a booking: back to it, with the new episode chosen
            return redirect(_with(_local(form["back"]), episode_id=episode_id),
                            "Episode of care opened.")
        # An episode starts with its initial assessment: the next thing to book.
        return redirect(_q(HOME, location_id=body["location_id"], patient_id=patient_id,
                           episode_id=episode_id, appointment_type="initial_assessment"),
                        "Episode of care opened: choose a free slot for its initial assessment.")

    # -- booking -------------------------------------------------------------------------------

    async def book_page(request: Request, principal: Principal, params: dict[str, str], *,
                        refused: str | None = None) -> Response:
        ctx = await context(request, principal, params.get("location_id"))
        q = (params.get("q") or "").strip()
        patient_id = params.get("patient_id")
        episodes = [e for e in await ok(request, _q("/episodes", patient_id=patient_id))
                    if e["status"] == "open"] if patient_id else []
        if len(episodes) == 1 and "episode_id" not in params:
            # The patient's only open episode is the one a session is for; "none" stays a choice.
            params = {**params, "episode_id": episodes[0]["episode_id"]}
        zone = ZoneInfo(ctx["location"]["timezone"]) if ctx["location"] else None
        starts_at = datetime.fromisoformat(params["starts_at"]) if params.get("starts_at") else None
        # After intake, back here to book the new episode's first session: its assessment.
        here = {k: v for k, v in params.items() if k not in ("episode_id", "q")}
        return render(
            request, "book.html", principal, ctx, title="Book", refused=refused, q=q,
            params=params, key=_key(),
            found=await ok(request, _q("/patients", q=q)) if len(q) >= 2 else [],
            patient_id=patient_id, episodes=episodes, types=TYPES,
            patient_name=await patient_name(request, patient_id) if patient_id else None,
            local_start=starts_at.astimezone(zone) if starts_at and zone else None,
            names=_names(await ok(request, "/therapists")),
            intake_url=_q(f"{PATIENTS}/{patient_id}", location_id=params.get("location_id"),
                          focus="intake", back=_q(f"{HOME}/book", **{
                              **here, "appointment_type": "initial_assessment"})),
            choose_url=lambda pid: _q(f"{HOME}/book", **{**params, "patient_id": pid}))

    @pages.get(f"{HOME}/book")
    async def book_form(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        return await book_page(request, principal, {
            k: v for k, v in request.query_params.items() if k not in ("flash", "warn")})

    @pages.post(f"{HOME}/book")
    async def book(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        body = {k: form.get(k) or None for k in (
            "patient_id", "therapist_id", "location_id", "episode_id", "appointment_type",
            "starts_at", "waitlist_entry_id")}
        response = await call(request, "POST", "/appointments", json=body, headers=_once(form))
        if response.status_code != 201:
            return await book_page(request, principal,
                                   {k: v for k, v in form.items() if k != "key"},
                                   refused=f"Not booked: {problem_text(response)}")
        return redirect(_local(form.get("back")), "Booked.")

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
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        form = {k: str(v).strip() for k, v in (await request.form()).items()}
        ctx = await context(request, principal, form.get("location_id"))
        zone = ZoneInfo(ctx["location"]["timezone"] if ctx["location"] else "UTC")
        body = {"patient_id": form.get("patient_id"), "location_id": form.get("location_id"),
                "therapist_id": form.get("therapist_id") or None,
                "appointment_type": form.get("appointment_type") or "treatment_session",
                "wants_before": _at_location(form.get("wants_before"), zone)}
        response = await call(request, "POST", "/waitlist", json=body, headers=_once(form))
        if response.status_code != 201:
            return await patient_page(request, principal, form.get("patient_id", ""),
                                      location_id=form.get("location_id"), wait=form,
                                      refused=f"Not added: {problem_text(response)}")
        return redirect(_q(HOME, location_id=form.get("location_id")), "Added to the waitlist.",
                        anchor="waitlist")

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
