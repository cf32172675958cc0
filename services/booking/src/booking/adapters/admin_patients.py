"""The front desk's patient pages: search and registration, a patient's page (episodes of
care, intake, joining the waitlist), and the waitlist's forms."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from booking.adapters.admin_desk import (
    HOME,
    PATIENTS,
    PATIENT_FIELDS,
    TYPES,
    Desk,
    admin_target,
    at_location,
    once,
    page_key,
    symptom_code,
    with_params,
    with_query,
)
from kinetic_infra.auth.principal import Principal
from kinetic_infra.http.admin_pages import problem_text, redirect


def add_patient_pages(pages: APIRouter, desk: Desk) -> None:
    kit, call, ok, context, render = desk.kit, desk.kit.call, desk.ok, desk.context, desk.render

    # -- patients ------------------------------------------------------------------------------

    async def patients_page(request: Request, principal: Principal, *,
                            kept: dict[str, str] | None = None,
                            refused: str | None = None) -> Response:
        ctx = await context(request, principal, (kept or {}).get("home_location_id"))
        q = (request.query_params.get("q") or "").strip()
        found = await ok(request, with_query("/patients", q=q)) if len(q) >= 2 else []
        loc_id = ctx["location"] and ctx["location"]["location_id"]
        return render(request, "patients.html", principal, ctx, title="Patients", q=q,
                      found=found, form=kept or {}, key=page_key(), refused=refused,
                      back=(kept or {}).get("back") or request.query_params.get("back") or "",
                      patient_url=lambda pid, focus=None: with_query(
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
        response = await call(request, "POST", "/patients", json=body, headers=once(form))
        if response.status_code != 201:
            return await patients_page(request, principal, kept=form,
                                       refused=f"Not registered: {problem_text(response)}")
        created = response.json()
        name = f"{body['given_name']} {body['family_name']}"
        message = f"Registered {name}."
        if created["possible_duplicates"]:
            message += (f" Possible duplicate: {len(created['possible_duplicates'])} patient(s) "
                        "with the same name and date of birth are already registered.")
        return redirect(with_query(PATIENTS, location_id=body["home_location_id"], q=name,
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
            episodes=await ok(request, with_query("/episodes", patient_id=patient_id)),
            therapists=[t for t in await ok(request, "/therapists")
                        if loc_id in t["location_ids"]],
            types=TYPES, intake=intake or {}, wait=wait or {},
            focus="intake" if intake else "waitlist" if wait else p.get("focus"),
            back=(intake or {}).get("back") or p.get("back") or "",
            intake_key=page_key(), wait_key=page_key(),
            book_url=lambda e: with_query(HOME, location_id=e["location_id"], patient_id=patient_id,
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
                "reason": form.get("reason", ""), "symptom_site": symptom_code(form.get("symptom_site")),
                "goal": form.get("goal") or None,
                "goal_target_date": form.get("goal_target_date") or None,
                "referral": bool(form["referral"])}
        response = await call(request, "POST", "/episodes", json=body, headers=once(form))
        if response.status_code != 201:
            return await patient_page(request, principal, patient_id,
                                      location_id=form.get("location_id"), intake=form,
                                      refused=f"Not opened: {problem_text(response)}")
        episode_id = response.json()["id"]
        if form.get("back"):  # opened for a booking: back to it, with the new episode chosen
            return redirect(with_params(admin_target(form["back"]), episode_id=episode_id),
                            "Episode of care opened.")
        # An episode starts with its initial assessment: the next thing to book.
        return redirect(with_query(HOME, location_id=body["location_id"], patient_id=patient_id,
                           episode_id=episode_id, appointment_type="initial_assessment"),
                        "Episode of care opened: choose a free slot for its initial assessment.")

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
                "wants_before": at_location(form.get("wants_before"), zone)}
        response = await call(request, "POST", "/waitlist", json=body, headers=once(form))
        if response.status_code != 201:
            return await patient_page(request, principal, form.get("patient_id", ""),
                                      location_id=form.get("location_id"), wait=form,
                                      refused=f"Not added: {problem_text(response)}")
        return redirect(with_query(HOME, location_id=form.get("location_id")), "Added to the waitlist.",
                        anchor="waitlist")

    @pages.post(f"{HOME}/waitlist/{{entry_id}}/withdraw")
    async def withdraw(request: Request, entry_id: str) -> Response:
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        response = await call(request, "POST", f"/waitlist/{entry_id}/withdraw")
        back = admin_target(form.get("back"))
        if response.status_code != 204:
            return redirect(back, f"Not withdrawn: {problem_text(response)}", warn=True)
        return redirect(back, "Taken off the waitlist.")
