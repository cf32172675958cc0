"""The therapist's caseload in a real browser: CLINICAL.md §5's runner, evaluated and planned
through the APIs, comes to the caseload with a completed session to log; the therapist logs
it and decides the progression §3.4 proposes."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from kinetic_contracts.booking.v1.events import AppointmentCompleted
from kinetic_infra.auth.principal import Principal, Role
from plan.domain.prescription import Prescription
from tests.e2e.test_evaluations import evaluate_the_runner, publish

pytestmark = [pytest.mark.platform, pytest.mark.browser]


def describe(p: dict) -> str:
    return Prescription.model_validate(p).describe()


async def test_every_set_done_at_rpe_6_pain_2_and_settled_next_morning_proposes_progress(
        signed_in, platform, api, tenant, episode, wait_for):
    """§3.4 progress row: every prescribed set done at target reps at the prescribed load,
    RPE ≤ 7, pain during ≤ 3/10 and settled by the next morning → progress; accepting the
    proposal makes its parameters the plan's next revision."""
    episode_id = episode["episode_id"]
    evaluation = await api("assessment", "POST", "/evaluations", json={"episode_id": episode_id})
    assert evaluation.status_code == 201, evaluation.text
    assert (await evaluate_the_runner(api, evaluation.json()["id"]))["status"] == "completed"

    async def drafted():
        found = await api("plan", "GET", f"/episodes/{episode_id}/plan")
        return found.json() if found.status_code == 200 else None

    plan = await wait_for(drafted, timeout=90)
    assert plan["status"] == "draft" and plan["content"]["prescriptions"], plan
    tara = Principal("tara.therapist", "Tara Nguyen", tenant, location_roles={
        uuid.UUID(episode["location_id"]): frozenset({Role.THERAPIST})})
    page = await signed_in("plan", tara)

    # The draft is reviewed first: its editor saves as you go, and what the API refuses
    # stays in the field with the API's reason beside it.
    await page.goto("/admin/caseload")
    await expect(page.locator(f'tr[data-episode="{episode_id}"] .due')).to_contain_text(
        "Plan drafted")
    await page.get_by_role("link", name="Open").click()
    editor = page.locator("#prescriptions")
    first = plan["content"]["prescriptions"][0]["exercise"]
    tempo = editor.locator(f'tr[data-exercise="{first}"]').get_by_role(
        "textbox", name=re.compile("tempo$"))
    await tempo.fill("slow")
    await tempo.press("Tab")
    await expect(page.locator("#status")).to_contain_text(
        "Not saved: The prescription is not valid: tempo")
    await expect(tempo).to_have_value("slow")
    await tempo.fill("3-1-3")
    await tempo.press("Tab")
    await expect(page.locator("#status")).to_have_text("Draft saved.")
    await expect(page.locator("#autosave")).to_have_text("— saved")
    await page.reload()
    await expect(tempo).to_have_value("3-1-3")
    plan = await drafted()
    prescribed = {p["exercise"]: p for p in plan["content"]["prescriptions"]}
    assert prescribed[first]["tempo"] == "3-1-3"

    # Booking completes a treatment session of the episode.
    appointment_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    await publish(platform, tenant, "booking", AppointmentCompleted(
        appointment_id=appointment_id, patient_id=episode["patient_id"],
        therapist_id=uuid.uuid4(), location_id=episode["location_id"], episode_id=episode_id,
        appointment_type="treatment_session", starts_at=now - timedelta(hours=1), at=now))

    async def listed():
        found = await api("plan", "GET", f"/episodes/{episode_id}/sessions")
        return found.status_code == 200 and [
            s for s in found.json() if s["appointment_id"] == appointment_id]

    [session] = await wait_for(listed, timeout=60)
    assert session["logged"] is False
    activated = await api("plan", "POST", f"/episodes/{episode_id}/plan/activate")
    assert activated.status_code == 200, activated.text

    await page.goto("/admin/caseload")
    row = page.locator(f'tr[data-episode="{episode_id}"]')
    await expect(row.locator(".due")).to_contain_text(
        f"Session {session['session_number']} to log")
    await page.keyboard.press("d")  # the first due item, from the keyboard
    await expect(page.locator("#first-due")).to_be_focused()
    await page.keyboard.press("Enter")

    log = page.locator(f"#log-{appointment_id}")
    await expect(log.get_by_role("heading")).to_contain_text("Log session 1")
    codes = list(prescribed)
    for code, p in prescribed.items():  # prefilled as prescribed: every set done
        exercise = log.locator(f'tr[data-exercise="{code}"]')
        await expect(exercise.get_by_role("textbox", name=re.compile("per set$"))).to_have_value(
            ", ".join([str(p["reps"])] * p["sets"]))
        await exercise.get_by_role("spinbutton", name=re.compile("RPE$")).fill("6")
        if code != codes[-1]:  # the last one's pain is forgotten at first
            await exercise.get_by_role("spinbutton", name=re.compile("pain during$")).fill("2")
    await log.get_by_label("Quick NPRS").fill("2")
    await log.get_by_role("group", name="Settled by the next morning").get_by_label(
        "yes").check()
    await log.get_by_label("What was done").fill("Hip abduction work as prescribed")
    await log.get_by_role("button", name="Log session 1").click()

    # Refused by the API: its problem shows, and nothing typed is lost.
    await expect(page.locator("#status")).to_contain_text(
        f"Not done: Request validation error: {codes[-1]}.pain_during")
    assert not [s for s in (await drafted())["sessions"] if s["appointment_id"] == appointment_id]
    await expect(log.get_by_label("What was done")).to_have_value(
        "Hip abduction work as prescribed")
    await expect(log.get_by_role("group", name="Settled by the next morning").get_by_label(
        "yes")).to_be_checked()
    first = log.locator(f'tr[data-exercise="{codes[0]}"]')
    await expect(first.get_by_role("spinbutton", name=re.compile("RPE$"))).to_have_value("6")
    await log.locator(f'tr[data-exercise="{codes[-1]}"]').get_by_role(
        "spinbutton", name=re.compile("pain during$")).fill("2")
    await log.get_by_role("button", name="Log session 1").click()

    await expect(page.locator("#status")).to_contain_text("Session 1 logged. Proposed:")
    logged = (await drafted())["sessions"]
    [proposals] = [s["proposals"] for s in logged if s["appointment_id"] == appointment_id]
    assert {x["action"] for x in proposals} == {"progress"}, proposals
    proposed = {x["next"]["exercise"]: x["next"] for x in proposals}
    assert any(n["reps"] > prescribed[code]["reps"] or n["load_kg"] > prescribed[code]["load_kg"]
               for code, n in proposed.items()), "some exercise moves up"
    shown = page.locator(f"#session-{appointment_id}")
    for code, nxt in proposed.items():
        proposal = shown.locator(f'tr[data-exercise="{code}"]')
        await expect(proposal.locator(".action")).to_have_text("progress")
        await expect(proposal.locator(".next")).to_have_text(describe(nxt))
        await expect(proposal.locator(".reason")).to_contain_text("RPE 6 ≤ 7")

    await shown.get_by_role("button", name="Accept").click()
    await expect(page.locator("#status")).to_have_text(
        "Revision 2: the new parameters are the plan.")
    await expect(page.locator("#revision")).to_have_text("2")
    for code, nxt in proposed.items():
        await expect(page.locator(f'#prescriptions tr[data-exercise="{code}"] .now')
                     ).to_have_text(describe(nxt))
    await expect(page.locator(f"#session-{appointment_id}")).to_have_attribute(
        "data-decided", "yes")
    await expect(page.locator("#timeline")).to_contain_text("proposals accepted")

