"""The therapist's pages: the caseload of episodes to evaluate, and one page per evaluation
with a form for each part (history, red flags, goals, outcome measures, objective findings,
reasoning, the patient's explanation), the computed scores and indices, and completion.
Every action is a call of assessment's own API (kinetic_infra.http.admin_pages). A form
refused, by the page or the API, is drawn again with what was typed in it, not redirected."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from assessment.adapters import measure_chart
from assessment.domain import measures
from assessment.domain.history import GOALS_MAX, RED_FLAGS
from assessment.domain.reasoning import DRIVER_LIBRARY
from kinetic_infra.auth.principal import Principal
from kinetic_infra.http.admin_pages import AdminKit, problem_text
from kinetic_infra.service.definition import Runtime

HOME = "/admin/evaluations"
MENU = [("Evaluations", HOME)]
MUSCLES = ("hip_abduction", "hip_external_rotation", "quadriceps", "hamstrings", "calf")
RATINGS = ("good", "fair", "poor")
SQUAT_PARTS = ("overall", "trunk", "pelvis", "hip", "knee")
FINDING_PARTS = ("movement", "mobility", "strength", "hop_battery", "y_balance", "heel_raise")
PREVIOUS_TREATMENTS_MAX = 20


class BadInput(ValueError):
    """A field the page cannot send as typed: refused the way the API's refusals are."""


class Refused(Exception):
    """The API refused a call the page needed before saving (reading what was saved)."""

    def __init__(self, response: Any) -> None:
        super().__init__(response.status_code)
        self.response = response


