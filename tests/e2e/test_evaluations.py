"""The therapist's evaluation over HTTP and on the wire: a booked initial assessment opens
one draft (even when the booking is delivered twice, or many tabs ask at once), the runner of
CLINICAL.md §5 is evaluated and completed, its events reach the broker, an episode type the
recorded criteria contradict is refused, a completed evaluation only takes addenda (each
once, however often it is sent), and a reassessment reports change against the baseline.
A reassessment booked at intake gets its draft once the baseline exists, the caseload shows
where each episode's evaluation stands, and completion and refer-out honour If-Match."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import nats
import pytest

from kinetic_contracts import CloudEvent, nats_subject
from kinetic_contracts.booking.v1.events import AppointmentBooked
from kinetic_infra.auth.principal import Principal, Role

pytestmark = pytest.mark.platform

NEGATIVE = {"answers": {q: False for q in (
    "unexplained_weight_loss", "night_pain_unrelenting", "fever_or_systemically_unwell",
    "history_of_cancer", "saddle_anaesthesia", "bladder_or_bowel_change",
    "progressive_neurological_deficit", "major_trauma")}}
LEFS_52 = {f"lefs_{n:02d}": 2 if n <= 8 else 3 for n in range(1, 21)}
FINDINGS = {
    "strength": [{"muscle_group": "hip_abduction", "unit": "kgf", "involved_side": "right",
                  "trials_right": [13.6, 14.2, 13.9], "trials_left": [17.5, 18.0, 17.8]}],
    "movement": [{"kind": "single_leg_squat",
                  "right": {"overall": "poor", "trunk": "fair", "pelvis": "poor", "hip": "poor",
                            "knee": "poor"},
                  "left": {"overall": "good", "trunk": "good", "pelvis": "good", "hip": "good",
                           "knee": "good"}}],
    "y_balance": [{"anterior_cm": {"right": 58, "left": 63}}],
}
REASONING = {
    "symptom_sites": ["knee_anterior_right"], "episode_type": "acute_clear_driver",
    "working_diagnosis": "Patellofemoral pain", "working_diagnosis_icd10": "M22.2",
    "drivers": [{"code": "hip_abductor_weakness",
                 "rationale": "Hip abduction 21% weaker on the right; valgus on the SLS",
                 "finding_ids": ["strength:hip_abduction", "movement:sls"]}]}


async def deliver_booked_twice(platform, tenant: uuid.UUID, episode: dict[str, str]) -> str:
    appointment_id = uuid.uuid4()
    booked = AppointmentBooked(
        appointment_id=appointment_id, patient_id=episode["patient_id"],
        therapist_id=uuid.uuid4(), location_id=episode["location_id"],
        episode_id=episode["episode_id"], appointment_type="initial_assessment",
        starts_at=datetime.now(UTC) + timedelta(days=2),
        ends_at=datetime.now(UTC) + timedelta(days=2, hours=1), booked_at=datetime.now(UTC))
    envelope = CloudEvent(id=uuid.uuid4(), source="/kinetic/booking", type=booked.event_type,
                          subject=str(appointment_id), time=datetime.now(UTC),
                          data=booked.model_dump(mode="json"), tenantid=tenant, sequence=1)
    nc = await nats.connect(platform.nats.url)
    try:
        for attempt in range(2):
            await nc.jetstream().publish(
                nats_subject(tenant, envelope.type), envelope.model_dump_json().encode(),
                headers={"Nats-Msg-Id": f"{envelope.id}-{attempt}"})
    finally:
        await nc.close()
    return str(appointment_id)


async def drafts_of(api, episode_id: str) -> list[dict]:
    return (await api("assessment", "GET", f"/evaluations?episode_id={episode_id}")).json()


async def evaluate_the_runner(api, evaluation_id: str, reasoning: dict = REASONING) -> dict:
    """Every part of the §5 runner's evaluation, then completion: its answer (the evaluation,
    or the problem that refused it)."""
    await record_the_runner(api, evaluation_id, reasoning)
    return (await api("assessment", "POST", f"/evaluations/{evaluation_id}/complete")).json()


async def record_the_runner(api, evaluation_id: str, reasoning: dict = REASONING) -> dict:
    """Every part of the §5 runner's evaluation, not completed: the draft as saved last."""
    base = f"/evaluations/{evaluation_id}"
    for method, path, body in (
            ("PUT", "history", {"mechanism": "Weekly distance from 20 to 40 km in 3 weeks",
                                "aggravating": ["running over 3 km", "stairs down"]}),
            ("PUT", "red-flags", NEGATIVE),
            ("PUT", "goals", {"goals": [{"activity": "running",
                                         "level": "45 min at pre-injury pace, 3 times a week"}]}),
            ("POST", "measures", {"measure": "lefs", "answers": LEFS_52}),
            ("POST", "measures", {"measure": "psfs", "answers": {
                "psfs_01": 2, "psfs_02": 5, "psfs_03": 4}, "labels": {
                "psfs_01": "run 30 min", "psfs_02": "stairs down",
                "psfs_03": "squat to lift child"}}),
            ("PUT", "findings", FINDINGS),
            ("PUT", "reasoning", reasoning)):
        response = await api("assessment", method, f"{base}/{path}", json=body)
        assert response.status_code == 200, (path, response.text)
    draft = await api("assessment", "GET", f"{base}/explanation/draft")
    assert draft.status_code == 200, draft.text
    return (await api("assessment", "PUT", f"{base}/explanation", json=draft.json())).json()


