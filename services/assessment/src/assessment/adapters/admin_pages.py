"""The therapist's pages: the caseload of episodes to evaluate, and one page per evaluation
with a form for each part (history, red flags, goals, outcome measures, objective findings,
reasoning, the patient's explanation), the computed scores and indices, and completion.
Every action is a call of assessment's own API (kinetic_infra.http.admin_pages)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from assessment.adapters import measure_chart
from assessment.domain import measures
from assessment.domain.history import RED_FLAGS
from assessment.domain.reasoning import DRIVER_LIBRARY
from kinetic_infra.http.admin_pages import AdminKit, problem_text
from kinetic_infra.service.definition import Runtime

HOME = "/admin/evaluations"
MENU = [("Evaluations", HOME)]
MUSCLES = ("hip_abduction", "hip_external_rotation", "quadriceps", "hamstrings", "calf")
RATINGS = ("good", "fair", "poor")


def _number(value: Any) -> float | None:
    try:
        return float(str(value).replace(",", ".")) if str(value).strip() else None
    except ValueError:
        return None


def _findings(form: dict[str, str]) -> dict[str, Any]:
    """The findings form as the API's body: strength rows, the single-leg squat, Y-balance."""
    strength = []
    for muscle in MUSCLES:
        trials = {side: [v for v in (_number(form.get(f"{muscle}_{side}_{n}")) for n in (1, 2, 3))
                         if v is not None] for side in ("left", "right")}
        if trials["left"] and trials["right"]:
            strength.append({"muscle_group": muscle, "unit": form.get("unit", "kgf"),
                             "involved_side": form.get("involved_side", "right"),
                             "trials_left": trials["left"], "trials_right": trials["right"]})
    body: dict[str, Any] = {"strength": strength}
    sls = {side: form.get(f"sls_{side}") for side in ("left", "right")}
    if any(sls.values()):
        body["movement"] = [{"kind": "single_leg_squat", **{
            side: {part: rating for part in ("overall", "trunk", "pelvis", "hip", "knee")}
            for side, rating in sls.items() if rating}}]
    anterior = {side: _number(form.get(f"ybal_{side}")) for side in ("left", "right")}
    if all(v is not None for v in anterior.values()):
        body["y_balance"] = [{"anterior_cm": anterior}]
    return body