def _number(value: Any, field: str) -> float | None:
    """A decimal number as typed (comma or point), None when blank; anything else refused,
    never silently dropped."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise BadInput(f"{field}: {text!r} is not a number")
    return number


def _whole(value: Any, field: str) -> int | None:
    """A whole number as typed, None when blank; "1e1", "2.5" or "abc" refused."""
    text = str(value or "").strip()
    if not text:
        return None
    if not re.fullmatch(r"[+-]?[0-9]{1,9}", text):
        raise BadInput(f"{field}: {text!r} is not a whole number")
    return int(text)


def _rows(form: dict[str, str], prefix: str) -> list[int]:
    """The row numbers of the fields named ``<prefix>_<n>``, in order."""
    return sorted({int(m.group(1)) for k in form
                   if (m := re.fullmatch(re.escape(prefix) + r"_([0-9]{1,3})", k))})


def _history(form: dict[str, str]) -> dict[str, Any]:
    treatments = []
    for n in _rows(form, "previous_treatment"):
        treatment = form.get(f"previous_treatment_{n}", "").strip()
        if not treatment:
            continue  # a blank row: nothing to record (clearing a row removes it)
        helped = form.get(f"previous_treatment_helped_{n}", "")
        if helped not in ("yes", "no"):
            # Not knowing whether it helped is not the same as "it did not help".
            raise BadInput(f"previous treatment {treatment!r}: say whether it helped")
        treatments.append({"treatment": treatment, "helped": helped == "yes"})
    return {"onset": form.get("onset") or None, "mechanism": form.get("mechanism", ""),
            "aggravating": [s.strip() for s in form.get("aggravating", "").split(",")
                            if s.strip()],
            "easing": [s.strip() for s in form.get("easing", "").split(",") if s.strip()],
            "previous_treatment": treatments,
            "training_or_work": form.get("training_or_work", "")}


def _goals(form: dict[str, str]) -> list[dict[str, Any]]:
    """Every goal row the form holds; a row left wholly blank is no goal."""
    goals = []
    for n in _rows(form, "activity"):
        row = {k: form.get(f"{k}_{n}", "").strip() for k in ("activity", "level", "target_date")}
        if any(row.values()):
            goals.append({**row, "target_date": row["target_date"] or None})
    return goals


def _strength_shown(finding: dict[str, Any]) -> bool:
    muscle = finding["muscle_group"]
    return (muscle in MUSCLES and finding["finding_id"] == f"strength:{muscle}"
            and finding.get("lever_arm_m") is None)


def _squat_ratings(finding: dict[str, Any]) -> dict[str, str | None] | None:
    """One rating a side, when that is all the single-leg squat holds (the form's view)."""
    if finding.get("kind") != "single_leg_squat" or finding["finding_id"] != "movement:sls" \
            or finding.get("notes"):
        return None
    ratings: dict[str, str | None] = {}
    for side in ("left", "right"):
        rated = finding.get(side)
        parts = {rated[p] for p in SQUAT_PARTS} if rated else set()
        if len(parts) > 1:
            return None
        ratings[side] = parts.pop() if parts else None
    return ratings


def split_findings(recorded: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The saved findings as the findings form shows them, and every finding it cannot show
    in full (hops, mobility, heel raises, other movement tests, a squat rated item by item, a
    strength test with a lever arm…), which a save sends back as recorded: saving the form
    edits what it shows and never loses the rest."""
    recorded = recorded or {}
    strength = recorded.get("strength") or []
    candidates = [f for f in strength if _strength_shown(f)]
    unit = candidates[0]["unit"] if candidates else "kgf"
    side = candidates[0]["involved_side"] if candidates else "right"
    shown: dict[str, Any] = {"unit": unit, "involved_side": side, "strength": {}, "sls": {},
                             "ybal": {}}
    kept: dict[str, Any] = {part: [] for part in FINDING_PARTS}
    for f in strength:
        if _strength_shown(f) and f["unit"] == unit and f["involved_side"] == side:
            shown["strength"][f["muscle_group"]] = {"left": f["trials_left"],
                                                    "right": f["trials_right"]}
        else:
            kept["strength"].append(f)
    for f in recorded.get("movement") or []:
        ratings = _squat_ratings(f)
        if ratings is None:
            kept["movement"].append(f)
        else:
            shown["sls"] = ratings
    for f in recorded.get("y_balance") or []:
        if f["finding_id"] == "y_balance" and all(
                f.get(k) is None for k in ("posteromedial_cm", "posterolateral_cm",
                                           "limb_length_cm")):
            shown["ybal"] = f["anterior_cm"]
        else:
            kept["y_balance"].append(f)
    for part in ("mobility", "hop_battery", "heel_raise"):
        kept[part] = list(recorded.get(part) or [])
    if recorded.get("body_mass_kg") is not None:
        kept["body_mass_kg"] = recorded["body_mass_kg"]
    return shown, kept


def kept_ids(kept: dict[str, Any]) -> list[str]:
    return [f["finding_id"] for part in FINDING_PARTS for f in kept[part]]


def _findings(form: dict[str, str], kept: dict[str, Any]) -> dict[str, Any]:
    """The findings form as the API's body: strength rows, the single-leg squat and the
    Y-balance as edited, and every other saved finding (``kept``) as it was recorded."""
    strength = []
    for muscle in MUSCLES:
        name = muscle.replace("_", " ")
        trials = {side: [v for v in (_number(form.get(f"{muscle}_{side}_{n}"), f"{name} {side} {n}")
                                     for n in (1, 2, 3)) if v is not None]
                  for side in ("left", "right")}
        if trials["left"] and trials["right"]:
            strength.append({"muscle_group": muscle, "unit": form.get("unit", "kgf"),
                             "involved_side": form.get("involved_side", "right"),
                             "trials_left": trials["left"], "trials_right": trials["right"]})
        elif trials["left"] or trials["right"]:
            raise BadInput(f"{name}: enter the trials of both sides")
    body: dict[str, Any] = {"strength": strength}
    sls = {side: form.get(f"sls_{side}") for side in ("left", "right")}
    if any(sls.values()):
        body["movement"] = [{"kind": "single_leg_squat", **{
            side: {part: rating for part in SQUAT_PARTS}
            for side, rating in sls.items() if rating}}]
    anterior = {side: _number(form.get(f"ybal_{side}"), f"Y-balance anterior {side}")
                for side in ("left", "right")}
    if all(v is not None for v in anterior.values()):
        body["y_balance"] = [{"anterior_cm": anterior}]
    elif any(v is not None for v in anterior.values()):
        raise BadInput("Y-balance anterior: enter the reach of both sides")
    for part in FINDING_PARTS:
        body[part] = [*body.get(part, []), *kept[part]]
    if "body_mass_kg" in kept:
        body["body_mass_kg"] = kept["body_mass_kg"]
    return body


def _reasoning(form: dict[str, str], finding_ids: list[str], saved: dict[str, Any] | None
               ) -> dict[str, Any]:
    """The reasoning form edits the first driver; any further saved driver is kept."""
    more = (saved or {}).get("drivers", [])[1:]
    return {"symptom_sites": [s.strip() for s in form.get("symptom_site", "").split(",")
                              if s.strip()],
            "episode_type": form.get("episode_type"),
            "working_diagnosis": form.get("working_diagnosis", ""),
            "working_diagnosis_icd10": form.get("icd10") or None,
            "drivers": [{"code": form.get("driver"), "rationale": form.get("rationale"),
                         "finding_ids": finding_ids}, *more]}


# A form the page refused: its part and every value sent (a field may repeat: finding_ids).
Kept = tuple[str, dict[str, list[str]]]


def typed(kept: Kept | None) -> tuple[Callable[..., Any], Callable[..., bool]]:
    """What a form shows: what was typed in it when it was refused, else what was saved.
    ``v(part, field, saved)`` is a field's text (a field the form did not send shows what was
    saved); ``on(part, field, value, saved)`` whether an option, radio or checkbox is chosen
    (one not sent is not chosen: that is how a cleared radio or checkbox arrives)."""
    kept_part, kept_form = kept or ("", {})

    def v(part: str, field: str, saved: Any = "") -> Any:
        values = kept_form.get(field) if part == kept_part else None
        return values[-1] if values else saved

    def on(part: str, field: str, value: str, saved: Any) -> bool:
        return value in kept_form.get(field, []) if part == kept_part else bool(saved)

    return v, on


def _with_blank(rows: list[dict[str, str]], fields: tuple[str, ...], most: int
                ) -> list[dict[str, str]]:
    """The rows, and a blank one to add a row with while there is room for one (a blank row
    sent back as typed is not doubled)."""
    if len(rows) < most and (not rows or any(rows[-1].values())):
        rows.append(dict.fromkeys(fields, ""))
    return rows


def treatment_rows(history: dict[str, Any] | None, kept: Kept | None) -> list[dict[str, str]]:
    """The history form's previous treatments: the rows as typed when it was refused, else
    as saved; ``helped`` is "yes", "no" or "" (not said)."""
    part, form = kept or ("", {})
    if part == "history":
        rows = [{"treatment": (form.get(f"previous_treatment_{n}") or [""])[-1],
                 "helped": (form.get(f"previous_treatment_helped_{n}") or [""])[-1]}
                for n in _rows(dict.fromkeys(form, ""), "previous_treatment")]
    else:
        rows = [{"treatment": t["treatment"], "helped": "yes" if t["helped"] else "no"}
                for t in (history or {}).get("previous_treatment", [])]
    return _with_blank(rows, ("treatment", "helped"), PREVIOUS_TREATMENTS_MAX)


def goal_rows(goals: list[dict[str, Any]], kept: Kept | None) -> list[dict[str, str]]:
    """The goals form's rows: as typed when it was refused, else as saved."""
    part, form = kept or ("", {})
    fields = ("activity", "level", "target_date")
    if part == "goals":
        rows = [{k: (form.get(f"{k}_{n}") or [""])[-1] for k in fields}
                for n in _rows(dict.fromkeys(form, ""), "activity")]
    else:
        rows = [{k: g.get(k) or "" for k in fields} for g in goals]
    return _with_blank(rows, fields, GOALS_MAX)


def router(runtime: Runtime, kit: AdminKit) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    call = kit.call

    def back_to(evaluation_id: str, flash: str, warn: bool = False) -> Response:
        query = urlencode({"flash": flash, **({"warn": "1"} if warn else {})})
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
        return await show(request, principal, evaluation_id,
                          flash=request.query_params.get("flash"),
                          warn=request.query_params.get("warn") == "1")

    async def show(request: Request, principal: Principal, evaluation_id: str, *,
                   flash: str | None = None, warn: bool = False, kept: Kept | None = None,
                   status_code: int = 200) -> Response:
        """The evaluation's page: as saved, or with one refused form (``kept``) showing what
        was typed in it."""
        found = await call(request, "GET", f"/evaluations/{evaluation_id}")
        if found.status_code != 200:
            return RedirectResponse(f"{HOME}?{urlencode({'flash': problem_text(found), 'warn': '1'})}",
                                    status_code=303)
        state = found.json()
        v, on = typed(kept)
        chosen = measures.CATALOG.get(v("measures", "measure", None)
                                      or request.query_params.get("measure") or "lefs")
        draft = ""
        if state["reasoning"] and not state["explanation"]:
            drafted = await call(request, "GET", f"/evaluations/{evaluation_id}/explanation/draft")
            draft = drafted.json()["text"] if drafted.status_code == 200 else ""
        indices = (state["findings"] or {}).get("indices", [])
        shown, kept_findings = split_findings((state["findings"] or {}).get("recorded"))
        driver = state["reasoning"]["drivers"][0] if state["reasoning"] else None
        charts = await measure_charts(request, state["episode_id"])
        response = kit.render(
            request, "evaluation.html", principal, title="Evaluation", e=state,
            red_flags=RED_FLAGS, catalog=measures.CATALOG, chosen=chosen, muscles=MUSCLES,
            ratings=RATINGS, drivers=DRIVER_LIBRARY, indices=indices, draft=draft,
            shown=shown, kept=kept_ids(kept_findings), driver=driver,
            treatments=treatment_rows(state["history"], kept),
            goals=goal_rows(state["goals"], kept), v=v, on=on,
            # The findings a driver may cite, and those the saved driver cites (checked).
            finding_ids=sorted({i["finding_id"] for i in indices}
                               | set(driver["finding_ids"] if driver else [])),
            charts=charts,
            # Drawn with the page: the addendum its form adds, however many times it is sent
            # (a double click, a resend after a timeout). A refused addendum added nothing,
            # so its form gets a new one, as a reload would.
            addendum_key=str(uuid.uuid4()), flash=flash, warn=warn)
        response.status_code = status_code
        return response

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
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        raw = await request.form()
        form = {k: str(v) for k, v in raw.items()}
        as_json = request.headers.get("accept") == "application/json"

        async def refused(message: str, status_code: int) -> Response:
            if as_json:
                # Saved as you go (the page's script): the outcome, shown beside the form.
                return JSONResponse({"saved": False, "message": message, "version": None},
                                    status_code=status_code)
            # Drawn again, not redirected: the problem shows and what was typed in the form
            # stays in it (thirty strength trials are not typed twice for one missing side).
            return await show(request, principal, evaluation_id, flash=f"Not saved: {message}",
                              warn=True, kept=(part, {k: [str(x) for x in raw.getlist(k)]
                                                      for k in raw}),
                              status_code=status_code)

        async def saved() -> dict[str, Any]:
            found = await call(request, "GET", f"/evaluations/{evaluation_id}")
            if found.status_code != 200:
                raise Refused(found)
            return found.json()  # type: ignore[no-any-return]

        method, path, body = "PUT", part, None
        try:
            if part == "history":
                body = _history(form)
            elif part == "red-flags":
                # Only the questions answered: one left unanswered stays unanswered (the
                # screening is then not done), never a "no" nobody said.
                body = {"answers": {q: form[q] == "yes" for q in RED_FLAGS
                                    if form.get(q) in ("yes", "no")}}
            elif part == "goals":
                body = {"goals": _goals(form)}
            elif part == "measures":
                method = "POST"
                answers = {k.removeprefix("item:"): _whole(v, k.removeprefix("item:"))
                           for k, v in form.items() if k.startswith("item:")}
                labels = {k.removeprefix("label:"): v for k, v in form.items()
                          if k.startswith("label:") and v.strip()}
                body = {"measure": form.get("measure"), "answers": answers,
                        "labels": labels or None}
            elif part == "findings":
                _, kept = split_findings(((await saved())["findings"] or {}).get("recorded"))
                body = _findings(form, kept)
            elif part == "reasoning":
                body = _reasoning(form, raw.getlist("finding_ids"),  # type: ignore[arg-type]
                                  (await saved())["reasoning"])
            elif part == "explanation":
                body = {"text": form.get("text", "")}
            elif part in ("complete", "refer-out", "addenda"):
                method = "POST"
                body = {"reason": form.get("reason"), "text": form.get("text")} \
                    if part == "addenda" else None
            else:
                return back_to(evaluation_id, f"Unknown part {part}", warn=True)
        except BadInput as exc:
            return await refused(str(exc), 422)
        except Refused as exc:
            return await refused(problem_text(exc.response), exc.response.status_code)
        # The version the page showed: a save over another tab's newer save is refused.
        headers = {"If-Match": form["version"]} if form.get("version") else {}
        if part == "addenda" and form.get("key"):
            headers["Idempotency-Key"] = form["key"]
        response = await call(request, method, f"/evaluations/{evaluation_id}/{path}",
                              json=body, headers=headers)
        if response.status_code not in (200, 201):
            return await refused(problem_text(response), response.status_code)
        if as_json:
            # Saved as you go: the new version, so the page's other forms keep naming the
            # version they now stand on.
            return JSONResponse({"saved": True, "message": "Saved.",
                                 "version": response.json().get("version")})
        done = {"complete": "Evaluation completed and published.",
                "refer-out": "Referred out.", "addenda": "Addendum added."}
        return back_to(evaluation_id, done.get(part, "Saved."))

    return pages