async def test_a_booked_assessment_opens_one_draft_even_when_delivered_twice(
        platform, api, tenant, episode, wait_for):
    appointment_id = await deliver_booked_twice(platform, tenant, episode)
    [draft] = await wait_for(lambda: drafts_of(api, episode["episode_id"]))
    assert (draft["kind"], draft["status"], draft["appointment_id"]) == (
        "initial", "draft", appointment_id)
    opened = await api("assessment", "POST", "/evaluations",
                       json={"episode_id": episode["episode_id"]})
    assert opened.json()["id"] == draft["evaluation_id"], "the open draft, not a second one"
    assert len(await drafts_of(api, episode["episode_id"])) == 1


async def test_the_runner_is_evaluated_and_the_evaluation_published(
        api, episode, published, wait_for):
    created = await api("assessment", "POST", "/evaluations",
                        json={"episode_id": episode["episode_id"]})
    evaluation_id = created.json()["id"]
    done = await evaluate_the_runner(api, evaluation_id)
    assert done["status"] == "completed", done
    hip = next(i for i in done["findings"]["indices"]
               if i["finding_id"] == "strength:hip_abduction" and i["index"] == "lsi_pct")
    assert round(hip["value"]) == 79
    assert {m["measure"]: m["scores"]["lefs" if m["measure"] == "lefs" else "psfs"]
            for m in done["measures"]} == {"lefs": 52.0, "psfs": 3.7}
    assert done["explanation"].startswith("The front of your right knee is the place")

    [completed] = await wait_for(
        lambda: published("kinetic.assessment.evaluation.completed.v1"))
    data = completed["data"]
    assert data["symptom_sites"] == ["knee_anterior_right"]
    assert data["drivers"][0]["code"] == "hip_abductor_weakness"
    assert "explanation" not in data and "history" not in data  # clinical text stays home

    async def plan_moved_on():
        state = await api("plan", "GET", f"/episodes/{episode['episode_id']}/workflow")
        return state.status_code == 200 and state.json()["stage"] == "awaiting_plan"

    await wait_for(plan_moved_on)  # plan's EpisodeOfCareWorkflow heard of the evaluation
    drafted = await api("plan", "GET", f"/episodes/{episode['episode_id']}/plan")
    assert drafted.status_code == 200 and drafted.json()["status"] == "draft", drafted.text
    measured = await wait_for(lambda: published("kinetic.assessment.outcome.measured.v1"))
    assert sorted(m["data"]["measure"] for m in measured) == ["lefs", "psfs"]

    edit = await api("assessment", "PUT", f"/evaluations/{evaluation_id}/goals",
                     json={"goals": [{"activity": "x", "level": "y"}]})
    assert edit.status_code == 409 and edit.json()["type"] == "/problems/evaluation-closed"
    addendum = await api("assessment", "POST", f"/evaluations/{evaluation_id}/addenda",
                         json={"reason": "Corrected", "text": "Hip ER LSI was 84%"})
    assert addendum.status_code == 201 and addendum.json()["addenda"][0]["reason"] == "Corrected"
    [added] = await wait_for(
        lambda: published("kinetic.assessment.evaluation.addendum_added.v1"))
    assert "text" not in added["data"]

    page = await api("assessment", "GET", f"/evaluations/{evaluation_id}/explanation")
    assert page.status_code == 200 and "The front of your right knee" in page.text
    pdf = await api("assessment", "GET", f"/evaluations/{evaluation_id}/explanation.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")

    reassessment = await api("assessment", "POST", "/evaluations", json={
        "episode_id": episode["episode_id"], "kind": "reassessment"})
    assert reassessment.status_code == 201, reassessment.text
    base = f"/evaluations/{reassessment.json()['id']}"
    await api("assessment", "PUT", f"{base}/red-flags", json=NEGATIVE)
    await api("assessment", "POST", f"{base}/measures", json={
        "measure": "lefs", "answers": {**LEFS_52, "lefs_01": 4, "lefs_02": 4, "lefs_03": 4,
                                       "lefs_04": 4, "lefs_05": 3}})
    finished = await api("assessment", "POST", f"{base}/complete")
    assert finished.status_code == 200, finished.text
    [reassessed] = await wait_for(
        lambda: published("kinetic.assessment.reassessment.completed.v1"))
    [lefs] = reassessed["data"]["changes"]
    assert (lefs["baseline"], lefs["current"], lefs["passed_mcid"]) == (52.0, 61.0, True)


