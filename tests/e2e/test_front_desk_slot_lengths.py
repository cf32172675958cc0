"""The front desk's pages offer slots of the length they will book: after intake, a slot
found for a shorter treatment session leads to choosing one for the initial assessment; the
move page offers slots of the session's own length. Over HTTP, as a signed-in operator, the
way a browser's forms send them."""

from __future__ import annotations

import html
import re
import uuid
from datetime import date, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

pytestmark = pytest.mark.platform

BERLIN = ZoneInfo("Europe/Berlin")
HOME = "/admin/front-desk"
FREE_SLOT = re.compile(r'<a class="free" href="([^"]+)" aria-label="Book [^"]+ at (\d\d:\d\d)"')
MOVE_HERE = re.compile(r'name="starts_at" value="([^"]+)">')


def a_weekday_ahead() -> date:
    day = datetime.now(BERLIN).date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=BERLIN)


async def clinic_with(api, closes: str) -> dict[str, str]:
    """A location open around the clock, one therapist working weekdays 13:45 to ``closes``,
    treatment sessions 45 minutes long (initial assessments the default 60), and a new
    patient."""
    location = (await api("booking", "POST", "/locations", json={
        "name": "Lengths", "timezone": "Europe/Berlin"})).json()["id"]
    therapist = (await api("booking", "POST", "/therapists", json={
        "location_ids": [location], "display_name": "Lena Length"})).json()["id"]
    hours = await api("booking", "PUT", f"/therapists/{therapist}/working-hours/{location}",
                      json={"working_hours": {d: [{"opens": "13:45", "closes": closes}]
                                              for d in ("mon", "tue", "wed", "thu", "fri")}})
    assert hours.status_code in (200, 204), hours.text
    typed = await api("booking", "PUT", "/appointment-types/treatment_session",
                      json={"minutes": 45})
    assert typed.status_code == 204, typed.text
    patient = (await api("booking", "POST", "/patients", json={
        "given_name": "Nina", "family_name": "New", "date_of_birth": "1990-01-01",
        "home_location_id": location})).json()["id"]
    return {"location_id": location, "therapist_id": therapist, "patient_id": patient}


def free_slots(page: str) -> dict[str, str]:
    """The day view's "Book" links by local time."""
    return {at: html.unescape(href) for href, at in FREE_SLOT.findall(page)}


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def form_fields(page: str, action: str) -> dict[str, str]:
    form = page[page.index(f'action="{action}"'):]
    form = form[:form.index("</form>")]
    fields = {n: html.unescape(v) for n, v in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)}
    for name, options in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        fields[name] = chosen.group(1) if chosen else ""
    return fields


@pytest.fixture
async def desk(urls, session_of, tenant):
    async with httpx.AsyncClient(base_url=urls["booking"], cookies=session_of(tenant),
                                 timeout=15) as client:
        yield client


async def test_after_intake_a_slot_too_short_for_the_assessment_leads_to_choosing_one(
        api, desk):
    clinic = await clinic_with(api, closes="16:00")
    day = a_weekday_ahead()
    view = await desk.get(HOME, params={"location_id": clinic["location_id"],
                                        "date": day.isoformat()})
    treatment = free_slots(view.text)
    assert sorted(treatment) == ["13:45", "14:30", "15:15"], "45-minute treatment slots"

    # "Book 15:15" for a patient with no episode of care: the form sends her to intake.
    form = await desk.get(treatment["15:15"] + f"&patient_id={clinic['patient_id']}")
    assert form.status_code == 200, form.text
    assert 'id="choose-again"' in form.text
    intake = html.unescape(re.search(r'<a href="([^"]+)">open one at intake</a>',
                                     form.text).group(1))
    back = query(intake)["back"]
    # An assessment at 15:15 would end after she stops at 16:00: not back to that slot.
    assert urlsplit(back).path == HOME
    assert query(back) == {"location_id": clinic["location_id"], "date": day.isoformat(),
                           "patient_id": clinic["patient_id"],
                           "appointment_type": "initial_assessment"}

    opened = await desk.post(f"{HOME}/patients/{clinic['patient_id']}/episodes", data={
        "key": str(uuid.uuid4()), "back": back, "location_id": clinic["location_id"],
        "reason": "Shoulder pain reaching up", "symptom_site": "shoulder"})
    assert opened.status_code == 303, opened.text
    [episode] = (await api("booking", "GET",
                           f"/episodes?patient_id={clinic['patient_id']}")).json()
    choosing = await desk.get(opened.headers["location"])
    assert "initial assessment" in choosing.text and 'id="choosing"' in choosing.text
    assessment = free_slots(choosing.text)
    assert sorted(assessment) == ["13:45", "14:45"], "60-minute slots for the assessment"
    assert query(assessment["14:45"])["episode_id"] == episode["episode_id"]

    book = await desk.get(assessment["14:45"])
    fields = form_fields(book.text, f"{HOME}/book")
    assert (fields["appointment_type"], fields["episode_id"]) == (
        "initial_assessment", episode["episode_id"])
    booked = await desk.post(f"{HOME}/book", data=fields)
    assert booked.status_code == 303, booked.text
    assert "Booked." in query(booked.headers["location"])["flash"]
    [session] = [a for a in (await api(
        "booking", "GET", f"/appointments?location_id={clinic['location_id']}"
        f"&start={local(day, 0).isoformat()}&end={local(day, 23).isoformat()}"
        .replace("+", "%2B"))).json() if a["patient_id"] == clinic["patient_id"]]
    assert datetime.fromisoformat(session["starts_at"]) == local(day, 14, 45)
    assert (session["appointment_type"], session["episode_id"]) == (
        "initial_assessment", episode["episode_id"])


