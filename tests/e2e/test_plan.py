"""The worked example of CLINICAL.md §5 across the services: the runner is evaluated in
assessment, plan drafts a four-stage plan from the evaluation, the therapist activates it,
sessions completed in booking are logged in plan with the progression they propose, the
stall at session 4 fires STALL-1 through the EpisodeOfCareWorkflow, assessment's
reassessment feeds the numbers back, the stages advance, and discharge is refused while one
criterion is unmet, then allowed; booking closes the episode and the workflow ends.

An episode that ends before its plan is active ends the same way: referred out at the initial
evaluation, closed by the clinician while the plan is a draft, or with no plan drafted."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from kinetic_contracts.booking.v1.events import AppointmentCompleted
from tests.e2e.test_evaluations import NEGATIVE, evaluate_the_runner, publish

pytestmark = pytest.mark.platform

LEFS_72 = {f"lefs_{n:02d}": 4 if n <= 12 else 3 for n in range(1, 21)}
STRONG = {
    "strength": [{"muscle_group": "hip_abduction", "unit": "kgf", "involved_side": "right",
                  "trials_right": [16.9, 17.1, 17.0], "trials_left": [18.0, 18.2, 18.1]}],
    "movement": [{"kind": "single_leg_squat", **{
        side: {part: "good" for part in ("overall", "trunk", "pelvis", "hip", "knee")}
        for side in ("left", "right")}}],
    "y_balance": [{"anterior_cm": {"right": 61, "left": 62}}],
}


async def evaluated_plan(api, episode, wait_for) -> dict:
    """The runner evaluated and the plan plan drafted from it."""
    created = await api("assessment", "POST", "/evaluations",
                        json={"episode_id": episode["episode_id"]})
    done = await evaluate_the_runner(api, created.json()["id"])
    assert done["status"] == "completed", done

    async def drafted():
        got = await api("plan", "GET", f"/episodes/{episode['episode_id']}/plan")
        return got.json() if got.status_code == 200 else None

    return await wait_for(drafted)


def far_dates(content: dict, start: date) -> dict:
    """The stages' target dates moved months out, so no milestone falls due during the
    test whatever the day it runs."""
    stages = [{**s, "target_date": (start + timedelta(days=60 + 10 * i)).isoformat()}
              for i, s in enumerate(content["stages"])]
    return {**content, "stages": stages,
            "target_date": (start + timedelta(days=100)).isoformat()}


async def complete_session(platform, tenant, episode, number: int, kind: str) -> str:
    """Booking's appointment.completed for the episode's session ``number`` (as the front
    desk's "complete" publishes it)."""
    appointment_id = uuid.uuid4()
    starts = datetime.now(UTC) - timedelta(days=30 - 3 * number)
    await publish(platform, tenant, "booking", AppointmentCompleted(
        appointment_id=appointment_id, patient_id=episode["patient_id"],
        therapist_id=uuid.uuid4(), location_id=episode["location_id"],
        episode_id=episode["episode_id"], appointment_type=kind, starts_at=starts,
        at=starts + timedelta(hours=1)))
    return str(appointment_id)


def session_log(plan: dict, *, nprs: float, pain: int = 2, rpe: float = 6) -> dict:
    return {"what_was_done": "Program reviewed; loading as prescribed",
            "exercises": [{"exercise": p["exercise"], "reps_per_set": [p["reps"]] * p["sets"],
                           "load_kg": p["load_kg"], "rpe": rpe, "pain_during": pain}
                          for p in plan["content"]["prescriptions"]],
            "settled_next_morning": True, "quick_measures": {"nprs": nprs}}


async def test_the_worked_example_from_evaluation_through_a_stall_to_discharge(
        platform, api, tenant, episode, published, wait_for):
    episode_id = episode["episode_id"]
    base = f"/episodes/{episode_id}"
    plan = await evaluated_plan(api, episode, wait_for)
    assert [s["code"] for s in plan["content"]["stages"]] == ["calm", "restore", "build",
                                                               "perform"]
    assert plan["content"]["expected_sessions"] == 8
    kinds = {c["kind"] for c in plan["content"]["discharge_criteria"]}
    assert {"functional", "performance", "sport_work"} <= kinds

    edited = await api("plan", "PUT", f"{base}/plan", headers={"If-Match": str(plan["version"])},
                       json={"content": far_dates(plan["content"], date.today())})
    assert edited.status_code == 200, edited.text
    activated = await api("plan", "POST", f"{base}/plan/activate")
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    [created] = await wait_for(lambda: published("kinetic.plan.plan.created.v1"))
    assert created["data"]["expected_sessions"] == 8

    # S1 was the assessment; S2–S4 are treatment sessions completed at the front desk, each
    # logged after it is completed.
    await complete_session(platform, tenant, episode, 1, "initial_assessment")
    treatments = []
    for number in (2, 3):
        appointment = await complete_session(platform, tenant, episode, number,
                                             "treatment_session")
        treatments.append(appointment)
        await wait_for(lambda: _listed(api, base, number))
        logged = await api("plan", "POST", f"{base}/sessions/{appointment}/log",
                           json=session_log(plan, nprs=4))
        assert logged.status_code == 200, logged.text
        [session] = [s for s in logged.json()["sessions"] if s["appointment_id"] == appointment]
        assert {p["action"] for p in session["proposals"]} == {"progress"}
        accepted = await api("plan", "POST", f"{base}/sessions/{appointment}/progression",
                             json={})
        assert accepted.status_code == 200, accepted.text
        plan = accepted.json()
    revised = await wait_for(lambda: published("kinetic.plan.plan.revised.v1"))
    assert [r["data"]["revision"] for r in revised][-1] == plan["revision"]

    # S4: LEFS not re-measured above 52 and no stage-1 milestone met → STALL-1.
    treatments.append(await complete_session(platform, tenant, episode, 4, "treatment_session"))
    listed = (await wait_for(lambda: _listed(api, base, 4)))
    assert [s["session_number"] for s in listed] == [1, 2, 3, 4]
    fourth = await api("plan", "POST", f"{base}/sessions/{treatments[2]}/log",
                       json=session_log(plan, nprs=4))
    assert fourth.status_code == 200, fourth.text
    [due] = await wait_for(lambda: published("kinetic.plan.reassessment.due.v1"))
    assert due["data"]["rules"] == ["STALL-1"] and due["data"]["reason"] == "progress_stalled"
    assert due["data"]["numbers"]["STALL-1.sessions_used"] == 4
    assert due["data"]["numbers"]["STALL-1.baseline"] == 52

    # The plan does not go on until the reassessment's outcome is recorded.
    held = await api("plan", "POST", f"{base}/sessions/{treatments[2]}/progression", json={})
    assert held.status_code == 409 and held.json()["type"] == "/problems/reassessment-outstanding"

    # Assessment opened a reassessment draft from plan's event; the therapist reassesses.
    async def reassessment_draft():
        got = await api("assessment", "GET", f"/evaluations?episode_id={episode_id}")
        return next((e["evaluation_id"] for e in got.json()
                     if e["kind"] == "reassessment" and e["status"] == "draft"), None)

    draft_id = await wait_for(reassessment_draft)
    evaluation = f"/evaluations/{draft_id}"
    for method, path, body in (
            ("PUT", "red-flags", NEGATIVE),
            ("POST", "measures", {"measure": "lefs", "answers": LEFS_72}),
            ("POST", "measures", {"measure": "psfs", "answers": {
                "psfs_01": 8, "psfs_02": 9, "psfs_03": 8}, "labels": {
                "psfs_01": "run 30 min", "psfs_02": "stairs down",
                "psfs_03": "squat to lift child"}}),
            ("PUT", "findings", STRONG), ("POST", "complete", None)):
        response = await api("assessment", method, f"{evaluation}/{path}", json=body)
        assert response.status_code == 200, (path, response.text)
    resolved = await api("plan", "POST", f"{base}/reassessment", json={
        "outcome": "revise_plan", "free_text": "Load adherence was low; foot driver ruled out"})
    assert resolved.status_code == 200 and resolved.json()["reassessment_due"] == []
    accepted = await api("plan", "POST", f"{base}/sessions/{treatments[2]}/progression",
                         json={})
    assert accepted.status_code == 200, accepted.text

    # The reassessment's numbers reach the plan: the strength and movement milestones pass.
    async def milestones_met():
        got = (await api("plan", "GET", f"{base}/plan")).json()
        met = {m["id"] for m in got["milestones"] if m["met"]}
        return "discharge.lefs" in met and "build.movement:sls.bilateral_rating" in met and got

    plan = await wait_for(milestones_met)

    # Stage 1 still needs the home program adherence and pain ≤ 3 (a fifth session's NPRS).
    fifth = await complete_session(platform, tenant, episode, 5, "treatment_session")
    await wait_for(lambda: _listed(api, base, 5))
    logged = await api("plan", "POST", f"{base}/sessions/{fifth}/log",
                       json=session_log(plan, nprs=2))
    assert logged.status_code == 200, logged.text
    refused = await api("plan", "POST", f"{base}/stage/advance")
    assert refused.status_code == 422, refused.text
    assert refused.json()["unmet"] == ["calm.home_program_adherence_pct"]
    await api("plan", "POST", f"{base}/results",
              json={"criterion_id": "calm.home_program_adherence_pct", "value": 90})
    for stage in ("restore", "build", "perform"):
        advanced = await api("plan", "POST", f"{base}/stage/advance")
        assert advanced.status_code == 200 and advanced.json()["stage"] == stage, advanced.text
    advances = await wait_for(lambda: _n_published(published, "kinetic.plan.stage.advanced.v1",
                                                   3))
    assert [a["data"]["to_stage"] for a in advances] == ["restore", "build", "perform"]

    # Discharge: refused while the running goal is unmet, allowed once it is met.
    refused = await api("plan", "POST", f"{base}/discharge", json={})
    assert refused.status_code == 422, refused.text
    assert refused.json()["unmet"] == ["discharge.goal.running"]
    assert (await api("plan", "GET", f"{base}/plan")).json()["status"] == "active"
    await api("plan", "POST", f"{base}/results",
              json={"criterion_id": "discharge.goal.running", "value": 1})
    discharged = await api("plan", "POST", f"{base}/discharge", json={})
    assert discharged.status_code == 200 and discharged.json()["status"] == "discharged"
    [event] = await wait_for(lambda: published("kinetic.plan.episode.discharged.v1"))
    assert event["data"]["basis"] == "criteria_met"
    assert event["data"]["plan_id"] == discharged.json()["plan_id"]  # which plan ended

    async def workflow_ended():
        got = await api("plan", "GET", f"{base}/workflow")
        return got.status_code == 200 and got.json()["stage"] == "discharged"

    await wait_for(workflow_ended)


async def _listed(api, base: str, count: int) -> list[dict] | None:
    got = (await api("plan", "GET", f"{base}/sessions")).json()
    return got if len(got) == count else None


async def _n_published(published, event_type: str, count: int) -> list[dict] | None:
    got = await published(event_type)
    return got if len(got) >= count else None


async def test_bad_input_to_a_plan_gets_a_problem_and_changes_nothing(api, episode, wait_for):
    base = f"/episodes/{episode['episode_id']}"
    plan = await evaluated_plan(api, episode, wait_for)
    content = plan["content"]
    first = content["prescriptions"][0]

    def with_prescription(**changes) -> dict:
        return {"content": {**content, "prescriptions": [{**first, **changes},
                                                         *content["prescriptions"][1:]]}}

    for body, problem in (
            (with_prescription(load_kg=-5, bodyweight=False), "invalid-prescription"),
            (with_prescription(exercise="moon_walk"), "unknown-exercise"),
            ({"content": {**content, "discharge_criteria": [
                c for c in content["discharge_criteria"] if c["kind"] != "performance"]}},
             "plan-not-activatable")):
        refused = await api("plan", "PUT", f"{base}/plan", json=body)
        if refused.status_code == 200:  # a draft may lack criteria: activation refuses it
            refused = await api("plan", "POST", f"{base}/plan/activate")
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] == f"/problems/{problem}", refused.text
    restored = await api("plan", "PUT", f"{base}/plan", json={"content": content})
    assert restored.status_code == 200, restored.text
    assert (await api("plan", "POST", f"{base}/plan/activate")).status_code == 200
    before = (await api("plan", "GET", f"{base}/plan")).json()
    unmet = await api("plan", "POST", f"{base}/stage/advance")
    assert unmet.status_code == 422 and unmet.json()["type"] == "/problems/exit-criteria-unmet"
    no_reason = await api("plan", "POST", f"{base}/stage/back", json={"reason": ""})
    assert no_reason.status_code == 422
    after = (await api("plan", "GET", f"{base}/plan")).json()
    assert (after["version"], after["stage"]) == (before["version"], "calm")


