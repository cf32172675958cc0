"""The front desk's day in a real browser: register a patient, open an episode of care at
intake and book its initial assessment into it, book an under-booked plan from the "to book"
list, put a patient on the waitlist for one therapist before a time, cancel and see the freed
hour offered to the waitlist, check in a patient recorded as a no-show who came after all; a
refused form keeps what was typed, and a form sent twice creates one record."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from kinetic_contracts.plan.v1.events import PlanCreated
from kinetic_infra.auth.principal import Principal, Role
from tests.e2e.test_evaluations import publish

pytestmark = [pytest.mark.platform, pytest.mark.browser]

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_8_TO_18 = {d: [{"opens": "08:00", "closes": "18:00"}]
                    for d in ("mon", "tue", "wed", "thu", "fri")}


def next_monday() -> str:
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    return (today + timedelta(days=7 - today.weekday() + 7)).isoformat()


def a_weekday_soon() -> date:
    """A working day two to four days ahead: open at Mitte, and inside the 14 days the "to
    book" list looks at."""
    day = datetime.now(BERLIN).date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def shown(at: datetime) -> str:
    """A time as the front desk's pages show it: in the location's timezone."""
    return at.astimezone(BERLIN).strftime("%a %d %b %H:%M")


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


async def register(api, clinic, given: str, family: str) -> str:
    created = await api("booking", "POST", "/patients", json={
        "given_name": given, "family_name": family, "date_of_birth": "1984-04-04",
        "home_location_id": clinic["location_id"]})
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def open_episode(api, clinic, patient_id: str) -> str:
    opened = await api("booking", "POST", "/episodes", json={
        "patient_id": patient_id, "location_id": clinic["location_id"],
        "reason": "Low back pain lifting", "symptom_site": "low_back"})
    assert opened.status_code == 201, opened.text
    return opened.json()["id"]


async def sessions_of(api, clinic, patient_id: str, day: date) -> list[dict]:
    start = datetime.combine(day, time(), tzinfo=BERLIN)
    listed = await api("booking", "GET", f"/appointments?location_id={clinic['location_id']}"
                       f"&start={start.isoformat()}&end={(start + timedelta(days=1)).isoformat()}"
                       .replace("+", "%2B"))
    assert listed.status_code == 200, listed.text
    return [a for a in listed.json() if a["patient_id"] == patient_id]


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
    await cell.get_by_role("button", name="Cancel", exact=True).click()
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


async def session_in(api, starts_in: timedelta, place: str, given: str, family: str
                     ) -> tuple[datetime, str, str, str]:
    """A treatment session ``starts_in`` from when it is booked, at a new location open every
    hour (so it can be booked whenever the test runs): its start, and the location's, the
    patient's and the appointment's ids."""
    location = (await api("booking", "POST", "/locations", json={
        "name": place, "timezone": "Europe/Berlin"})).json()["id"]
    therapist = (await api("booking", "POST", "/therapists", json={
        "location_ids": [location], "display_name": f"{given}'s therapist"})).json()["id"]
    patient = (await api("booking", "POST", "/patients", json={
        "given_name": given, "family_name": family, "date_of_birth": "1980-02-02",
        "home_location_id": location})).json()["id"]
    starts = (datetime.now(BERLIN) + starts_in).replace(microsecond=0)
    booked = await api("booking", "POST", "/appointments", json={
        "patient_id": patient, "therapist_id": therapist, "location_id": location,
        "appointment_type": "treatment_session", "starts_at": starts.isoformat()})
    assert booked.status_code == 201, booked.text
    return starts, location, patient, booked.json()["id"]


async def test_the_front_desk_reverses_a_completion_recorded_in_error(
        signed_in, api, tenant):
    starts, location, _, appointment_id = await session_in(
        api, timedelta(minutes=30), "Altona", "Erin", "Error")
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