def router(runtime: Runtime, kit: AdminKit) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    call = kit.call

    def back_to(evaluation_id: str, flash: str, warn: bool = False, **extra: str) -> Response:
        query = urlencode({"flash": flash, **({"warn": "1"} if warn else {}), **extra})
        return RedirectResponse(f"{HOME}/{evaluation_id}?{query}", status_code=303)

    @pages.get(HOME)
    async def caseload(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        episodes = await call(request, "GET", "/episodes")
        rows = episodes.json() if episodes.status_code == 200 else []
        return kit.render(request, "evaluations.html", principal, title="Evaluations",
                          episodes=rows, flash=request.query_params.get("flash"),
                          warn=request.query_params.get("warn") == "1")

    @pages.post(HOME)
    async def open_evaluation(request: Request) -> Response:
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        response = await call(request, "POST", "/evaluations", json={
            "episode_id": form.get("episode_id"), "kind": form.get("kind") or "initial"})
        if response.status_code != 201:
            return RedirectResponse(f"{HOME}?{urlencode({'flash': problem_text(response), 'warn': '1'})}",
                                    status_code=303)
        return RedirectResponse(f"{HOME}/{response.json()['id']}", status_code=303)

    @pages.get(HOME + "/{evaluation_id}")
    async def evaluation_page(request: Request, evaluation_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        found = await call(request, "GET", f"/evaluations/{evaluation_id}")
        if found.status_code != 200:
            return RedirectResponse(f"{HOME}?{urlencode({'flash': problem_text(found), 'warn': '1'})}",
                                    status_code=303)
        state = found.json()
        chosen = measures.CATALOG.get(request.query_params.get("measure") or "lefs")
        draft = ""
        if state["reasoning"] and not state["explanation"]:
            drafted = await call(request, "GET", f"/evaluations/{evaluation_id}/explanation/draft")
            draft = drafted.json()["text"] if drafted.status_code == 200 else ""
        indices = (state["findings"] or {}).get("indices", [])
        charts = await measure_charts(request, state["episode_id"])
        return kit.render(
            request, "evaluation.html", principal, title="Evaluation", e=state,
            red_flags=RED_FLAGS, catalog=measures.CATALOG, chosen=chosen, muscles=MUSCLES,
            ratings=RATINGS, drivers=DRIVER_LIBRARY, indices=indices, draft=draft,
            finding_ids=sorted({i["finding_id"] for i in indices}), charts=charts,
            # Drawn with the page: the addendum its form adds, however many times it is sent
            # (a double click, a resend after a timeout).
            addendum_key=str(uuid.uuid4()), flash=request.query_params.get("flash"),
            warn=request.query_params.get("warn") == "1")

    async def measure_charts(request: Request, episode_id: str) -> list[str]:
        """Every score measured in the episode, oldest evaluation first, against the band
        of no important change around its baseline."""
        listed = await call(request, "GET", f"/evaluations?episode_id={episode_id}")
        rows = sorted(listed.json() if listed.status_code == 200 else [],
                      key=lambda r: r["opened_at"])
        points: dict[tuple[str, str], list[tuple[str, float]]] = {}
        for row in rows:
            one = await call(request, "GET", f"/evaluations/{row['evaluation_id']}")
            if one.status_code != 200:
                continue
            for m in one.json()["measures"]:
                for key, value in m["scores"].items():
                    points.setdefault((m["measure"], key), []).append(
                        (f"{row['kind']} {row['opened_at'][:10]}", value))
        charts = []
        for (code, key), series in points.items():
            definition = measures.CATALOG.get(code)
            spec = next((s for s in definition.scores if s.code == key), None) \
                if definition else None
            if definition is None or spec is None:
                continue
            rule = measures.thresholds_for(definition, key) if definition.compare_to_baseline \
                else None
            band = max(rule.mcid, rule.mdc or 0) if rule else None
            charts.append(measure_chart.svg(measure_chart.Series(
                key, spec.low, spec.high, series, band)))
        return charts

    @pages.post(HOME + "/{evaluation_id}/{part}")
    async def record(request: Request, evaluation_id: str, part: str) -> Response:
        if kit.signed_in(request) is None:
            return kit.sign_in(request)
        raw = await request.form()
        form = {k: str(v) for k, v in raw.items()}
        method, path, body = "PUT", part, None
        if part == "history":
            body = {"onset": form.get("onset") or None, "mechanism": form.get("mechanism", ""),
                    "aggravating": [s.strip() for s in form.get("aggravating", "").split(",")
                                    if s.strip()],
                    "easing": [s.strip() for s in form.get("easing", "").split(",") if s.strip()],
                    "training_or_work": form.get("training_or_work", "")}
        elif part == "red-flags":
            body = {"answers": {q: form.get(q) == "yes" for q in RED_FLAGS}}
        elif part == "goals":
            body = {"goals": [{"activity": form.get("activity", ""), "level": form.get("level", ""),
                               "target_date": form.get("target_date") or None}]}
        elif part == "measures":
            method = "POST"
            answers = {k.removeprefix("item:"): int(v) if v.strip() else None
                       for k, v in form.items() if k.startswith("item:")}
            labels = {k.removeprefix("label:"): v for k, v in form.items()
                      if k.startswith("label:") and v.strip()}
            body = {"measure": form.get("measure"), "answers": answers, "labels": labels or None}
        elif part == "findings":
            body = _findings(form)
        elif part == "reasoning":
            body = {"symptom_sites": [form.get("symptom_site", "")],
                    "episode_type": form.get("episode_type"),
                    "working_diagnosis": form.get("working_diagnosis", ""),
                    "working_diagnosis_icd10": form.get("icd10") or None,
                    "drivers": [{"code": form.get("driver"), "rationale": form.get("rationale"),
                                 "finding_ids": raw.getlist("finding_ids")}]}
        elif part == "explanation":
            body = {"text": form.get("text", "")}
        elif part in ("complete", "refer-out", "addenda"):
            method = "POST"
            body = {"reason": form.get("reason"), "text": form.get("text")} \
                if part == "addenda" else None
        else:
            return back_to(evaluation_id, f"Unknown part {part}", warn=True)
        # The version the page showed: a save over another tab's newer save is refused.
        headers = {"If-Match": form["version"]} if form.get("version") else {}
        if part == "addenda" and form.get("key"):
            headers["Idempotency-Key"] = form["key"]
        response = await call(request, method, f"/evaluations/{evaluation_id}/{path}",
                              json=body, headers=headers)
        if request.headers.get("accept") == "application/json":
            # Saved as you go (the page's script): the outcome and the new version, so the
            # page's other forms keep naming the version they now stand on.
            ok = response.status_code in (200, 201)
            return JSONResponse({"saved": ok, "message": "Saved." if ok else problem_text(
                response), "version": response.json().get("version") if ok else None},
                status_code=200 if ok else response.status_code)
        if response.status_code not in (200, 201):
            return back_to(evaluation_id, f"Not saved: {problem_text(response)}", warn=True)
        done = {"complete": "Evaluation completed and published.",
                "refer-out": "Referred out.", "addenda": "Addendum added."}
        return back_to(evaluation_id, done.get(part, "Saved."))

    return pages