async def test_a_milestone_past_its_date_is_announced_overdue_and_stall_4_asks_for_a_reassessment(
        api, episode, published, wait_for):
    """A calm stage due a week ago: the workflow's first check after activation announces its
    milestones overdue and STALL-4 fires (7 days' grace for acute_clear_driver). The timers
    that bring such a check on the episode's clock are proven in tests/workflows; here the
    real worker, activity and broker carry it."""
    base = f"/episodes/{episode['episode_id']}"
    plan = await evaluated_plan(api, episode, wait_for)
    content = far_dates(plan["content"], date.today())
    content["stages"][0]["target_date"] = (date.today() - timedelta(days=7)).isoformat()
    assert (await api("plan", "PUT", f"{base}/plan", json={"content": content})).status_code == 200
    assert (await api("plan", "POST", f"{base}/plan/activate")).status_code == 200

    overdue = await wait_for(lambda: published("kinetic.plan.milestone.overdue.v1"))
    assert {o["data"]["milestone_id"] for o in overdue} == {
        c["id"] for c in content["stages"][0]["exit_criteria"]}
    [due] = await wait_for(lambda: published("kinetic.plan.reassessment.due.v1"))
    assert due["data"]["rules"] == ["STALL-4"] and due["data"]["reason"] == "milestone_due"
    got = (await api("plan", "GET", f"{base}/plan")).json()
    assert all(m["overdue"] for m in got["milestones"] if m["stage"] == "calm")
    assert got["reassessment_due"][0]["rule"] == "STALL-4"