async def test_a_patient_recorded_as_a_no_show_who_came_after_all_is_checked_in_from_the_day(
        signed_in, api, tenant):
    starts, location, patient, missed_id = await session_in(
        api, timedelta(seconds=2), "Eimsbüttel", "Tom", "Tardy")
    await asyncio.sleep((starts - datetime.now(BERLIN)).total_seconds() + 0.2)
    missed = await api("booking", "POST", f"/appointments/{missed_id}/no-show")
    assert missed.status_code == 200, missed.text

    page = await signed_in("booking", front_desk_of(tenant, location))
    await page.goto(f"/admin/front-desk?location_id={location}&date={starts.date()}")
    cell = page.locator(f'td[data-hour="{starts:%H}:00"]')
    await expect(cell.locator(".appt .status")).to_have_text("no show")
    await cell.get_by_role("button", name="Arrived after all").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Checked in: the no-show is reversed and its fee credited.")
    await expect(cell.locator(".appt.checked_in .status")).to_have_text(
        "checked in (arrived after a no-show)")
    await expect(cell.locator(".appt.reversed .status")).to_have_text("reversed")
    [replacement] = [a for a in await sessions_of(api, {"location_id": location}, patient,
                                                  starts.date())
                     if a["status"] == "checked_in"]
    assert replacement["replaces"] == missed_id


async def test_the_front_desk_opens_an_episode_at_intake_and_books_its_assessment_into_it(
        signed_in, api, clinic, tenant):
    patient = await register(api, clinic, "Ines", "Intake")
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    day = next_monday()
    await page.goto(f"/admin/front-desk?location_id={clinic['location_id']}&date={day}")
    await page.get_by_role("link", name="Book Tara Nguyen at 10:00").click()
    await page.get_by_label("Name, phone or e-mail").fill("Ines Intake")
    await page.keyboard.press("Enter")
    await page.get_by_role("link", name="Ines Intake").click()

    # No episode of care yet: the booking form sends the front desk to intake and back.
    await page.get_by_role("link", name="open one at intake").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ines Intake")
    await expect(page.get_by_label("Reason")).to_be_focused()
    await page.keyboard.type("Right knee pain when running, 10 weeks")
    await page.get_by_label("Symptom site").fill("Knee anterior")
    await page.get_by_label("Referral").check()
    await page.get_by_role("button", name="Open episode").click()
    await expect(page.get_by_role("status")).to_have_text("Episode of care opened.")

    [episode] = (await api("booking", "GET", f"/episodes?patient_id={patient}")).json()
    assert (episode["symptom_site"], episode["referral"]) == ("knee_anterior", True)
    await expect(page.get_by_role("heading", level=1)).to_contain_text("for Ines Intake")
    await expect(page.get_by_label("Type")).to_have_value("initial_assessment")
    await expect(page.get_by_label("Episode of care")).to_have_value(episode["episode_id"])
    await page.get_by_role("button", name="Book").click()
    await expect(page.get_by_role("status")).to_have_text("Booked.")
    [session] = await sessions_of(api, clinic, patient, date.fromisoformat(day))
    assert session["episode_id"] == episode["episode_id"]
    assert session["appointment_type"] == "initial_assessment"


async def test_an_episode_opened_from_the_patients_list_goes_on_to_a_slot_for_its_assessment(
        signed_in, api, clinic, tenant):
    patient = await register(api, clinic, "Otis", "Opened")
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    await page.goto(f"/admin/front-desk/patients?location_id={clinic['location_id']}")
    await page.get_by_label("Name, phone or e-mail").fill("Otis Opened")
    await page.keyboard.press("Enter")
    await page.get_by_role("row", name="Otis Opened").get_by_role(
        "link", name="Open an episode").click()
    await page.get_by_label("Reason").fill("Stiff neck after a fall")
    await page.get_by_label("Symptom site").fill("neck")
    await page.get_by_role("button", name="Open episode").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Episode of care opened: choose a free slot for its initial assessment.")
    await expect(page.locator("#choosing")).to_contain_text(
        "Otis Opened’s initial assessment")

    # Another day keeps the choice; its free slots book the assessment into the episode.
    day = next_monday()
    await page.get_by_label("Date").fill(day)
    await page.get_by_label("Date").press("Enter")
    await page.get_by_role("link", name="Book Tara Nguyen at 09:00").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("for Otis Opened")
    await expect(page.get_by_label("Type")).to_have_value("initial_assessment")
    await page.get_by_role("button", name="Book").click()
    await expect(page.get_by_role("status")).to_have_text("Booked.")
    await expect(page.locator("#choosing")).to_have_count(0)
    [episode] = (await api("booking", "GET", f"/episodes?patient_id={patient}")).json()
    [session] = await sessions_of(api, clinic, patient, date.fromisoformat(day))
    assert session["episode_id"] == episode["episode_id"]


