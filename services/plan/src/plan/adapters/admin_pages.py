"""The therapist's pages for care plans: the caseload with what is due on each episode
(sessions to log, progressions to decide, reassessments due, overdue milestones, stale
prescriptions, a draft to activate), and one page per episode with the plan, its milestones
and a chart of the primary measure, the prescriptions editor, the session log, the proposed
progression to accept, the reassessment outcome, stage moves, discharge (or closing the
episode while the plan is a draft) and the timeline.

Every action is a call of plan's own API (kinetic_infra.http.admin_pages), so the pages
follow its rules, its audit trail and its problems. A refused action shows the problem in
the page's status region and keeps what was typed in the form it came from (the page is
rendered again, not redirected), so nothing is lost; a done one redirects (post/redirect/get).
The timeline and the chart read the plan's own event stream, after the API has shown the
plan to the caller.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, get_args
from uuid import UUID

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from kinetic_infra.auth.principal import Principal
from kinetic_infra.http.admin_pages import AdminKit, problem_text, redirect
from kinetic_infra.service.definition import Runtime
from plan.adapters import measure_chart
from plan.adapters.sessions import TO_LOG
from plan.application import plans
from plan.domain.discharge import ClosureReason, OverrideReason
from plan.domain.scales import SCALES
from plan.domain.prescription import Prescription
from plan.domain.stalls import ReassessmentDecision

HOME = "/admin/caseload"
MENU = [("Caseload", HOME)]
OUTCOMES = [(code, code.replace("_", " ")) for code in get_args(ReassessmentDecision)]
OVERRIDES = [(code, code.replace("_", " ")) for code in get_args(OverrideReason)]
CLOSURES = [(code, code.replace("_", " ")) for code in get_args(ClosureReason)]
EDITED = ("sets", "reps", "load_kg", "bodyweight", "tempo")  # what the editor changes
LOOKUPS = 8  # the caseload's plan reads at once
# The quick NPRS field steps as the score does (a whole number): a finer value is refused by
# the API (score-precision), so the form should not offer it.
NPRS_STEP = f"{10 ** -SCALES['nprs'].decimals:g}"


def _parse(text: str | None) -> Any:
    """A number as typed ("6", "6,5"), None when blank, or the text itself: the API then
    refuses it naming the field, so every check stays the API's."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return text


def _reps(text: str | None) -> list[Any]:
    """Reps per set as typed: "15, 15, 14" or "15 15 14"."""
    return [_parse(t) for t in re.split(r"[,;\s]+", (text or "").strip()) if t]


def explain(response: httpx.Response, sent: Any) -> str:
    """The API's problem as one line, naming the fields of a request validation error
    (fastapi-problem lists them under ``errors``) and an exercise by its code rather than
    its place in the list: "clamshell.pain_during: Input should be a valid integer"."""
    text = problem_text(response)
    try:
        body = response.json()
        errors, title = body.get("errors"), str(body.get("title", text))
    except (ValueError, AttributeError):
        return text
    if not isinstance(errors, list) or not errors:
        return text
    named = []
    for e in errors:
        loc = [str(part) for part in (e.get("loc") or [])[1:]] if isinstance(e, dict) else []
        if len(loc) > 1 and loc[1].isdigit() and isinstance(sent, dict):
            listed = sent.get(loc[0])
            i = int(loc[1])
            if isinstance(listed, list) and i < len(listed) and isinstance(listed[i], dict):
                loc[:2] = [str(listed[i].get("exercise") or f"{loc[0]}[{i}]")]
        named.append(f"{'.'.join(loc) or 'body'}: {e.get('msg') if isinstance(e, dict) else e}")
    return f"{title.rstrip('.')}: {'; '.join(named)}"


def describe(p: dict[str, Any] | None) -> str:
    """A prescription as the clinician writes it: "3×15 @ BW, 2-1-2"."""
    if not p:
        return "—"
    try:
        return Prescription.model_validate(p).describe()
    except ValueError:
        return f"{p.get('sets')}×{p.get('reps')} @ {p.get('load_kg')} kg"