async def test_evaluate_clicked_in_many_tabs_at_once_opens_one_draft(api, episode):
    """Eight requests for the episode's draft at the same moment (tabs, a double click, a
    click racing the appointment.booked consumer): each gets the one draft, none a 500."""
    opened = await asyncio.gather(*(
        api("assessment", "POST", "/evaluations", json={"episode_id": episode["episode_id"]})
        for _ in range(8)))
    assert [r.status_code for r in opened] == [201] * 8, [r.text for r in opened]
    assert len({r.json()["id"] for r in opened}) == 1
    [draft] = await drafts_of(api, episode["episode_id"])
    assert draft["evaluation_id"] == opened[0].json()["id"]


async def test_an_episode_type_the_recorded_criteria_contradict_is_refused_at_completion(
        api, episode, published, wait_for):
    """CLINICAL.md §3.1: two drivers make the episode chronic_multifactor; typed
    acute_clear_driver, plan would draft 8 sessions instead of up to 20."""
    evaluation_id = (await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})).json()["id"]
    load_spike = {"code": "load_spike", "rationale": "Weekly distance doubled in 3 weeks",
                  "finding_ids": []}
    two_drivers = {**REASONING, "drivers": [*REASONING["drivers"], load_spike]}
    refused = await evaluate_the_runner(api, evaluation_id, two_drivers)
    assert refused["status"] == 422, refused
    assert refused["type"] == "/problems/episode-type-contradicts-criteria"
    assert (refused["recorded"], refused["derived"], refused["because"]) == (
        "acute_clear_driver", "chronic_multifactor", ["2 drivers"])
    after = await api("assessment", "GET", f"/evaluations/{evaluation_id}")
    assert after.json()["status"] == "draft", "refused: nothing completed"

    corrected = await api("assessment", "PUT", f"/evaluations/{evaluation_id}/reasoning",
                          json={**two_drivers, "episode_type": "chronic_multifactor"})
    assert corrected.status_code == 200, corrected.text
    done = await api("assessment", "POST", f"/evaluations/{evaluation_id}/complete")
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    [completed] = await wait_for(
        lambda: published("kinetic.assessment.evaluation.completed.v1"))
    assert completed["data"]["episode_type"] == "chronic_multifactor"

    async def drafted():
        got = await api("plan", "GET", f"/episodes/{episode['episode_id']}/plan")
        return got.json() if got.status_code == 200 else None

    plan = await wait_for(drafted)
    assert plan["content"]["expected_sessions"] == 20  # the chronic course, not 8