async def test_an_under_booked_plan_is_booked_from_the_to_book_list_into_its_episode(
        signed_in, api, clinic, tenant, platform, wait_for):
    patient = await register(api, clinic, "Pia", "Plan")
    episode = await open_episode(api, clinic, patient)
    day = a_weekday_soon()
    assessed = await api("booking", "POST", "/appointments", json={
        "patient_id": patient, "therapist_id": clinic["therapist_id"],
        "location_id": clinic["location_id"], "episode_id": episode,
        "appointment_type": "initial_assessment",
        "starts_at": datetime.combine(day, time(9), tzinfo=BERLIN).isoformat()})
    assert assessed.status_code == 201, assessed.text
    await publish(platform, tenant, "plan", PlanCreated(
        plan_id=uuid.uuid4(), episode_id=uuid.UUID(episode), patient_id=uuid.UUID(patient),
        location_id=uuid.UUID(clinic["location_id"]), sessions_per_week=1, expected_sessions=6,
        target_date=date.today() + timedelta(days=60), created_at=datetime.now(UTC)))

    async def under_booked() -> bool:
        listed = await api("booking", "GET", f"/to-book?location_id={clinic['location_id']}")
        return any(e["episode_id"] == episode for e in listed.json())

    await wait_for(under_booked)
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    await page.goto(f"/admin/front-desk?location_id={clinic['location_id']}&date={day}")
    await page.locator("#to-book").get_by_role("row", name="Pia Plan").get_by_role(
        "link", name="Book").click()
    await expect(page.locator("#choosing")).to_contain_text("Pia Plan’s treatment session")
    await page.get_by_role("link", name="Book Tara Nguyen at 11:00").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("for Pia Plan")
    await expect(page.get_by_label("Type")).to_have_value("treatment_session")
    await expect(page.get_by_label("Episode of care")).to_have_value(episode)
    await page.get_by_role("button", name="Book").click()
    await expect(page.get_by_role("status")).to_have_text("Booked.")
    await expect(page.locator("#to-book")).not_to_contain_text("Pia Plan")
    sessions = await sessions_of(api, clinic, patient, day)
    assert {(s["appointment_type"], s["episode_id"]) for s in sessions} == {
        ("initial_assessment", episode), ("treatment_session", episode)}