def _humanize(event_type: str) -> str:
    """"kinetic.plan.session.recorded.v1" -> "session recorded"."""
    core = event_type.removeprefix("kinetic.plan.").rsplit(".v", 1)[0]
    return core.replace(".", " ").replace("_", " ")


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _summary(event_type: str, d: dict[str, Any], name: Callable[[str], str]) -> str:
    """One line of what the event says, for the timeline."""
    kind = event_type.removeprefix("kinetic.plan.").rsplit(".v", 1)[0]
    if kind == "plan.drafted":
        c = d["content"]
        return (f"Drafted from the evaluation: {len(c['stages'])} stages, "
                f"{len(c['prescriptions'])} exercises")
    if kind == "plan.edited":
        what = f"Revision {d['revision']}" if d["revision"] else "Draft edited"
        return f"{what}: {d['reason']}" if d.get("reason") else what
    if kind == "plan.activated":
        return (f"Activated: {d['expected_sessions']} sessions, "
                f"{_short(d['sessions_per_week'])} a week, until {d['target_date']}")
    if kind == "session.recorded":
        s = d["session"]
        proposed = ", ".join(f"{name(p['next']['exercise'])} {p['action']}"
                             for p in s["proposals"])
        return f"Session {s['number']} logged" + (f": {proposed}" if proposed else "")
    if kind == "session.next_morning_recorded":
        return ("Settled by the next morning" if d["settled"] else
                "Not settled by the next morning") + "; the proposals were decided again"
    if kind == "progression.decided":
        changed = ", ".join(name(e) for e in d["changed"])
        return f"Revision {d['revision']}: " + (
            f"parameters set otherwise for {changed}" if changed else "proposals accepted")
    if kind == "results.recorded":
        numbers = [f"{r['key']} {_short(r['value'])}" for r in d.get("readings", [])]
        numbers += [f"{r['criterion_id']} = {_short(r['value'])}" for r in d.get("results", [])
                    if d["source"] != "session"]
        return f"From the {d['source']} (session {d['session_number']}): " + (
            ", ".join(numbers) or "nothing new")
    if kind == "milestone.met":
        return f"{d['milestone_id']} ({d['stage']})"
    if kind == "milestone.overdue":
        return f"{d['milestone_id']} ({d['stage']}) was due {d['target_date']}"
    if kind == "reassessment.flagged":
        return "; ".join(f"{f['rule']}: {f['reason']}" for f in d["flags"])
    if kind == "reassessment.resolved":
        return f"{d['outcome'].replace('_', ' ')}: {d['free_text']}"
    if kind == "stage.changed":
        t = d["transition"]
        moved = f"{t['from_stage']} → {t['to_stage']}"
        return f"{moved}: {t['reason']}" if t.get("reason") else moved
    if kind == "episode.discharged":
        g = d["discharge"]
        if g["basis"] == "override" and g.get("override"):
            o = g["override"]
            return f"Discharged by override ({o['reason_code'].replace('_', ' ')}): " \
                   f"{o['free_text']}"
        return "Discharged: every criterion met"
    if kind == "episode.closed":
        c = d["closure"]
        why = c["free_text"] or ", ".join(f.replace("_", " ") for f in c["red_flags"])
        return f"Closed before the plan was active ({c['reason'].replace('_', ' ')})" + (
            f": {why}" if why else "")
    return ""