async def test_an_addendum_sent_again_with_its_key_is_added_and_disclosed_once(
        api, episode, published, wait_for):
    evaluation_id = (await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})).json()["id"]
    done = await evaluate_the_runner(api, evaluation_id)
    assert done["status"] == "completed", done
    path = f"/evaluations/{evaluation_id}/addenda"
    body = {"reason": "Corrected hip ER value", "text": "Hip ER was 9.0 kgf"}
    headers = {"Idempotency-Key": str(uuid.uuid4()), "If-Match": str(done["version"])}
    # A double submit, then a retry after a timeout: all name the version first read.
    sent = [*await asyncio.gather(*(api("assessment", "POST", path, json=body, headers=headers)
                                    for _ in range(2))),
            await api("assessment", "POST", path, json=body, headers=headers)]
    assert [r.status_code for r in sent] == [201] * 3, [r.text for r in sent]
    assert {tuple(a["addendum_id"] for a in r.json()["addenda"]) for r in sent} == {
        (sent[0].json()["addenda"][0]["addendum_id"],)}, "one addendum, the same every time"

    stale = await api("assessment", "POST", path, json=body, headers={
        "Idempotency-Key": str(uuid.uuid4()), "If-Match": str(done["version"])})
    assert stale.status_code == 409, stale.text
    assert stale.json()["type"] == "/problems/evaluation-changed"
    after = await api("assessment", "GET", f"/evaluations/{evaluation_id}")
    assert len(after.json()["addenda"]) == 1, "the stale one changed nothing"

    await wait_for(lambda: published("kinetic.assessment.evaluation.addendum_text_recorded.v1"))
    await asyncio.sleep(1)  # a second copy would be relayed by now
    for event_type in ("addendum_added", "addendum_text_recorded"):
        on_wire = await published(f"kinetic.assessment.evaluation.{event_type}.v1")
        assert len(on_wire) == 1, (event_type, on_wire)


async def test_the_addendum_form_sent_twice_adds_one_addendum(api, urls, session_of, tenant,
                                                              episode):
    evaluation_id = (await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})).json()["id"]
    assert (await evaluate_the_runner(api, evaluation_id))["status"] == "completed"
    async with httpx.AsyncClient(base_url=urls["assessment"],
                                 cookies=session_of(tenant)) as client:
        page = await client.get(f"/admin/evaluations/{evaluation_id}")
        form = re.search(r'action="[^"]*/addenda">(.*?)</form>', page.text, re.S).group(1)
        fields = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form))
        assert set(fields) == {"version", "key"}, form
        for _ in range(2):  # a double click
            sent = await client.post(f"/admin/evaluations/{evaluation_id}/addenda",
                                     data={**fields, "reason": "Typo", "text": "Hip ER 9.0"})
            assert sent.status_code == 303 and "Addendum+added" in sent.headers["location"]
    after = await api("assessment", "GET", f"/evaluations/{evaluation_id}")
    assert [a["reason"] for a in after.json()["addenda"]] == ["Typo"]


async def test_bad_answers_are_refused_and_change_nothing(api, episode):
    evaluation_id = (await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})).json()["id"]
    for body, problem in (({"measure": "nprs", "answers": {"nprs_01": 11}},
                           "/problems/answer-out-of-range"),
                          ({"measure": "lefs", "answers": {"lefs_01": 2}},
                           "/problems/too-many-missing-items"),
                          ({"measure": "nope", "answers": {}}, "/problems/unknown-measure")):
        refused = await api("assessment", "POST", f"/evaluations/{evaluation_id}/measures",
                            json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == problem
    state = await api("assessment", "GET", f"/evaluations/{evaluation_id}")
    assert state.json()["measures"] == []


async def test_a_therapist_elsewhere_cannot_read_the_evaluation(api, tenant, episode):
    evaluation_id = (await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})).json()["id"]
    elsewhere = Principal("t2", "Therapist elsewhere", tenant,
                          location_roles={uuid.uuid4(): frozenset({Role.THERAPIST})})
    response = await api("assessment", "GET", f"/evaluations/{evaluation_id}",
                         as_staff=elsewhere)
    assert response.status_code == 404