async def test_the_front_desk_puts_a_patient_on_the_waitlist_for_one_therapist_before_a_time(
        signed_in, api, clinic, tenant):
    patient = await register(api, clinic, "Walt", "Waiting")
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    await page.goto(f"/admin/front-desk/patients?location_id={clinic['location_id']}")
    await page.get_by_label("Name, phone or e-mail").fill("Walt Waiting")
    await page.keyboard.press("Enter")
    await page.get_by_role("row", name="Walt Waiting").get_by_role(
        "link", name="Add to waitlist").click()
    await expect(page.get_by_label("Therapist")).to_be_focused()
    await page.get_by_label("Therapist").select_option(label="Tara Nguyen")
    await page.get_by_label("Type").select_option("treatment_session")
    day = next_monday()
    await page.get_by_label("Before").fill(f"{day}T12:00")
    await page.get_by_role("button", name="Add to waitlist").click()
    await expect(page.get_by_role("status")).to_have_text("Added to the waitlist.")

    # 12:00 as typed is 12:00 in Berlin; the API holds the instant with its offset.
    before = datetime.fromisoformat(f"{day}T12:00").replace(tzinfo=BERLIN)
    [entry] = [e for e in (await api("booking", "GET",
                                     f"/waitlist?location_id={clinic['location_id']}")).json()
               if e["patient_id"] == patient]
    assert entry["therapist_id"] == clinic["therapist_id"]
    assert datetime.fromisoformat(entry["wants_before"]) == before
    row = page.locator("#waitlist").get_by_role("row", name="Walt Waiting")
    await expect(row.locator(".therapist")).to_have_text("Tara Nguyen")
    await expect(row.locator(".before")).to_have_text(shown(before))
    await expect(row.locator(".joined")).to_have_text(
        shown(datetime.fromisoformat(entry["joined_at"])))


async def test_a_refused_registration_keeps_what_was_typed_beside_the_warning(
        signed_in, clinic, tenant):
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    await page.goto(f"/admin/front-desk?location_id={clinic['location_id']}&date={next_monday()}")
    await page.keyboard.press("r")
    await page.get_by_label("Given name").fill("Yet")
    await page.get_by_label("Family name").fill("Unborn")
    await page.get_by_label("Date of birth").fill("2090-09-14")
    await page.get_by_label("Phone", exact=True).fill("+49 30 7654321")
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.get_by_role("button", name="Register").click()
    assert (await answer.value).status == 422
    await expect(page.get_by_role("status")).to_contain_text("Not registered")
    await expect(page.get_by_role("status")).to_have_class("flash warn")
    await expect(page.get_by_label("Given name")).to_have_value("Yet")
    await expect(page.get_by_label("Family name")).to_have_value("Unborn")
    await expect(page.get_by_label("Date of birth")).to_have_value("2090-09-14")
    await expect(page.get_by_label("Phone", exact=True)).to_have_value("+49 30 7654321")

    await page.get_by_label("Date of birth").fill("1990-09-14")
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_role("status")).to_have_text("Registered Yet Unborn.")


async def test_a_refused_booking_keeps_the_patient_type_and_episode_chosen(
        signed_in, api, clinic, tenant):
    patient = await register(api, clinic, "Olga", "Order")
    episode = await open_episode(api, clinic, patient)
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    day = next_monday()
    await page.goto(f"/admin/front-desk?location_id={clinic['location_id']}&date={day}")
    await page.get_by_role("link", name="Book Tara Nguyen at 11:00").click()
    await page.get_by_label("Name, phone or e-mail").fill("Olga Order")
    await page.keyboard.press("Enter")
    await page.get_by_role("link", name="Olga Order").click()
    # Her only open episode is chosen; a treatment session cannot come before its assessment.
    await expect(page.get_by_label("Episode of care")).to_have_value(episode)
    await page.get_by_label("Type").select_option("treatment_session")
    await page.get_by_role("button", name="Book").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Not booked: The first session of an episode of care is an initial assessment")
    await expect(page.get_by_role("status")).to_have_class("flash warn")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("11:00")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("for Olga Order")
    await expect(page.get_by_label("Type")).to_have_value("treatment_session")
    await expect(page.get_by_label("Episode of care")).to_have_value(episode)

    await page.get_by_label("Type").select_option("initial_assessment")
    await page.get_by_role("button", name="Book").click()
    await expect(page.get_by_role("status")).to_have_text("Booked.")
    [session] = await sessions_of(api, clinic, patient, date.fromisoformat(day))
    assert (session["appointment_type"], session["episode_id"]) == ("initial_assessment", episode)


