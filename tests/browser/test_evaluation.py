"""The therapist's evaluation in a real browser: CLINICAL.md §5's runner, from the caseload
to the printed explanation."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import expect

from kinetic_infra.auth.principal import Principal, Role

pytestmark = [pytest.mark.platform, pytest.mark.browser]


async def test_a_therapist_evaluates_the_runner_and_prints_the_explanation(
        signed_in, episode, tenant):
    tara = Principal("tara.therapist", "Tara Nguyen", tenant, location_roles={
        uuid.UUID(episode["location_id"]): frozenset({Role.THERAPIST})})
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
    await page.get_by_role("button", name="Save screening").click()  # every answer "no"
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