async def test_plans_reassessment_due_opens_one_reassessment_draft(
        platform, api, tenant, episode, wait_for):
    from tests.e2e.test_booking_reactions import deliver_twice
    from kinetic_contracts.plan.v1.events import ReassessmentDue

    evaluation_id = (await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})).json()["id"]
    assert (await evaluate_the_runner(api, evaluation_id))["status"] == "completed"
    await deliver_twice(platform, tenant, ReassessmentDue(
        episode_id=uuid.UUID(episode["episode_id"]), patient_id=uuid.UUID(episode["patient_id"]),
        location_id=uuid.UUID(episode["location_id"]), reason="progress_stalled",
        due_by=datetime.now(UTC).date() + timedelta(days=7), raised_at=datetime.now(UTC)))

    async def reassessments():
        return [d for d in await drafts_of(api, episode["episode_id"])
                if d["kind"] == "reassessment"]

    [draft] = await wait_for(reassessments)
    assert (draft["status"], draft["baseline_evaluation_id"]) == ("draft", evaluation_id)
    await asyncio.sleep(1)
    assert len(await reassessments()) == 1


async def test_an_organizations_own_thresholds_judge_its_findings(api, episode):
    changed = await api("assessment", "PUT", "/ruleset", json={
        "findings": {"lsi_pass": 75, "ybal_ant_cm": 4, "heel_raise_min": 25}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    evaluation_id = (await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})).json()["id"]
    recorded = await api("assessment", "PUT", f"/evaluations/{evaluation_id}/findings",
                         json=FINDINGS)
    hip = next(i for i in recorded.json()["findings"]["indices"]
               if i["finding_id"] == "strength:hip_abduction" and i["index"] == "lsi_pct")
    assert hip["passed"] is True  # 78.9% clears this organization's 75%
    other = await api("assessment", "GET", "/ruleset", as_tenant=uuid.uuid4())
    assert other.json()["version"] == 1, "another organization keeps the defaults"


async def test_a_save_from_a_stale_tab_is_refused_not_lost(api, episode):
    evaluation_id = (await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})).json()["id"]
    path = f"/evaluations/{evaluation_id}/history"
    read = await api("assessment", "GET", f"/evaluations/{evaluation_id}")
    seen = str(read.json()["version"])
    first = await api("assessment", "PUT", path, json={"mechanism": "tab one"},
                      headers={"If-Match": seen})
    assert first.status_code == 200 and first.json()["version"] == int(seen) + 1
    second = await api("assessment", "PUT", path, json={"mechanism": "tab two"},
                       headers={"If-Match": seen})
    assert second.status_code == 409, second.text
    assert second.json()["type"] == "/problems/evaluation-changed"
    after = await api("assessment", "GET", f"/evaluations/{evaluation_id}")
    assert after.json()["history"]["mechanism"] == "tab one"


async def publish(platform, tenant: uuid.UUID, source: str, event) -> None:
    envelope = CloudEvent(id=uuid.uuid4(), source=f"/kinetic/{source}", type=event.event_type,
                          subject=str(event.aggregate_id()), time=datetime.now(UTC),
                          data=event.model_dump(mode="json"), tenantid=tenant, sequence=1)
    nc = await nats.connect(platform.nats.url)
    try:
        await nc.jetstream().publish(nats_subject(tenant, envelope.type),
                                     envelope.model_dump_json().encode(),
                                     headers={"Nats-Msg-Id": str(envelope.id)})
    finally:
        await nc.close()