async def test_a_discharge_override_records_who_why_and_when_and_the_home_program_prints(
        api, episode, published, wait_for):
    base = f"/episodes/{episode['episode_id']}"
    plan = await evaluated_plan(api, episode, wait_for)
    await api("plan", "PUT", f"{base}/plan",
              json={"content": far_dates(plan["content"], date.today())})
    assert (await api("plan", "POST", f"{base}/plan/activate")).status_code == 200

    page = await api("plan", "GET", f"{base}/home-program")
    assert page.status_code == 200 and "Your home program" in page.text
    first = plan["content"]["prescriptions"][0]
    assert f"{first['sets']}×{first['reps']}" in page.text
    assert "Your next milestone" in page.text
    pdf = await api("plan", "GET", f"{base}/home-program.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")

    refused = await api("plan", "POST", f"{base}/discharge", json={})
    assert refused.status_code == 422 and refused.json()["type"] == "/problems/discharge-criteria-unmet"
    overridden = await api("plan", "POST", f"{base}/discharge", json={"override": {
        "reason_code": "patient_withdrew", "free_text": "Moved abroad for work"}})
    assert overridden.status_code == 200, overridden.text
    record = overridden.json()["discharge"]["record"]
    assert record["basis"] == "override"
    assert (record["override"]["reason_code"], record["override"]["free_text"]) == (
        "patient_withdrew", "Moved abroad for work")
    assert record["override"]["clinician_id"] and record["override"]["timestamp"]
    [event] = await wait_for(lambda: published("kinetic.plan.episode.discharged.v1"))
    assert (event["data"]["basis"], event["data"]["override_reason"]) == (
        "override", "patient_withdrew")
    assert "Moved abroad" not in str(event["data"])


