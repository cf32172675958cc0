"""The front desk's day in a real browser: register a patient, book an initial assessment
from the day view, cancel it, and see the freed hour offered to the waitlist."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from kinetic_infra.auth.principal import Principal, Role

pytestmark = [pytest.mark.platform, pytest.mark.browser]

WEEKDAYS_8_TO_18 = {d: [{"opens": "08:00", "closes": "18:00"}]
                    for d in ("mon", "tue", "wed", "thu", "fri")}


def next_monday() -> str:
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    return (today + timedelta(days=7 - today.weekday() + 7)).isoformat()


@pytest.fixture
async def clinic(api, tenant) -> dict[str, str]:
    location = (await api("booking", "POST", "/locations", json={
        "name": "Mitte", "timezone": "Europe/Berlin",
        "opening_hours": WEEKDAYS_8_TO_18})).json()["id"]
    therapist = (await api("booking", "POST", "/therapists", json={
        "location_ids": [location], "display_name": "Tara Nguyen"})).json()["id"]
    waiting = (await api("booking", "POST", "/patients", json={
        "given_name": "Wanda", "family_name": "Early", "date_of_birth": "1975-06-01",
        "home_location_id": location})).json()["id"]
    entry = await api("booking", "POST", "/waitlist",
                      json={"patient_id": waiting, "location_id": location})
    assert entry.status_code == 201, entry.text
    return {"location_id": location, "therapist_id": therapist}


def front_desk_of(tenant: uuid.UUID, location_id: str) -> Principal:
    return Principal("frank.frontdesk", "Frank Frontdesk", tenant,
                     location_roles={uuid.UUID(location_id): frozenset({Role.FRONT_DESK})})


async def test_the_front_desk_registers_books_cancels_and_the_waitlist_is_offered_the_hour(
        signed_in, clinic, tenant):
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    day = next_monday()
    await page.goto(f"/admin/front-desk?location_id={clinic['location_id']}&date={day}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Mitte")

    # Register a new patient (the "r" key opens the patients page).
    await page.keyboard.press("r")
    await page.get_by_label("Given name").fill("Mia")
    await page.get_by_label("Family name").fill("Novak")
    await page.get_by_label("Date of birth").fill("1991-09-14")
    await page.get_by_label("Phone", exact=True).fill("+49 30 1234567")
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_role("status")).to_contain_text("Registered Mia Novak.")

    # Book her initial assessment at 10:00 from the day view.
    await page.goto(f"/admin/front-desk?location_id={clinic['location_id']}&date={day}")
    await page.get_by_role("link", name="Book Tara Nguyen at 10:00").click()
    await page.get_by_label("Name, phone or e-mail").fill("Mia Novak")
    await page.keyboard.press("Enter")
    await page.get_by_role("link", name="Mia Novak").click()
    await page.get_by_label("Type").select_option("initial_assessment")
    await page.get_by_role("button", name="Book").click()
    await expect(page.get_by_role("status")).to_have_text("Booked.")
    cell = page.locator('td[data-therapist="Tara Nguyen"][data-hour="10:00"]')
    await expect(cell.locator(".appt")).to_contain_text("Mia Novak")
    await expect(cell.locator(".appt")).to_contain_text("initial assessment")
    await expect(cell.locator(".status")).to_have_text("booked")

    # Cancel it: more than a day ahead, so not late; the hour goes to the waitlist.
    await cell.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Cancelled. The freed hour was offered to the first patient on the waitlist.")
    await expect(cell.locator(".status")).to_have_text("cancelled")
    waitlist = page.locator("#waitlist")
    row = waitlist.get_by_role("row", name="Wanda Early")
    await expect(row.locator(".status")).to_contain_text("offered")
    await expect(row.get_by_role("link", name="Book it")).to_be_visible()


async def test_the_front_desk_moves_a_session_and_sees_it_in_the_week(
        signed_in, api, clinic, tenant):
    patient = (await api("booking", "POST", "/patients", json={
        "given_name": "Otto", "family_name": "Moved", "date_of_birth": "1968-03-03",
        "home_location_id": clinic["location_id"]})).json()["id"]
    day = next_monday()
    booked = await api("booking", "POST", "/appointments", json={
        "patient_id": patient, "therapist_id": clinic["therapist_id"],
        "location_id": clinic["location_id"], "appointment_type": "treatment_session",
        "starts_at": f"{day}T09:00:00+01:00"})
    assert booked.status_code == 201, booked.text
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    await page.goto(f"/admin/front-desk?location_id={clinic['location_id']}&date={day}")
    await page.locator('td[data-hour="09:00"]').get_by_role("link", name="Move").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Move Otto Moved")
    target = page.get_by_role("row").filter(has_text="14:00").first
    await target.get_by_role("button", name="Move here").click()
    await expect(page.get_by_role("status")).to_have_text("Moved")
    await expect(page.locator('td[data-hour="14:00"] .appt')).to_contain_text("Otto Moved")
    await expect(page.locator('td[data-hour="09:00"] .appt')).to_have_count(0)

    await page.keyboard.press("w")  # the week view
    await expect(page.get_by_role("heading", level=1)).to_contain_text("week of")
    await expect(page.locator("table.week")).to_contain_text("Tara Nguyen: Otto Moved")


async def test_the_front_desk_reverses_a_completion_recorded_in_error(
        signed_in, api, tenant):
    # Open every hour, so a session half an hour from now can be booked whenever this runs.
    location = (await api("booking", "POST", "/locations", json={
        "name": "Altona", "timezone": "Europe/Berlin"})).json()["id"]
    therapist = (await api("booking", "POST", "/therapists", json={
        "location_ids": [location], "display_name": "Rik Reyes"})).json()["id"]
    patient = (await api("booking", "POST", "/patients", json={
        "given_name": "Erin", "family_name": "Error", "date_of_birth": "1980-02-02",
        "home_location_id": location})).json()["id"]
    starts = (datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(minutes=30)).replace(
        second=0, microsecond=0)
    booked = await api("booking", "POST", "/appointments", json={
        "patient_id": patient, "therapist_id": therapist, "location_id": location,
        "appointment_type": "treatment_session", "starts_at": starts.isoformat()})
    assert booked.status_code == 201, booked.text
    appointment_id = booked.json()["id"]
    for step in ("check-in", "complete"):
        done = await api("booking", "POST", f"/appointments/{appointment_id}/{step}")
        assert done.status_code == 200, done.text

    page = await signed_in("booking", front_desk_of(tenant, location))
    await page.goto(f"/admin/front-desk?location_id={location}&date={starts.date()}")
    session = page.locator(f'td[data-hour="{starts:%H}:00"] .appt')
    await expect(session.locator(".status")).to_have_text("completed")
    await session.get_by_label("Why reverse").select_option("recorded_in_error")
    await session.get_by_role("button", name="Reverse").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Reversed: billing credits what it charged for it.")
    await expect(session.locator(".status")).to_have_text("reversed")
    # The hour is free again, and the API agrees.
    got = await api("booking", "GET", f"/appointments/{appointment_id}")
    assert got.json()["status"] == "reversed"


async def test_a_refused_registration_is_shown_as_a_warning(signed_in, clinic, tenant):
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    await page.goto(f"/admin/front-desk?location_id={clinic['location_id']}&date={next_monday()}")
    await page.keyboard.press("r")
    await page.get_by_label("Given name").fill("Yet")
    await page.get_by_label("Family name").fill("Unborn")
    await page.get_by_label("Date of birth").fill("2090-09-14")
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_role("status")).to_contain_text("Not registered")
    await expect(page.get_by_role("status")).to_have_class("flash warn")