def _charts(plan: dict[str, Any], recorded: list[Any]) -> list[str]:
    """The primary measure (and every other tracked one with readings) from its baseline
    through the sessions' readings, with the milestone targets that read it."""
    content = plan["content"]
    readings: dict[str, dict[int, float]] = {}
    for event in recorded:
        if event.type.startswith("kinetic.plan.results.recorded."):
            for r in event.data.get("readings", []):
                readings.setdefault(r["key"], {})[event.data["session_number"]] = r["value"]
    criteria = {c["id"]: c for s in content["stages"] for c in s["exit_criteria"]}
    criteria.update({c["id"]: c for c in content["discharge_criteria"]})
    charts = []
    for i, baseline in enumerate([content["primary"], *content["tracked"]]):
        rule = baseline["rule"]
        key = rule.get("score") or rule["measure"]
        taken = readings.get(key, {})
        if i > 0 and not taken:
            continue
        points = [("baseline", baseline["value"]),
                  *((f"S{n}", v) for n, v in sorted(taken.items()))]
        targets = [measure_chart.Target(c["label"], c["target"]) for c in criteria.values()
                   if c["source"] == "measure" and (c.get("key") or c["ref"]) == key]
        charts.append(measure_chart.svg(measure_chart.Series(key, points, targets)))
    return charts


def episode_context(plan: dict[str, Any], entry: dict[str, Any],
                    completed: list[dict[str, Any]], library: list[dict[str, Any]],
                    recorded: list[Any], *, kept: tuple[str, dict[str, str]] | None = None,
                    message: str | None = None, warn: bool = False) -> dict[str, Any]:
    """What the episode page shows, from the API's answers (the plan, the episode, its
    completed sessions, the exercise library) and the plan's recorded events."""
    content = plan["content"]
    exercises = {e["code"]: e for e in library}

    def name(code: str) -> str:
        found = exercises.get(code)
        return found["name"] if found else code.replace("_", " ")

    timeline = [{"at": e.recorded_at, "what": _humanize(e.type),
                 "summary": _summary(e.type, e.data, name)} for e in reversed(recorded)]
    logged = {s["appointment_id"]: s for s in plan["sessions"]}
    sessions = [{**s, "record": logged.get(s["appointment_id"])} for s in completed]
    to_log = [s for s in sessions if not s["logged"] and s["appointment_type"] in TO_LOG]
    stages = content["stages"]
    current = next(s for s in stages if s["code"] == plan["stage"])
    goals = [*current["exit_criteria"], *(c for c in content["discharge_criteria"]
                                          if c not in current["exit_criteria"])]
    kept_key, kept_form = kept or ("", {})

    def v(key: str, field: str, default: Any = "") -> Any:
        """What the form shows: what was typed when this form was refused, else the
        plan's value."""
        return kept_form.get(field, "") if key == kept_key else default

    def on(key: str, field: str, value: str, default: bool) -> str:
        if key == kept_key:
            return "checked" if kept_form.get(field) == value else ""
        return "checked" if default else ""

    return dict(
        p=plan, c=content, entry=entry, sessions=sessions, to_log=to_log,
        decided=[s for s in reversed(plan["sessions"])], stages=stages,
        earlier=stages[:plan["stage_position"] - 1], goals=goals,
        charts=_charts(plan, recorded), timeline=timeline, name=name,
        unit=lambda code: exercises.get(code, {}).get("reps_unit", "reps"),
        describe=describe, prescribed={x["exercise"]: x for x in content["prescriptions"]},
        outcomes=OUTCOMES, overrides=OVERRIDES, closures=CLOSURES, v=v, on=on,
        nprs_step=NPRS_STEP, message=message, warn=warn)


