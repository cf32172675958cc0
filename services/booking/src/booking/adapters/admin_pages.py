"""The front desk's pages: the day and week view of a location (therapists × hours) with the
waitlist and the "to book" list, booking, rescheduling, cancelling, check-in and no-show (and
reversing a completion, no-show or late cancellation, or checking in a patient recorded as a
no-show who came after all); the patient pages (search, registration, a patient's episodes
and intake, joining the waitlist) are admin_patients.py.

Every action is a call of booking's own API (see kinetic_infra.http.admin_pages), so the
pages follow its rules and its audit trail. A form the API refuses is rendered again with
what was typed and the problem as a warning (422), not redirected, so nothing has to be
typed twice; a done action redirects (post/redirect/get). The forms that create something
(a patient, an episode, a booking, a waitlist entry) carry a key drawn with the page, sent as
the API's Idempotency-Key, so a double click or a resent form is one record. Times are shown,
and typed, in the location's timezone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from booking.adapters.admin_desk import (
    DEFAULT_DAY,
    HOME,
    PATIENTS,
    PICK,
    TYPES,
    Desk,
    admin_target,
    hours_open,
    once,
    page_key,
    parse_instant,
    shown_at,
    therapist_names,
    with_query,
)
from booking.adapters.admin_patients import add_patient_pages
from kinetic_infra.auth.principal import Principal
from kinetic_infra.http.admin_pages import (
    AdminKit,
    parse_date,
    problem_text,
    redirect,
    unshown_day,
)
from kinetic_infra.service.definition import Runtime

MENU = [("Front desk", HOME), ("Patients", PATIENTS)]


@dataclass
class Cell:
    appointments: list[dict[str, Any]] = field(default_factory=list)
    free: list[dict[str, Any]] = field(default_factory=list)


def router(runtime: Runtime, kit: AdminKit) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    desk = Desk(kit)
    kit, call, ok, context = desk.kit, desk.kit.call, desk.ok, desk.context
    render, patient_name = desk.render, desk.patient_name
    add_patient_pages(pages, desk)

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
        day = parse_date(p.get("date")) or today
        # A hand-typed or stale address shows today with a warning rather than failing.
        unshown = unshown_day(p.get("date"), "today")
        week = p.get("view") == "week"
        first = day - timedelta(days=day.weekday()) if week else day
        days = [first + timedelta(days=i) for i in range(7 if week else 1)]
        start = datetime.combine(days[0], time(), tzinfo=zone)
        end = datetime.combine(days[-1] + timedelta(days=1), time(), tzinfo=zone)
        loc_id = location["location_id"]
        pick = {k: p.get(k) for k in PICK} if p.get("patient_id") else {}
        kind = pick.get("appointment_type") or "treatment_session"
        therapists = [t for t in await ok(request, "/therapists") if loc_id in t["location_ids"]]
        appointments = await ok(request, with_query("/appointments", location_id=loc_id,
                                            start=start.isoformat(), end=end.isoformat()))
        slots = await ok(request, with_query("/availability", location_id=loc_id, appointment_type=kind,
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
        waitlist = await ok(request, with_query("/waitlist", location_id=loc_id))
        for w in waitlist:
            w["local_joined"] = shown_at(w["joined_at"], zone)
            w["local_before"] = shown_at(w["wants_before"], zone)
            w["local_offered"] = shown_at(w["offered_starts_at"], zone)
        hours = sorted({h for d in days for h in hours_open(location, d)}
                       | {k[1] for k in grid}) or list(range(*DEFAULT_DAY))
        step = timedelta(days=7 if week else 1)
        view = "week" if week else None
        here = with_query(request.url.path, **{k: v for k, v in p.items() if k not in (
            "flash", "warn") and not (k == "date" and unshown)})
        # Once booked, the day view stops choosing a slot for the patient.
        done = with_query(HOME, location_id=loc_id, date=day.isoformat(), view=view)

        def book_url(**params: Any) -> str:
            return with_query(f"{HOME}/book", location_id=loc_id, back=done if pick else here, **params)

        return render(
            request, "front_desk.html", principal, ctx, title="Front desk", day=day,
            warning=unshown,
            days=days, week=week, hours=hours, therapists=therapists, grid=grid,
            today=today, here=here, waitlist=waitlist,
            to_book=await ok(request, with_query("/to-book", location_id=loc_id)),
            names=therapist_names(therapists), pick=pick, kind=kind, done_url=done,
            pick_name=await patient_name(request, pick["patient_id"]) if pick else None,
            prev_url=with_query(HOME, location_id=loc_id, date=(day - step).isoformat(), view=view,
                        **pick),
            next_url=with_query(HOME, location_id=loc_id, date=(day + step).isoformat(), view=view,
                        **pick),
            today_url=with_query(HOME, location_id=loc_id, view=view, **pick),
            toggle_url=with_query(HOME, location_id=loc_id, date=day.isoformat(),
                          view=None if week else "week", **pick),
            day_url=lambda d: with_query(HOME, location_id=loc_id, date=d.isoformat(), **pick),
            book_url=book_url,
            slot_url=lambda **s: book_url(**pick, **s),
            pick_url=lambda e: with_query(HOME, location_id=loc_id, date=day.isoformat(), view=view,
                                  patient_id=e["patient_id"], episode_id=e["episode_id"],
                                  appointment_type="treatment_session"))

    # -- booking -------------------------------------------------------------------------------

    async def book_page(request: Request, principal: Principal, params: dict[str, str], *,
                        refused: str | None = None) -> Response:
        ctx = await context(request, principal, params.get("location_id"))
        q = (params.get("q") or "").strip()
        patient_id = params.get("patient_id")
        episodes = [e for e in await ok(request, with_query("/episodes", patient_id=patient_id))
                    if e["status"] == "open"] if patient_id else []
        if len(episodes) == 1 and "episode_id" not in params:
            # The patient's only open episode is the one a session is for; "none" stays a choice.
            params = {**params, "episode_id": episodes[0]["episode_id"]}
        zone = ZoneInfo(ctx["location"]["timezone"]) if ctx["location"] else None
        starts_at = parse_instant(params.get("starts_at"))
        warning = None
        if starts_at:  # as read: a "+" that came as a space goes on as a "+"
            params = {**params, "starts_at": starts_at.isoformat()}
        elif params.get("starts_at"):
            warning = (f"“{params['starts_at']}” is not a date and time with its offset: "
                       "choose the slot again.")
        local_start = starts_at.astimezone(zone) if starts_at and zone else None
        # Back to an admin page only: the address is anyone's to write, and a javascript: or
        # another site's link would run as, or lure away, the signed-in staff member.
        back = admin_target(params.get("back"))
        if "back" in params:
            params = {**params, "back": back}
        after_intake, choose_again = "", False
        if patient_id:
            after_intake, choose_again = await intake_return(request, params, patient_id,
                                                             local_start)
        return render(
            request, "book.html", principal, ctx, title="Book", refused=refused, q=q,
            warning=warning, params=params, back=back, key=page_key(),
            found=await ok(request, with_query("/patients", q=q)) if len(q) >= 2 else [],
            patient_id=patient_id, episodes=episodes, types=TYPES,
            patient_name=await patient_name(request, patient_id) if patient_id else None,
            local_start=local_start,
            names=therapist_names(await ok(request, "/therapists")),
            intake_url=with_query(f"{PATIENTS}/{patient_id}", location_id=params.get("location_id"),
                          focus="intake", back=after_intake),
            choose_again=choose_again,
            choose_url=lambda pid: with_query(f"{HOME}/book", **{**params, "patient_id": pid}))

    async def intake_return(request: Request, params: dict[str, str], patient_id: str,
                            local_start: datetime | None) -> tuple[str, bool]:
        """Where intake goes back to, and whether that is to choose another slot. The new
        episode's first session is its initial assessment: back to this form as one if the
        slot has room for it; else (the slot was found for a shorter type) to the day view
        choosing a slot for the assessment, which the API would refuse here (outside the
        hours, or taken)."""
        back_here = with_query(f"{HOME}/book", **{
            **{k: v for k, v in params.items() if k not in ("episode_id", "q")},
            "appointment_type": "initial_assessment"})
        found_for = params.get("appointment_type") or "treatment_session"
        if local_start is None or found_for == "initial_assessment":
            return back_here, False
        lengths = {t["appointment_type"]: t["minutes"]
                   for t in await ok(request, "/appointment-types")}
        if lengths.get("initial_assessment", 60) <= lengths.get(found_for, 60):
            return back_here, False
        return with_query(HOME, location_id=params.get("location_id"),
                          date=local_start.date().isoformat(), patient_id=patient_id,
                          appointment_type="initial_assessment"), True

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
        response = await call(request, "POST", "/appointments", json=body, headers=once(form))
        if response.status_code != 201:
            return await book_page(request, principal,
                                   {k: v for k, v in form.items() if k != "key"},
                                   refused=f"Not booked: {problem_text(response)}")
        return redirect(admin_target(form.get("back")), "Booked.")

    @pages.post(f"{HOME}/appointments/{{appointment_id}}/{{action}}")
    async def act(request: Request, appointment_id: str, action: str) -> Response:
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        back = admin_target(form.get("back"))
        if action not in ("cancel", "check-in", "no-show", "complete", "reschedule", "reverse",
                          "arrived"):
            return redirect(back, f"Unknown action {action}", warn=True)
        json = {"starts_at": form.get("starts_at"), "therapist_id": form.get("therapist_id")} \
            if action == "reschedule" else {"reason_code": form.get("reason_code")} \
            if action == "reverse" else {"by_clinic": form.get("by_clinic") == "1"} \
            if action == "cancel" else None
        response = await call(request, "POST", f"/appointments/{appointment_id}/{action}",
                              json=json)
        if response.status_code not in (200, 201):
            return redirect(back, f"Not done: {problem_text(response)}", warn=True)
        message = {"cancel": "Cancelled", "check-in": "Checked in", "no-show": "No-show recorded",
                   "complete": "Completed", "reschedule": "Moved",
                   "reverse": "Reversed: billing credits what it charged for it.",
                   "arrived": "Checked in: the no-show is reversed and its fee credited."
                   }[action]
        if action == "cancel":
            result = response.json()
            message += " by the clinic: no fee." if result["by_clinic"] else \
                " (late cancellation)." if result["late"] else "."
            if result["offered_to"]:
                message += " The freed hour was offered to the first patient on the waitlist."
        return redirect(back, message)

    @pages.get(f"{HOME}/appointments/{{appointment_id}}/reschedule")
    async def reschedule_form(request: Request, appointment_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        ctx = await context(request, principal)
        back = admin_target(request.query_params.get("back"))
        found = await call(request, "GET", f"/appointments/{appointment_id}")
        if found.status_code != 200:
            return redirect(back, f"Not found: {problem_text(found)}", warn=True)
        current = found.json()
        # Only at a location where the staff member may move sessions (the API may still show
        # the session to others, a therapist say): elsewhere neither its timezone nor the move
        # is theirs.
        loc = next((x for x in ctx["locations"] if x["location_id"] == current["location_id"]),
                   None)
        if loc is None:
            return redirect(back, "Not moved: you hold no front-desk role at the session's "
                            "location.", warn=True)
        zone = ZoneInfo(loc["timezone"])
        current["local_start"] = datetime.fromisoformat(current["starts_at"]).astimezone(zone)
        # A week of free slots, from the session's own day (or the day asked for). A move
        # keeps the session's own length, which need not be its type's today (booked with
        # other minutes, or before the type's length changed): slots of that length.
        asked = request.query_params.get("date")
        first = max(datetime.now(zone).date(), parse_date(asked) or current["local_start"].date())
        length = datetime.fromisoformat(current["ends_at"]) - datetime.fromisoformat(
            current["starts_at"])
        slots = await ok(request, with_query("/availability", location_id=current["location_id"],
                                     appointment_type=current["appointment_type"],
                                     minutes=length // timedelta(minutes=1),
                                     start_date=first.isoformat(),
                                     end_date=(first + timedelta(days=6)).isoformat(),
                                     limit=5000))
        for s in slots:
            s["local_start"] = datetime.fromisoformat(s["starts_at"]).astimezone(zone)
        who = await call(request, "GET", f"/patients/{current['patient_id']}")
        if who.status_code == 200:
            current["patient_name"] = f"{who.json()['given_name']} {who.json()['family_name']}"
        return render(request, "reschedule.html", principal, ctx, title="Reschedule",
                      warning=unshown_day(asked, "the session's week"),
                      current=current, slots=slots, back=back, first=first,
                      earlier_url=with_query(request.url.path, back=back,
                                             date=(first - timedelta(days=7)).isoformat()),
                      later_url=with_query(request.url.path, back=back,
                                           date=(first + timedelta(days=7)).isoformat()),
                      names={t["therapist_id"]: t["display_name"] or "Therapist"
                             for t in await ok(request, "/therapists")})

    return pages