async def test_a_registration_sent_twice_registers_the_patient_once(signed_in, api, clinic,
                                                                    tenant):
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    await page.goto(f"/admin/front-desk/patients?location_id={clinic['location_id']}")
    typed = {"given_name": "Dora", "family_name": "Double", "date_of_birth": "1979-07-07",
             "home_location_id": clinic["location_id"]}
    for name, label in (("given_name", "Given name"), ("family_name", "Family name"),
                        ("date_of_birth", "Date of birth")):
        await page.get_by_label(label).fill(typed[name])
    key = await page.locator('#register input[name="key"]').input_value()
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_role("status")).to_have_text("Registered Dora Double.")
    # The same form again, as a second click sends it.
    origin = page.url.split("/admin/")[0]
    again = await page.request.post(f"{origin}/admin/front-desk/patients",
                                    form={**typed, "key": key})
    assert again.ok, again.status
    found = (await api("booking", "GET", "/patients?q=Dora%20Double")).json()
    assert len(found) == 1, found


async def test_a_waitlist_form_sent_twice_adds_one_entry(signed_in, api, clinic, tenant):
    patient = await register(api, clinic, "Wes", "Twice")
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    await page.goto(f"/admin/front-desk/patients/{patient}?location_id={clinic['location_id']}"
                    "&focus=waitlist")
    key = await page.locator('#waitlist input[name="key"]').input_value()
    await page.get_by_role("button", name="Add to waitlist").click()
    await expect(page.get_by_role("status")).to_have_text("Added to the waitlist.")
    origin = page.url.split("/admin/")[0]
    again = await page.request.post(f"{origin}/admin/front-desk/waitlist", form={
        "patient_id": patient, "location_id": clinic["location_id"], "key": key})
    assert again.ok, again.status
    listed = (await api("booking", "GET",
                        f"/waitlist?location_id={clinic['location_id']}")).json()
    assert [e["patient_id"] for e in listed].count(patient) == 1


async def test_a_refused_intake_keeps_what_was_typed(signed_in, api, clinic, tenant):
    patient = await register(api, clinic, "Ida", "Intake")
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    await page.goto(f"/admin/front-desk/patients/{patient}?location_id={clinic['location_id']}"
                    "&focus=intake")
    await page.get_by_label("Reason").fill("Hip and knee pain on stairs")
    await page.get_by_label("Symptom site").fill("hip/knee")
    await page.get_by_label("Goal", exact=True).fill("Stairs without rails")
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.get_by_role("button", name="Open episode").click()
    assert (await answer.value).status == 422
    await expect(page.get_by_role("status")).to_contain_text("Not opened")
    await expect(page.get_by_role("status")).to_contain_text("symptom_site")
    await expect(page.get_by_label("Reason")).to_have_value("Hip and knee pain on stairs")
    await expect(page.get_by_label("Symptom site")).to_have_value("hip/knee")
    await expect(page.get_by_label("Goal", exact=True)).to_have_value("Stairs without rails")

    await page.get_by_label("Symptom site").fill("hip")
    await page.get_by_role("button", name="Open episode").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Episode of care opened: choose a free slot for its initial assessment.")


async def test_a_refused_waitlist_form_comes_back_with_the_choices_made(
        signed_in, api, clinic, tenant):
    # The form's own fields cannot send a malformed time; a hand-made post can.
    patient = await register(api, clinic, "Rita", "Refused")
    page = await signed_in("booking", front_desk_of(tenant, clinic["location_id"]))
    await page.goto(f"/admin/front-desk/patients/{patient}?location_id={clinic['location_id']}")
    origin = page.url.split("/admin/")[0]
    answer = await page.request.post(f"{origin}/admin/front-desk/waitlist", form={
        "patient_id": patient, "location_id": clinic["location_id"],
        "therapist_id": clinic["therapist_id"], "appointment_type": "reassessment",
        "wants_before": "soon"})
    assert answer.status == 422
    await page.set_content(await answer.text())
    await expect(page.get_by_role("status")).to_contain_text("Not added")
    await expect(page.get_by_label("Therapist")).to_have_value(clinic["therapist_id"])
    await expect(page.get_by_label("Type")).to_have_value("reassessment")
