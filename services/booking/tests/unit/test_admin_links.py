"""The front desk's pages read their address leniently and link only to admin pages: a
``back`` that is not an admin page becomes the front desk, and a day or time the pages cannot
use reads as none (the page then warns) instead of failing. The helpers, and the booking
form's template rendered with the service's template environment, without a server."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.templating import Jinja2Templates

import booking.adapters
from booking.adapters.admin_desk import HOME, admin_target, parse_instant
from kinetic_infra.http.admin_pages import parse_date
from kinetic_infra.http.app import TEMPLATES_DIR


@pytest.mark.parametrize("target", [
    "javascript:fetch('/appointments')", "JavaScript:alert(1)", "https://evil.example/admin/",
    "//evil.example/admin/", "data:text/html,hi", "/adminx", "", None])
def test_back_to_anything_but_an_admin_page_is_back_to_the_front_desk(target):
    assert admin_target(target) == HOME


def test_back_to_an_admin_page_is_kept():
    assert admin_target("/admin/front-desk?date=2027-03-01") == "/admin/front-desk?date=2027-03-01"


@pytest.mark.parametrize("typed", ["garbage", "2027-02-30", "9999-12-31", "0001-01-01"])
def test_a_day_that_does_not_parse_or_is_at_the_calendars_ends_reads_as_none(typed):
    assert parse_date(typed) is None


def test_a_day_near_the_calendars_ends_still_steps_a_week_either_way():
    for typed in ("0002-01-01", "9998-12-31"):
        day = parse_date(typed)
        assert day is not None
        assert day - timedelta(days=7) < day < day + timedelta(days=7)


def test_an_ordinary_day_is_read():
    assert parse_date("2027-03-01") == date(2027, 3, 1)


@pytest.mark.parametrize("typed", ["garbage", "2027-03-01T10:00:00", "9999-12-31T23:00:00+00:00",
                                   "0001-01-01T00:30:00+00:00", ""])
def test_a_time_without_offset_unparsed_or_at_the_calendars_ends_reads_as_none(typed):
    assert parse_instant(typed) is None


def test_a_plus_sent_unencoded_as_a_space_is_read_as_the_plus_it_was():
    plus_one = timezone(timedelta(hours=1))
    expected = datetime(2027, 3, 1, 10, 0, tzinfo=plus_one)
    assert parse_instant("2027-03-01T10:00:00 01:00") == expected
    assert parse_instant("2027-03-01T10:00:00+01:00") == expected
    assert parse_instant("2027-03-01T09:00:00Z") == expected


def book_form(**page: object) -> str:
    templates = Jinja2Templates(directory=[
        str(Path(booking.adapters.__file__).parent / "templates"), str(TEMPLATES_DIR)])
    return templates.get_template("book.html").render(**{
        "params": {}, "names": {}, "types": [], "episodes": [], "nav": [], "menu": [],
        "locations": [], **page})


def test_the_booking_forms_back_link_is_the_checked_target_not_the_address():
    page = book_form(patient_id="p", back=HOME,
                     params={"patient_id": "p", "back": "javascript:alert(1)"})
    assert f'<a href="{HOME}">back</a>' in page
    assert 'href="javascript:' not in page


def test_the_register_link_keeps_a_typed_location_inside_its_own_parameter():
    page = book_form(q="nobody", found=[], params={"location_id": "x&q=y"})
    assert "/admin/front-desk/patients?location_id=x%26q%3Dy" in page
