"""The therapist's evaluation in a real browser: CLINICAL.md §5's runner, from the caseload
to the printed explanation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.async_api import expect

from assessment.domain.history import RED_FLAGS
from kinetic_infra.auth.principal import Principal, Role

pytestmark = [pytest.mark.platform, pytest.mark.browser]


def therapist(episode: dict[str, str], tenant: uuid.UUID) -> Principal:
    return Principal("tara.therapist", "Tara Nguyen", tenant, location_roles={
        uuid.UUID(episode["location_id"]): frozenset({Role.THERAPIST})})


async def test_a_therapist_evaluates_the_runner_and_prints_the_explanation(
        signed_in, episode, tenant):
    tara = therapist(episode, tenant)
    page = await signed_in("assessment", tara)
    await page.goto("/admin/evaluations")
    await page.get_by_role("button", name="Evaluate").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Initial evaluation")

    # Saved as you go: leaving the field saves the history, no button pressed.
    await page.get_by_label("Onset and mechanism").fill(
        "Weekly distance from 20 to 40 km over 3 weeks")
    await page.keyboard.press("Tab")
    await expect(page.locator("#autosave")).to_have_text("— history saved")
    await page.reload()
    await expect(page.get_by_label("Onset and mechanism")).to_have_value(
        "Weekly distance from 20 to 40 km over 3 weeks")
    for question in RED_FLAGS.values():  # each asked and answered "no", saved as answered
        await page.get_by_role("row", name=question).get_by_label("no", exact=True).check()
    await expect(page.locator("#autosave")).to_have_text("— screening saved")
    await page.get_by_label("Return to").fill("running")
    await page.get_by_label("at level").fill("45 min at pre-injury pace, 3 times a week")
    await page.get_by_role("button", name="Save goal").click()

    for n in range(1, 21):  # LEFS 52/80: eight items at 2, twelve at 3
        await page.get_by_label(f"lefs_{n:02d}", exact=True).fill("2" if n <= 8 else "3")
    await expect(page.locator("#live-score")).to_have_text("lefs 52")  # scored as typed
    await page.get_by_role("button", name="Score Lower Extremity").click()
    await expect(page.locator("#results")).to_contain_text("52.0")
    chart = page.locator('#charts svg[data-score="lefs"]')
    await expect(chart.locator("circle.point")).to_have_count(1)
    await expect(chart.locator("rect.mcid-band")).to_have_count(1)

    for side, trials in (("right", ("13.6", "14.2", "13.9")), ("left", ("17.5", "18.0", "17.8"))):
        for n, value in enumerate(trials, 1):
            await page.get_by_label(f"hip abduction {side} {n}").fill(value)
    await page.get_by_label("Single-leg squat right").select_option("poor")
    await page.get_by_label("Single-leg squat left").select_option("good")
    await page.get_by_role("button", name="Save findings").click()
    hip = page.locator('tr[data-finding="strength:hip_abduction"][data-index="lsi_pct"]')
    await expect(hip.locator(".value")).to_have_text("79%")
    await expect(hip).to_contain_text("not met")

    await page.get_by_label("Symptom site").fill("knee_anterior_right")
    await page.get_by_label("Driver", exact=True).select_option("hip_abductor_weakness")
    await page.get_by_label("Rationale").fill("Hip abduction 21% weaker; valgus on the SLS")
    await page.get_by_label("strength:hip_abduction").check()
    await page.get_by_label("movement:sls").check()
    await page.get_by_role("button", name="Save reasoning").click()
    await expect(page.locator("#drivers")).to_contain_text("hip abductor weakness")
    explanation = page.get_by_label("Explanation")
    await expect(explanation).to_have_value(
        "The front of your right knee is the place that hurts, but it is not the cause. "
        "The muscles on the side of your hip are about 20% weaker. When you land on that leg, "
        "the knee drops inward and the kneecap takes extra load. We will settle the pain and "
        "strengthen what loads it, then build you back to what you want to do.")
    await page.get_by_role("button", name="Save explanation").click()
    await page.get_by_role("button", name="Complete evaluation").click()
    await expect(page.get_by_role("status")).to_have_text("Evaluation completed and published.")
    await expect(page.locator("#status")).to_have_text("completed")
    await expect(page.locator("#drivers")).to_contain_text("hip abductor weakness")

    async with page.expect_popup() as opened:
        await page.get_by_role("link", name="print the explanation").click()
    printed = await opened.value
    await expect(printed.locator("#explanation")).to_contain_text(
        "The front of your right knee is the place that hurts")
    await expect(printed.get_by_role("heading", name="What is driving it")).to_be_visible()


async def test_red_flag_questions_start_unanswered_and_one_answer_leaves_the_rest_unanswered(
        signed_in, episode, tenant, api):
    """An unanswered question is not a negative one: nothing is pre-checked, and saving one
    answer (as you go, or with the button) records that answer alone."""
    tara = therapist(episode, tenant)
    page = await signed_in("assessment", tara)
    await page.goto("/admin/evaluations")
    await page.get_by_role("button", name="Evaluate").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Initial evaluation")
    evaluation = f"/evaluations/{page.url.split('?')[0].rsplit('/', 1)[-1]}"
    screening = page.locator('form[action$="/red-flags"]')
    await expect(screening.get_by_role("radio")).to_have_count(2 * len(RED_FLAGS))
    await expect(screening.locator("input:checked")).to_have_count(0)

    cancer = page.get_by_role("row", name="History of cancer")
    await cancer.get_by_label("no", exact=True).check()
    await expect(page.locator("#autosave")).to_have_text("— screening saved")
    saved = (await api("assessment", "GET", evaluation, as_staff=tara)).json()
    assert saved["red_flags"]["answers"] == {"history_of_cancer": False}

    await page.reload()
    await expect(screening.locator("input:checked")).to_have_count(1)
    await expect(cancer.get_by_label("no", exact=True)).to_be_checked()
    await page.get_by_role("button", name="Save screening").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    saved = (await api("assessment", "GET", evaluation, as_staff=tara)).json()
    assert saved["red_flags"]["answers"] == {"history_of_cancer": False}
    await page.get_by_role("button", name="Complete evaluation").click()
    await expect(page.get_by_role("status")).to_contain_text("red-flag screening")


async def test_saving_a_form_keeps_the_saved_data_it_does_not_show_and_a_bad_number_is_refused(
        signed_in, episode, tenant, api):
    """Re-saving the history, goals, findings and reasoning forms keeps what was recorded
    through the API (previous treatment, every goal, hops and mobility, the episode type and
    the findings a driver cites); a measure answer that is no whole number is a warning."""
    tara = therapist(episode, tenant)
    opened = await api("assessment", "POST", "/evaluations", as_staff=tara,
                       json={"episode_id": episode["episode_id"], "kind": "initial"})
    assert opened.status_code == 201, opened.text
    evaluation = f"/evaluations/{opened.json()['id']}"
    squat = {side: dict.fromkeys(("overall", "trunk", "pelvis", "hip", "knee"), rating)
             for side, rating in (("right", "poor"), ("left", "good"))}
    for part, body in (
            ("history", {"mechanism": "Weekly distance from 20 to 40 km",
                         "previous_treatment": [{"treatment": "massage", "helped": False}]}),
            ("goals", {"goals": [{"activity": "running", "level": "10 km"},
                                 {"activity": "stairs", "level": "two flights, no pain"}]}),
            ("findings", {
                "strength": [{"muscle_group": "hip_abduction", "unit": "kgf",
                              "involved_side": "right", "trials_left": [17.5, 18.0],
                              "trials_right": [13.6, 14.2]}],
                "movement": [{"kind": "single_leg_squat", **squat},
                             {"kind": "movement_test", "test": "step_down_20cm",
                              "right": "poor", "left": "good"}],
                "hop_battery": [{"involved_side": "right",
                                 "single_hop_cm": {"left": 150, "right": 120}}],
                "mobility": [{"measure": "ankle_dorsiflexion", "unit": "cm",
                              "left": 12, "right": 8}]}),
            ("reasoning", {"symptom_sites": ["knee_anterior_right"],
                           "episode_type": "chronic_multifactor",
                           "drivers": [{"code": "hip_abductor_weakness",
                                        "rationale": "Hip abduction 21% weaker",
                                        "finding_ids": ["strength:hip_abduction",
                                                        "hop_battery"]}]})):
        recorded = await api("assessment", "PUT", f"{evaluation}/{part}", json=body,
                             as_staff=tara)
        assert recorded.status_code == 200, recorded.text

    async def saved() -> dict[str, Any]:
        return (await api("assessment", "GET", evaluation, as_staff=tara)).json()

    page = await signed_in("assessment", tara)
    await page.goto(f"/admin{evaluation}")
    await page.get_by_label("Onset and mechanism").fill("Weekly distance from 20 to 45 km")
    await page.keyboard.press("Tab")
    await expect(page.locator("#autosave")).to_have_text("— history saved")
    history = (await saved())["history"]
    assert history["mechanism"] == "Weekly distance from 20 to 45 km"
    assert history["previous_treatment"] == [{"treatment": "massage", "helped": False}]

    await page.get_by_label("at level").first.fill("12 km")  # the first goal edited
    await page.keyboard.press("Tab")
    await expect(page.locator("#autosave")).to_have_text("— goal saved")
    goals = (await saved())["goals"]
    assert [(g["activity"], g["level"]) for g in goals] == [
        ("running", "12 km"), ("stairs", "two flights, no pain")]
    await page.reload()
    await page.get_by_label("Return to").last.fill("jumping")  # and one added
    await page.get_by_label("at level").last.fill("10 box jumps")
    await page.keyboard.press("Tab")
    await expect(page.locator("#autosave")).to_have_text("— goal saved")
    assert [g["activity"] for g in (await saved())["goals"]] == ["running", "stairs", "jumping"]

    await page.reload()
    await expect(page.get_by_label("hip abduction left 2")).to_have_value("18.0")
    await page.get_by_label("hip abduction right 1").fill("14.5")
    await page.get_by_role("button", name="Save findings").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    await expect(page.get_by_label("Episode type")).to_have_value("chronic_multifactor")
    await page.get_by_role("button", name="Save reasoning").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")

    await page.goto(f"/admin{evaluation}?measure=nprs")
    await page.get_by_label("nprs_01", exact=True).fill("1e1")
    await page.get_by_role("button", name="Score Numeric Pain Rating Scale").click()
    warning = page.locator(".flash.warn")
    await expect(warning).to_contain_text("Not saved: nprs_01: '1e1' is not a whole number")

    saved_now = await saved()
    findings = saved_now["findings"]["recorded"]
    assert [f["finding_id"] for f in findings["hop_battery"] + findings["mobility"]] == [
        "hop_battery", "mobility:ankle_dorsiflexion"]
    assert {f["finding_id"] for f in findings["movement"]} == {
        "movement:sls", "movement:step_down_20cm"}
    assert findings["strength"][0]["trials_right"] == [14.5, 14.2]
    reasoning = saved_now["reasoning"]
    assert reasoning["episode_type"] == "chronic_multifactor"
    assert set(reasoning["drivers"][0]["finding_ids"]) == {"strength:hip_abduction",
                                                           "hop_battery"}
    assert reasoning["drivers"][0]["rationale"] == "Hip abduction 21% weaker"
    assert saved_now["measures"] == []


async def test_a_live_score_answered_late_never_replaces_the_latest_one(
        signed_in, episode, tenant):
    """Answers typed quickly send a scoring request each; on a busy network the first may be
    answered last. The score shown is the latest answers', not the late one's."""
    import asyncio

    page = await signed_in("assessment", therapist(episode, tenant))
    await page.goto("/admin/evaluations")
    await page.get_by_role("button", name="Evaluate").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Initial evaluation")

    released, held = asyncio.Event(), []

    async def hold_the_first(route) -> None:
        if not held:  # the first answer's request: answered after every other one
            held.append(route)
            await released.wait()
        await route.continue_()

    await page.route("**/measures/lefs/score", hold_the_first)
    for n in range(1, 21):
        await page.get_by_label(f"lefs_{n:02d}", exact=True).fill("2" if n <= 8 else "3")
    await expect(page.locator("#live-score")).to_have_text("lefs 52")
    released.set()
    await page.wait_for_timeout(500)  # the held request answered meanwhile
    await expect(page.locator("#live-score")).to_have_text("lefs 52")