# -- episodes that end before their plan is active -------------------------------------------

async def _workflow_stage(api, episode_id: str) -> str | None:
    got = await api("plan", "GET", f"/episodes/{episode_id}/workflow")
    return got.json()["stage"] if got.status_code == 200 else None


async def _ended(api, episode_id: str) -> bool:
    """Booking closed the episode and its EpisodeOfCareWorkflow ended."""
    booked = (await api("booking", "GET", f"/episodes/{episode_id}")).json()
    return booked["status"] == "closed" and await _workflow_stage(api, episode_id) == "discharged"


async def test_an_initial_evaluation_referred_out_ends_the_episode_and_booking_closes_it(
        api, episode, published, wait_for):
    """Red flags at the initial evaluation: assessment refers the patient out; plan, which
    never drafted a plan, discharges the episode as referred out."""
    episode_id = episode["episode_id"]
    created = await api("assessment", "POST", "/evaluations", json={"episode_id": episode_id})
    evaluation = f"/evaluations/{created.json()['id']}"
    assert await wait_for(lambda: _is(_workflow_stage(api, episode_id), "awaiting_evaluation"))
    positive = {"answers": {**NEGATIVE["answers"], "unexplained_weight_loss": True}}
    assert (await api("assessment", "PUT", f"{evaluation}/red-flags",
                      json=positive)).status_code == 200
    referred = await api("assessment", "POST", f"{evaluation}/refer-out")
    assert referred.status_code == 200, referred.text

    [event] = await wait_for(lambda: published("kinetic.plan.episode.discharged.v1"))
    assert event["data"]["ended_before_plan"] == "referred_out"
    assert (event["data"]["plan_id"], event["data"]["basis"], event["data"]["discharged_by"]) == (
        None, None, None)
    await wait_for(lambda: _ended(api, episode_id))
    caseload = (await api("plan", "GET", f"/episodes/{episode_id}")).json()
    assert caseload["plan_status"] == "discharged"
    assert (await api("plan", "GET", f"/episodes/{episode_id}/plan")).status_code == 404