async def an_evaluation_of_an_unopened_episode(platform, tenant: uuid.UUID
                                               ) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Assessment's evaluation.completed of an episode whose episode.opened plan has not heard
    yet: its episode, patient and location ids, for the late episode.opened."""
    from kinetic_contracts.assessment.v1.events import EvaluationCompleted, Goal

    episode_id, patient_id, location_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await publish(platform, tenant, "assessment", EvaluationCompleted(
        evaluation_id=uuid.uuid4(), episode_id=episode_id, patient_id=patient_id,
        location_id=location_id, symptom_sites=["knee_anterior_right"],
        drivers=[{"code": "hip_abductor_weakness"}], episode_type="acute_clear_driver",
        goals=[Goal(activity="running", level="45 min")], baseline_measures=[], findings=[],
        completed_at=datetime.now(UTC)))
    return episode_id, patient_id, location_id


async def test_an_evaluation_heard_before_the_episode_opened_leaves_one_workflow_evaluated(
        platform, api, tenant, wait_for):
    """Plan's two consumers race: the evaluation's signal starts the episode's workflow, which
    moves on to waiting for the plan; the late episode.opened must not start a second run."""
    from kinetic_contracts.booking.v1.events import EpisodeOpened

    episode_id, patient_id, location_id = await an_evaluation_of_an_unopened_episode(
        platform, tenant)
    from kinetic_infra.stack.temporal import NAMESPACE
    from kinetic_infra.temporal import connect_client
    from plan.application.workflows import AWAITING_PLAN, EpisodeOfCareWorkflow, workflow_id

    client = await connect_client(platform.temporal.address, NAMESPACE)
    handle = client.get_workflow_handle(workflow_id(episode_id))

    async def waiting_for_the_plan():
        try:
            return (await handle.query(EpisodeOfCareWorkflow.status)).stage == AWAITING_PLAN
        except Exception:  # not started yet
            return False

    await wait_for(waiting_for_the_plan)
    first_run = (await handle.describe()).run_id
    await publish(platform, tenant, "booking", EpisodeOpened(
        episode_id=episode_id, patient_id=patient_id, location_id=location_id,
        symptom_site="knee_anterior", opened_at=datetime.now(UTC)))

    async def open_heard():
        # The evaluation already put the episode on the caseload; booking's site shows the
        # open has been handled too.
        row = await api("plan", "GET", f"/episodes/{episode_id}")
        return row.status_code == 200 and row.json()["symptom_site"] == "knee_anterior"

    await wait_for(open_heard)
    assert (await api("plan", "GET", f"/episodes/{episode_id}")).json()["plan_status"] \
        == "evaluated"
    latest = await client.get_workflow_handle(workflow_id(episode_id)).describe()
    assert latest.run_id == first_run, "no second run was started"
    assert (await handle.query(EpisodeOfCareWorkflow.status)).stage == AWAITING_PLAN


# -- a reassessment booked before the baseline --------------------------------------------

async def booking_event(platform, tenant: uuid.UUID, event) -> None:
    """Booking's event on the wire, as booking's relay publishes it."""
    await publish(platform, tenant, "booking", event)


def booked(episode: dict[str, str], appointment_type: str, therapist_id: uuid.UUID,
           in_days: int) -> AppointmentBooked:
    starts = datetime.now(UTC) + timedelta(days=in_days)
    return AppointmentBooked(
        appointment_id=uuid.uuid4(), patient_id=episode["patient_id"], therapist_id=therapist_id,
        location_id=episode["location_id"], episode_id=episode["episode_id"],
        appointment_type=appointment_type, starts_at=starts, ends_at=starts + timedelta(hours=1),
        booked_at=datetime.now(UTC))


async def reassessment_drafts(api, episode_id: str) -> list[dict]:
    return [d for d in await drafts_of(api, episode_id) if d["kind"] == "reassessment"]


async def evaluation_status(api, episode_id: str) -> str:
    return (await api("assessment", "GET", f"/episodes/{episode_id}")).json()["evaluation_status"]


async def the_initial_draft(platform, api, tenant, episode, wait_for) -> dict:
    """Book the initial assessment after what was delivered before it: booking's events reach
    the intake consumer in order, so once its draft is open those were handled too."""
    await booking_event(platform, tenant, booked(episode, "initial_assessment", uuid.uuid4(), 2))
    [draft] = await wait_for(lambda: drafts_of(api, episode["episode_id"]))
    assert draft["kind"] == "initial", draft
    return draft


async def test_a_reassessment_booked_at_intake_gets_its_draft_once_the_baseline_exists(
        platform, api, tenant, episode, wait_for):
    """The front desk books the week-4 reassessment with the assessment, before any initial
    evaluation is complete: no draft yet (nothing to measure against), but not lost either:
    completing the initial evaluation opens it, for that appointment and its therapist."""
    therapist = uuid.uuid4()
    week_4 = booked(episode, "reassessment", therapist, 28)
    await booking_event(platform, tenant, week_4)
    initial = await the_initial_draft(platform, api, tenant, episode, wait_for)
    assert await reassessment_drafts(api, episode["episode_id"]) == []

    done = await evaluate_the_runner(api, initial["evaluation_id"])
    assert done["status"] == "completed", done
    [draft] = await reassessment_drafts(api, episode["episode_id"])  # in completion's commit
    assert (draft["status"], draft["appointment_id"], draft["therapist_id"],
            draft["baseline_evaluation_id"]) == (
        "draft", str(week_4.appointment_id), str(therapist), initial["evaluation_id"])
    assert await evaluation_status(api, episode["episode_id"]) == "reassessment_in_progress"

    await booking_event(platform, tenant, week_4)  # heard again: the same draft
    await asyncio.sleep(1)
    assert [d["evaluation_id"] for d in await reassessment_drafts(
        api, episode["episode_id"])] == [draft["evaluation_id"]]
    opened = await api("assessment", "POST", "/evaluations", json={
        "episode_id": episode["episode_id"], "kind": "reassessment"})
    assert opened.json()["id"] == draft["evaluation_id"], "one open reassessment draft"


async def test_a_reassessment_waiting_for_its_baseline_follows_its_cancellation_and_move(
        platform, api, tenant, episode, wait_for):
    """Until the baseline exists, a cancelled reassessment opens nothing and a moved one is
    drafted for the therapist it was moved to."""
    from kinetic_contracts.booking.v1.events import AppointmentCancelled, AppointmentRescheduled

    week_3, week_4 = (booked(episode, "reassessment", uuid.uuid4(), 21),
                      booked(episode, "reassessment", uuid.uuid4(), 28))
    for event in (week_3, week_4):
        await booking_event(platform, tenant, event)
    who = dict(patient_id=week_3.patient_id, location_id=week_3.location_id)
    await booking_event(platform, tenant, AppointmentCancelled(
        appointment_id=week_3.appointment_id, therapist_id=week_3.therapist_id, **who,
        starts_at=week_3.starts_at, late=False, cancelled_at=datetime.now(UTC)))
    cover = uuid.uuid4()
    await booking_event(platform, tenant, AppointmentRescheduled(
        appointment_id=week_4.appointment_id, therapist_id=cover, **who,
        episode_id=week_4.episode_id, appointment_type="reassessment",
        previous_therapist_id=week_4.therapist_id, previous_starts_at=week_4.starts_at,
        starts_at=week_4.starts_at + timedelta(days=1), ends_at=week_4.ends_at + timedelta(days=1),
        rescheduled_at=datetime.now(UTC)))
    initial = await the_initial_draft(platform, api, tenant, episode, wait_for)

    assert (await evaluate_the_runner(api, initial["evaluation_id"]))["status"] == "completed"
    [draft] = await reassessment_drafts(api, episode["episode_id"])
    assert (draft["appointment_id"], draft["therapist_id"]) == (
        str(week_4.appointment_id), str(cover))


# -- where each episode's evaluation stands ---------------------------------------------------

async def another_episode(api, front_desk, wait_for) -> dict[str, str]:
    opened = await api("booking", "POST", "/episodes", json={
        "patient_id": front_desk["patient_id"], "location_id": front_desk["location_id"],
        "reason": "Low back pain lifting", "symptom_site": "lumbar"})
    assert opened.status_code == 201, opened.text
    episode_id = opened.json()["id"]

    async def known() -> bool:
        return (await api("assessment", "GET", f"/episodes/{episode_id}")).status_code == 200

    await wait_for(known)
    return {**front_desk, "episode_id": episode_id}


POSITIVE = {"answers": {**NEGATIVE["answers"], "night_pain_unrelenting": True}}


async def test_the_caseload_shows_where_each_episodes_evaluation_stands(
        api, front_desk, episode, wait_for):
    evaluated, referred = episode["episode_id"], (
        await another_episode(api, front_desk, wait_for))["episode_id"]
    assert await evaluation_status(api, evaluated) == "awaiting_initial_evaluation"
    first = (await api("assessment", "POST", "/evaluations",
                       json={"episode_id": evaluated})).json()["id"]
    assert await evaluation_status(api, evaluated) == "initial_evaluation_in_progress"
    assert (await evaluate_the_runner(api, first))["status"] == "completed"
    assert await evaluation_status(api, evaluated) == "evaluated"

    second = (await api("assessment", "POST", "/evaluations",
                        json={"episode_id": referred})).json()["id"]
    await api("assessment", "PUT", f"/evaluations/{second}/red-flags", json=POSITIVE)
    out = await api("assessment", "POST", f"/evaluations/{second}/refer-out")
    assert out.status_code == 200, out.text
    caseload = {e["episode_id"]: e["evaluation_status"]
                for e in (await api("assessment", "GET", "/episodes")).json()}
    assert caseload == {evaluated: "evaluated", referred: "referred_out"}


# -- closing from a stale tab, and closing twice ---------------------------------------------

async def test_completion_names_the_version_it_saw_and_a_repeat_answers_as_the_first(
        api, episode, published, wait_for):
    evaluation_id = (await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})).json()["id"]
    seen = (await record_the_runner(api, evaluation_id))["version"]
    path = f"/evaluations/{evaluation_id}"
    other_tab = await api("assessment", "PUT", f"{path}/explanation", json={
        "text": "Edited in another tab"}, headers={"If-Match": str(seen)})
    assert other_tab.status_code == 200, other_tab.text

    stale = await api("assessment", "POST", f"{path}/complete", headers={"If-Match": str(seen)})
    assert stale.status_code == 409, stale.text
    assert stale.json()["type"] == "/problems/evaluation-changed"
    assert (await api("assessment", "GET", path)).json()["status"] == "draft"

    current = str(other_tab.json()["version"])
    done = await api("assessment", "POST", f"{path}/complete", headers={"If-Match": current})
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    again = await api("assessment", "POST", f"{path}/complete", headers={"If-Match": current})
    assert again.status_code == 200, again.text
    assert again.json() == done.json(), "the completed evaluation, nothing more"
    assert (await api("assessment", "POST", f"{path}/complete")).status_code == 200

    closed = await api("assessment", "POST", f"{path}/refer-out",
                       headers={"If-Match": str(done.json()["version"])})
    assert closed.status_code == 409 and closed.json()["type"] == "/problems/evaluation-closed"
    await wait_for(lambda: published("kinetic.assessment.evaluation.completed.v1"))
    await asyncio.sleep(1)  # a second copy would be relayed by now
    assert len(await published("kinetic.assessment.evaluation.completed.v1")) == 1


async def test_refer_out_names_the_version_it_saw_and_is_not_then_completed(
        api, episode, published, wait_for):
    evaluation_id = (await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})).json()["id"]
    path = f"/evaluations/{evaluation_id}"
    screened = await api("assessment", "PUT", f"{path}/red-flags", json=POSITIVE)
    seen = str(screened.json()["version"])
    other_tab = await api("assessment", "PUT", f"{path}/goals", json={"goals": [
        {"activity": "sleep", "level": "through the night"}]}, headers={"If-Match": seen})
    assert other_tab.status_code == 200, other_tab.text

    stale = await api("assessment", "POST", f"{path}/refer-out", headers={"If-Match": seen})
    assert stale.status_code == 409, stale.text
    assert stale.json()["type"] == "/problems/evaluation-changed"
    assert (await api("assessment", "GET", path)).json()["status"] == "draft"

    current = str(other_tab.json()["version"])
    out = await api("assessment", "POST", f"{path}/refer-out", headers={"If-Match": current})
    assert out.status_code == 200 and out.json()["status"] == "referred_out", out.text
    again = await api("assessment", "POST", f"{path}/refer-out", headers={"If-Match": current})
    assert again.status_code == 200 and again.json() == out.json()
    completed = await api("assessment", "POST", f"{path}/complete")
    assert completed.status_code == 409, completed.text
    assert completed.json()["type"] == "/problems/evaluation-closed"
    await wait_for(lambda: published("kinetic.assessment.evaluation.referred_out.v1"))
    await asyncio.sleep(1)
    assert len(await published("kinetic.assessment.evaluation.referred_out.v1")) == 1
