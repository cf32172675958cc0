"""The front desk's pages take their address as anyone may write it: the booking form's
"back" link goes only to an admin page (never a javascript: or another site's link), and a
day, a time or a session the page cannot use shows the page with a warning or redirects with
one, never a server error or the API's JSON. Over HTTP with the admin session cookie."""

from __future__ import annotations

import html
import re
import uuid
from datetime import datetime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from kinetic_infra.auth.principal import Principal, Role
from tests.e2e.test_appointments import booking, hour_from_now

pytestmark = pytest.mark.platform

HOME = "/admin/front-desk"
BERLIN = ZoneInfo("Europe/Berlin")
BACK_LINK = re.compile(r'<a href="([^"]*)">back</a>')
WARNING = re.compile(r'<div class="flash warn" role="status">([^<]*)</div>')


@pytest.fixture
async def desk(urls, session_of, tenant):
    async with httpx.AsyncClient(base_url=urls["booking"], cookies=session_of(tenant),
                                 timeout=15) as client:
        yield client


def warning(page: httpx.Response) -> str:
    found = WARNING.search(page.text)
    assert found, page.text
    return html.unescape(found.group(1))


def flash_of(redirect: httpx.Response) -> dict[str, str]:
    assert redirect.status_code == 303, redirect.text
    return {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}


@pytest.mark.parametrize("back", ["javascript:fetch('/appointments')", "https://evil.example/",
                                  "//evil.example/admin/"])
async def test_the_booking_forms_back_link_goes_only_to_an_admin_page(desk, clinic, back):
    form = await desk.get(f"{HOME}/book", params={
        "patient_id": clinic["patient_id"], "location_id": clinic["location_id"], "back": back})
    assert form.status_code == 200, form.text
    assert [html.unescape(h) for h in BACK_LINK.findall(form.text)] == [HOME]
    # Nor is it carried on in the form, to come back after a refusal or intake.
    linked = {html.unescape(v) for v in re.findall(r'(?:href|value)="([^"]*)"', form.text)}
    assert back not in linked
    assert 'name="back" value="/admin/front-desk"' in form.text


async def test_the_booking_forms_back_link_keeps_an_admin_page(desk, clinic):
    back = f"{HOME}?location_id={clinic['location_id']}&date=2031-03-03"
    form = await desk.get(f"{HOME}/book", params={
        "patient_id": clinic["patient_id"], "location_id": clinic["location_id"], "back": back})
    assert [html.unescape(h) for h in BACK_LINK.findall(form.text)] == [back]


async def test_a_booking_link_with_an_unreadable_time_shows_the_form_with_a_warning(
        desk, clinic):
    form = await desk.get(f"{HOME}/book", params={
        "patient_id": clinic["patient_id"], "location_id": clinic["location_id"],
        "therapist_id": clinic["therapist_id"], "starts_at": "garbage"})
    assert form.status_code == 200, form.text
    assert "“garbage” is not a date and time" in warning(form)


async def test_a_hand_made_link_whose_plus_came_as_a_space_books_that_time(desk, clinic):
    # "+01:00" unencoded in an address arrives as " 01:00".
    url = (f"{HOME}/book?patient_id={clinic['patient_id']}&location_id={clinic['location_id']}"
           f"&therapist_id={clinic['therapist_id']}&starts_at=2031-03-03T10:30:00+01:00")
    form = await desk.get(url)
    assert form.status_code == 200, form.text
    assert "Book Mon 03 Mar 10:30" in form.text
    assert 'name="starts_at" value="2031-03-03T10:30:00+01:00"' in form.text


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "garbage"])
@pytest.mark.parametrize("view", [None, "week"])
async def test_a_day_the_calendar_cannot_show_shows_today_with_a_warning(desk, clinic, day, view):
    page = await desk.get(HOME, params={"location_id": clinic["location_id"], "date": day,
                                        **({"view": view} if view else {})})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert f"“{day}” is not a day the calendar can show" in warning(page)
    today = datetime.now(BERLIN).date()
    assert f'name="date" value="{today.isoformat()}"' in page.text


async def test_the_move_page_with_a_day_it_cannot_show_shows_the_sessions_week(
        api, desk, clinic):
    session = await api("booking", "POST", "/appointments",
                        json=booking(clinic, hour_from_now(48)))
    assert session.status_code == 201, session.text
    page = await desk.get(f"{HOME}/appointments/{session.json()['id']}/reschedule",
                          params={"date": "9999-12-31", "back": HOME})
    assert page.status_code == 200, page.text
    assert "“9999-12-31” is not a day the calendar can show" in warning(page)


async def test_moving_a_session_without_a_front_desk_role_there_redirects_with_a_warning(
        api, urls, token, tenant, clinic):
    session = await api("booking", "POST", "/appointments",
                        json=booking(clinic, hour_from_now(48)))
    assert session.status_code == 201, session.text
    appointment_id = session.json()["id"]
    therapist_only = Principal(f"thea-{uuid.uuid4()}", "Thea", tenant, location_roles={
        uuid.UUID(clinic["location_id"]): frozenset({Role.THERAPIST})})
    assert (await api("booking", "GET", f"/appointments/{appointment_id}",
                      as_staff=therapist_only)).status_code == 200, "the API shows it to her"
    async with httpx.AsyncClient(base_url=urls["booking"], timeout=15,
                                 cookies={"kinetic_token": token(therapist_only)}) as client:
        page = await client.get(f"{HOME}/appointments/{appointment_id}/reschedule",
                                params={"back": HOME})
    flash = flash_of(page)
    assert flash["warn"] == "1" and "no front-desk role" in flash["flash"], flash


async def test_a_move_posted_without_a_time_redirects_with_the_apis_problem(
        api, desk, clinic):
    session = await api("booking", "POST", "/appointments",
                        json=booking(clinic, hour_from_now(48)))
    assert session.status_code == 201, session.text
    moved = await desk.post(f"{HOME}/appointments/{session.json()['id']}/reschedule",
                            data={"back": HOME})
    flash = flash_of(moved)
    assert flash["warn"] == "1" and flash["flash"].startswith("Not done"), flash
    assert "starts_at" in flash["flash"], "the API's problem names the field"