async def _is(probe, expected) -> bool:
    return await probe == expected


async def test_an_episode_with_a_draft_plan_is_closed_by_the_clinician_when_the_patient_withdraws(
        api, episode, published, wait_for):
    episode_id = episode["episode_id"]
    base = f"/episodes/{episode_id}"
    plan = await evaluated_plan(api, episode, wait_for)
    assert plan["status"] == "draft"
    await wait_for(lambda: _is(_workflow_stage(api, episode_id), "awaiting_plan"))

    refused = await api("plan", "POST", f"{base}/discharge", json={"override": {
        "reason_code": "patient_withdrew", "free_text": "Moved abroad for work"}})
    assert refused.status_code == 409 and "close the episode" in refused.json()["detail"]
    wordless = await api("plan", "POST", f"{base}/close", json={"reason": "patient_withdrew"})
    assert wordless.status_code == 422, wordless.text

    closed = await api("plan", "POST", f"{base}/close", json={
        "reason": "patient_withdrew", "free_text": "Moved abroad for work"})
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["status"], body["plan_id"], body["closure"]["reason"],
            body["closure"]["free_text"]) == ("discharged", plan["plan_id"], "patient_withdrew",
                                              "Moved abroad for work")
    again = await api("plan", "POST", f"{base}/close", json={
        "reason": "patient_withdrew", "free_text": "Moved abroad for work"})
    assert again.status_code == 200 and again.json()["closure"] == body["closure"]
    other = await api("plan", "POST", f"{base}/close", json={
        "reason": "nothing_to_treat", "free_text": "On second thoughts"})
    assert other.status_code == 409, other.text

    [event] = await wait_for(lambda: published("kinetic.plan.episode.discharged.v1"))
    assert (event["data"]["ended_before_plan"], event["data"]["plan_id"]) == (
        "patient_withdrew", plan["plan_id"])
    assert event["data"]["discharged_by"] and event["data"]["basis"] is None
    assert "Moved abroad" not in str(event["data"])
    await wait_for(lambda: _ended(api, episode_id))
    after = (await api("plan", "GET", f"{base}/plan")).json()
    assert (after["status"], after["closure"]["reason"]) == ("discharged", "patient_withdrew")