def router(runtime: Runtime, kit: AdminKit) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    call = kit.call

    ok = kit.get_or

    # -- the caseload ------------------------------------------------------------------------

    async def due(request: Request, row: dict[str, Any]) -> dict[str, Any]:
        """What the episode needs from the therapist, each item linking to where it is done."""
        episode_id = row["episode_id"]
        here = f"{HOME}/{episode_id}"
        found = await call(request, "GET", f"/episodes/{episode_id}/plan")
        if found.status_code != 200:
            return {**row, "plan": None, "due": []}
        plan = found.json()
        items: list[tuple[str, str, str]] = []  # (kind, text, href)
        if plan["status"] == "draft":
            items.append(("draft", "Plan drafted: review and activate it", f"{here}#plan"))
        for flag in plan["reassessment_due"]:
            items.append(("reassessment", f"Reassessment due ({flag['rule']}): "
                                          f"{flag['reason']}", f"{here}#reassessment"))
        if plan["status"] == "active":
            for s in await ok(request, f"/episodes/{episode_id}/sessions", []):
                if not s["logged"] and s["appointment_type"] in TO_LOG:
                    items.append(("log", f"Session {s['session_number']} to log "
                                         f"({s['starts_at'][:10]})",
                                  f"{here}#log-{s['appointment_id']}"))
        for s in plan["sessions"]:
            # A superseded one (the plan moved on since) can no longer be decided.
            if s["proposals"] and not s["decided"] and not s.get("superseded"):
                items.append(("decide", f"Session {s['number']}: progression to decide",
                              f"{here}#session-{s['appointment_id']}"))
        for m in plan["milestones"]:
            if m["overdue"] and not m["met"]:
                items.append(("overdue", f"Milestone overdue: {m['label']} (due "
                                         f"{m['target_date']})", f"{here}#milestones"))
        for exercise in plan["stale_prescriptions"]:
            items.append(("stale", f"Stimulus stale: {exercise.replace('_', ' ')}",
                          f"{here}#prescriptions"))
        return {**row, "plan": plan, "due": items}

    @pages.get(HOME)
    async def caseload(request: Request) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        listed = await call(request, "GET", "/episodes")
        message = request.query_params.get("flash")
        warn = request.query_params.get("warn") == "1"
        rows: list[dict[str, Any]] = []
        if listed.status_code == 200:
            gate = asyncio.Semaphore(LOOKUPS)

            async def one(row: dict[str, Any]) -> dict[str, Any]:
                async with gate:
                    return await due(request, row)

            rows = list(await asyncio.gather(*(one(r) for r in listed.json())))
            rows.sort(key=lambda r: not r["due"])  # what is due first, newest first within
        else:
            message, warn = f"The caseload could not be read: {problem_text(listed)}", True
        return kit.render(request, "caseload.html", principal, title="Caseload", rows=rows,
                          message=message, warn=warn)

    # -- one episode -----------------------------------------------------------------------

    async def episode_page(request: Request, principal: Principal, episode_id: str, *,
                           message: str | None = None, warn: bool = False,
                           kept: tuple[str, dict[str, str]] | None = None,
                           status_code: int = 200) -> Response:
        found = await call(request, "GET", f"/episodes/{episode_id}/plan")
        if found.status_code != 200:
            return redirect(HOME, f"Episode {episode_id}: {problem_text(found)}", warn=True)
        plan = found.json()
        entry, completed, library = await asyncio.gather(
            ok(request, f"/episodes/{episode_id}", {}),
            ok(request, f"/episodes/{episode_id}/sessions", []),
            ok(request, "/exercises", []))
        async with runtime.db.read(principal.tenant_id) as conn:
            recorded, _ = await runtime.store.read(conn, plans.stream(UUID(plan["plan_id"])),
                                                   tenant_id=principal.tenant_id)
        response = kit.render(
            request, "episode.html", principal, title="Episode",
            **episode_context(plan, entry, completed, library, recorded, kept=kept,
                              message=message or request.query_params.get("flash"),
                              warn=warn or request.query_params.get("warn") == "1"))
        response.status_code = status_code
        return response

    @pages.get(HOME + "/{episode_id}")
    async def episode(request: Request, episode_id: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        return await episode_page(request, principal, episode_id)

    # -- actions: each one call of plan's API ---------------------------------------------

    async def edited(request: Request, episode_id: str, form: dict[str, str]
                     ) -> dict[str, Any]:
        """The plan's content as it is now, with the editor's changes: a prescription whose
        parameters changed is dated today (what the stale-stimulus check counts from)."""
        current = await call(request, "GET", f"/episodes/{episode_id}/plan")
        if current.status_code != 200:
            return {}  # refused by the API, which then says why
        content = dict(current.json()["content"])
        today = datetime.now(UTC).date().isoformat()
        prescriptions = []
        for p in content["prescriptions"]:
            code = p["exercise"]
            if f"{code}:sets" not in form:
                prescriptions.append(p)
                continue
            bodyweight = form.get(f"{code}:bodyweight") == "yes"
            load = _parse(form.get(f"{code}:load_kg"))
            new = {**p, "sets": _parse(form.get(f"{code}:sets")),
                   "reps": _parse(form.get(f"{code}:reps")),
                   "load_kg": 0 if load is None else load, "bodyweight": bodyweight,
                   "tempo": (form.get(f"{code}:tempo") or "").strip() or None}
            if any(new[k] != p[k] for k in EDITED):
                new["changed_on"] = today
            prescriptions.append(new)
        content["prescriptions"] = prescriptions
        for field in ("expected_sessions", "sessions_per_week", "target_date"):
            if field in form:
                content[field] = _parse(form[field]) if field != "target_date" else (
                    form[field].strip() or None)
        return content

    def session_log(form: dict[str, str], codes: list[str]) -> dict[str, Any]:
        """The log form as the API's SessionLog: the exercises ticked as done, as done."""
        done = []
        for code in codes:
            if form.get(f"{code}:done") != "yes":
                continue
            load = _parse(form.get(f"{code}:load_kg"))
            done.append({"exercise": code, "reps_per_set": _reps(form.get(f"{code}:reps")),
                         "load_kg": 0 if load is None else load,
                         "rpe": _parse(form.get(f"{code}:rpe")),
                         "pain_during": _parse(form.get(f"{code}:pain_during"))})
        body: dict[str, Any] = {
            "what_was_done": form.get("what_was_done", "").strip(), "exercises": done,
            "morning_worse_than_last_week": form.get("morning_worse") == "yes",
            "settled_next_morning": {"yes": True, "no": False}.get(form.get("settled", "")),
            "quick_measures": {} if _parse(form.get("nprs")) is None else {
                "nprs": _parse(form.get("nprs"))}}
        if form.get("mt_technique", "").strip():
            body["manual_therapy"] = {"technique": form["mt_technique"].strip(),
                                      "goal": form.get("mt_goal", "")}
        return body

    def set_otherwise(session: dict[str, Any] | None, form: dict[str, str], codes: list[str]
                      ) -> list[dict[str, Any]]:
        """The proposals the therapist changed before accepting: those go as changes, the
        rest take the proposal."""
        if session is None:
            return []
        proposed = {x["next"]["exercise"]: x["next"] for x in session["proposals"]}
        today = datetime.now(UTC).date().isoformat()
        changes = []
        for code in codes:
            nxt = proposed.get(code)
            if nxt is None or f"{code}:sets" not in form:
                continue
            load = _parse(form.get(f"{code}:load_kg"))
            mine = {**nxt, "sets": _parse(form.get(f"{code}:sets")),
                    "reps": _parse(form.get(f"{code}:reps")),
                    "load_kg": 0 if load is None else load,
                    "tempo": (form.get(f"{code}:tempo") or "").strip() or None}
            if any(mine[k] != nxt[k] for k in EDITED):
                changes.append({**mine, "changed_on": today})
        return changes

    @pages.post(HOME + "/{episode_id}/{action:path}")
    async def act(request: Request, episode_id: str, action: str) -> Response:
        principal = kit.signed_in(request)
        if principal is None:
            return kit.sign_in(request)
        raw = await request.form()
        form = {k: str(v) for k, v in raw.items()}
        codes = [str(c) for c in raw.getlist("exercise")]
        here = f"{HOME}/{episode_id}"
        api = f"/episodes/{episode_id}"
        parts = action.split("/")
        method, path, body, headers, anchor = "POST", "", None, {}, ""
        if action == "plan":
            content = await edited(request, episode_id, form)
            method, path, anchor = "PUT", f"{api}/plan", "prescriptions"
            body = {"content": content, "reason": form.get("reason", "").strip()}
            # The version the page showed: an edit over a newer plan is refused, not merged.
            headers = {"If-Match": form["version"]} if form.get("version") else {}
        elif action == "activate":
            path, anchor = f"{api}/plan/activate", "plan"
        elif len(parts) == 3 and parts[0] == "sessions" and parts[2] in (
                "log", "next-morning", "progression"):
            path, anchor = f"{api}/{action}", f"session-{parts[1]}"
            if parts[2] == "log":
                body = session_log(form, codes)
            elif parts[2] == "next-morning":
                body = {"settled": form.get("settled") == "yes"}
            else:
                now = await ok(request, f"{api}/plan", {"sessions": []})
                session = next((s for s in now["sessions"]
                                if s["appointment_id"] == parts[1]), None)
                body = {"changes": set_otherwise(session, form, codes)}
        elif action == "results":
            path, anchor = f"{api}/results", "milestones"
            body = {"criterion_id": form.get("criterion_id"), "value": _parse(form.get("value"))}
        elif action == "reassessment":
            path, anchor = f"{api}/reassessment", "reassessment"
            body = {"outcome": form.get("outcome"), "free_text": form.get("free_text", "")}
        elif action == "stage/advance":
            path, anchor = f"{api}/stage/advance", "stage"
            # The stage the page showed: a second click (or a resent form) after the plan
            # moved on advances nothing more.
            body = {"from_stage": form.get("from_stage") or None}
        elif action == "stage/back":
            path, anchor = f"{api}/stage/back", "stage"
            body = {"reason": form.get("reason", ""), "to": form.get("to") or None}
        elif action == "discharge":
            path, anchor = f"{api}/discharge", "discharge"
            body = {"override": {"reason_code": form.get("reason_code"),
                                 "free_text": form.get("free_text", "")}
                    } if form.get("override") == "yes" else {}
        elif action == "close":
            path, anchor = f"{api}/close", "discharge"
            body = {"reason": form.get("reason"), "free_text": form.get("free_text", "")}
        else:
            return redirect(here, f"Unknown action {action}", warn=True)

        response = await call(request, method, path, json=body, headers=headers)
        done = response.status_code == 200
        if request.headers.get("accept") == "application/json":
            # Saved as you go (the draft's editor): the outcome and the new version.
            return JSONResponse({"saved": done, "message": "Saved." if done else explain(
                response, body), "version": response.json().get("version") if done else None},
                status_code=200 if done else response.status_code)
        if not done:
            # Rendered again, not redirected: the problem shows and what was typed stays.
            return await episode_page(
                request, principal, episode_id, message=f"Not done: {explain(response, body)}",
                warn=True, kept=(form.get("form", ""), form), status_code=response.status_code)
        after = response.json()
        return redirect(here, _done(action, parts, after), anchor=anchor)

    return pages


def _done(action: str, parts: list[str], after: dict[str, Any]) -> str:
    """What the status region says after the API did it."""
    if action == "plan":
        return "Draft saved." if after["status"] == "draft" else (
            f"Revision {after['revision']} saved.")
    if action == "activate":
        return f"Plan activated (revision {after['revision']})."
    if action == "close":  # the answer is the closure, not the plan
        return "Episode closed before treatment."
    if parts[0] == "sessions":
        session = next((s for s in after["sessions"] if s["appointment_id"] == parts[1]), None)
        if parts[2] == "log" and session is not None:
            actions = [x["action"] for x in session["proposals"]]
            counted = ", ".join(f"{actions.count(a)} {a}" for a in ("progress", "hold", "regress")
                                if a in actions)
            return f"Session {session['number']} logged." + (
                f" Proposed: {counted}." if counted else "")
        if parts[2] == "next-morning":
            return "Next morning recorded; the proposals are decided again."
        return f"Revision {after['revision']}: the new parameters are the plan."
    return {"results": "Result recorded.", "reassessment": "Reassessment outcome recorded.",
            "stage/advance": f"Advanced to {after['stage']}.",
            "stage/back": f"Moved back to {after['stage']}.",
            "discharge": "Discharged."}.get(action, "Done.")