async def test_after_intake_a_slot_with_room_for_the_assessment_is_booked_as_one(api, desk):
    clinic = await clinic_with(api, closes="16:00")
    same = await api("booking", "PUT", "/appointment-types/treatment_session",
                     json={"minutes": 60})
    assert same.status_code == 204, same.text
    day = a_weekday_ahead()
    view = await desk.get(HOME, params={"location_id": clinic["location_id"],
                                        "date": day.isoformat()})
    form = await desk.get(free_slots(view.text)["14:45"]
                          + f"&patient_id={clinic['patient_id']}")
    assert 'id="choose-again"' not in form.text
    intake = html.unescape(re.search(r'<a href="([^"]+)">open one at intake</a>',
                                     form.text).group(1))
    back = query(intake)["back"]
    assert urlsplit(back).path == f"{HOME}/book"
    assert query(back)["appointment_type"] == "initial_assessment"
    assert datetime.fromisoformat(query(back)["starts_at"]) == local(day, 14, 45)


async def test_the_move_page_offers_slots_of_the_sessions_own_length(api, desk):
    clinic = await clinic_with(api, closes="16:15")
    day = a_weekday_ahead()
    # Sixty minutes, though treatment sessions are 45 now (booked with the API's minutes, as
    # a session booked before the type's length changed would be).
    booked = await api("booking", "POST", "/appointments", json={
        "patient_id": clinic["patient_id"], "therapist_id": clinic["therapist_id"],
        "location_id": clinic["location_id"], "appointment_type": "treatment_session",
        "starts_at": local(day, 13, 45).isoformat(), "minutes": 60})
    assert booked.status_code == 201, booked.text
    appointment_id = booked.json()["id"]
    page = await desk.get(f"{HOME}/appointments/{appointment_id}/reschedule",
                          params={"back": HOME})
    assert page.status_code == 200, page.text
    offered = [datetime.fromisoformat(html.unescape(s)).astimezone(BERLIN)
               for s in MOVE_HERE.findall(page.text)]
    assert offered, page.text
    # Free 14:45 to 16:15 that day: 45-minute gaps would offer 15:30, which an hour
    # overruns; every other weekday 13:45 to 16:15 has room for 13:45 and 14:45.
    on_the_day = sorted(t.strftime("%H:%M") for t in offered if t.date() == day)
    assert on_the_day == ["14:45"]
    assert {t.strftime("%H:%M") for t in offered} == {"13:45", "14:45"}

    moved = await desk.post(f"{HOME}/appointments/{appointment_id}/reschedule", data={
        "starts_at": local(day, 14, 45).isoformat(), "therapist_id": clinic["therapist_id"],
        "back": HOME})
    assert moved.status_code == 303
    assert query(moved.headers["location"]).get("flash") == "Moved", moved.headers["location"]
    after = (await api("booking", "GET", f"/appointments/{appointment_id}")).json()
    assert (datetime.fromisoformat(after["starts_at"]), datetime.fromisoformat(
        after["ends_at"])) == (local(day, 14, 45), local(day, 15, 45))


async def test_availability_searches_slots_of_the_minutes_asked_for(api):
    clinic = await clinic_with(api, closes="16:15")
    day = a_weekday_ahead()

    async def starts(**extra: object) -> list[str]:
        found = await api("booking", "GET", "/availability?" + "&".join(
            f"{k}={v}" for k, v in {"location_id": clinic["location_id"],
                                    "appointment_type": "treatment_session",
                                    "start_date": day.isoformat(), **extra}.items()))
        assert found.status_code == 200, found.text
        return [datetime.fromisoformat(s["starts_at"]).strftime("%H:%M") for s in found.json()]

    assert await starts() == ["13:45", "14:30", "15:15"]
    assert await starts(minutes=60) == ["13:45", "14:45"]
    too_short = await api("booking", "GET", f"/availability?location_id={clinic['location_id']}"
                          f"&appointment_type=treatment_session&start_date={day}&minutes=5")
    assert too_short.status_code == 422