async def test_an_episode_whose_evaluation_measured_nothing_to_track_is_closed_as_nothing_to_treat(
        platform, api, tenant, episode, published, wait_for):
    """Only TSK and GROC measured: plan drafts nothing, and the clinician closes the episode."""
    from kinetic_contracts.assessment.v1.events import EvaluationCompleted, Goal, MeasureScore

    episode_id = episode["episode_id"]
    await wait_for(lambda: _is(_workflow_stage(api, episode_id), "awaiting_evaluation"))
    await publish(platform, tenant, "assessment", EvaluationCompleted(
        evaluation_id=uuid.uuid4(), episode_id=episode_id, patient_id=episode["patient_id"],
        location_id=episode["location_id"], symptom_sites=["knee_anterior_right"],
        drivers=[{"code": "hip_abductor_weakness"}], episode_type="acute_clear_driver",
        goals=[Goal(activity="running", level="45 min")],
        baseline_measures=[MeasureScore(measure="tsk17", version="1", scores={"tsk17": 31}),
                           MeasureScore(measure="groc", version="1", scores={"groc": 2})],
        findings=[], completed_at=datetime.now(UTC)))
    await wait_for(lambda: _is(_workflow_stage(api, episode_id), "awaiting_plan"))
    assert (await api("plan", "GET", f"/episodes/{episode_id}/plan")).status_code == 404

    closed = await api("plan", "POST", f"/episodes/{episode_id}/close", json={
        "reason": "nothing_to_treat", "free_text": "No impairment to treat; advice given"})
    assert closed.status_code == 200, closed.text
    assert (closed.json()["plan_id"], closed.json()["closure"]["reason"]) == (
        None, "nothing_to_treat")
    [event] = await wait_for(lambda: published("kinetic.plan.episode.discharged.v1"))
    assert (event["data"]["ended_before_plan"], event["data"]["plan_id"]) == (
        "nothing_to_treat", None)
    await wait_for(lambda: _ended(api, episode_id))


async def test_the_episode_page_closes_an_episode_whose_plan_is_a_draft(
        api, urls, session_of, tenant, episode, wait_for):
    episode_id = episode["episode_id"]
    await evaluated_plan(api, episode, wait_for)
    async with httpx.AsyncClient(base_url=urls["plan"], cookies=session_of(tenant)) as page:
        before = await page.get(f"/admin/caseload/{episode_id}")
        assert before.status_code == 200 and "Close the episode" in before.text
        sent = await page.post(f"/admin/caseload/{episode_id}/close", data={
            "form": "close", "reason": "nothing_to_treat",
            "free_text": "Symptoms settled before treatment began"})
        assert sent.status_code == 303 and "Episode+closed" in sent.headers["location"], (
            sent.status_code, sent.text[:500])
        after = await page.get(f"/admin/caseload/{episode_id}")
    assert "before the plan was active — nothing to treat" in after.text
    assert "Close the episode" not in after.text
    plan = (await api("plan", "GET", f"/episodes/{episode_id}/plan")).json()
    assert (plan["status"], plan["closure"]["reason"]) == ("discharged", "nothing_to_treat")
