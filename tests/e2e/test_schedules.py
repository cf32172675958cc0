"""Opening hours, closures, working hours and time off decide what can be booked; the
availability search shows what is free in the location's own time, across daylight-saving
changes; sessions move, consents are recorded, duplicates are flagged, and a cancelled
hour is offered to the waitlist."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

pytestmark = pytest.mark.platform

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_8_TO_18 = {d: [{"opens": "08:00", "closes": "18:00"}]
                    for d in ("mon", "tue", "wed", "thu", "fri")}


def next_monday(weeks_ahead: int = 1) -> date:
    today = datetime.now(BERLIN).date()
    return today + timedelta(days=(7 - today.weekday()) + 7 * (weeks_ahead - 1))


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


def q(value: datetime | date) -> str:
    return value.isoformat().replace("+", "%2B")


@pytest.fixture
async def clinic(api) -> dict[str, str]:
    """A Berlin location open on weekdays 08-18, a therapist working there Mon-Wed 09-17,
    and a patient."""
    location = await api("booking", "POST", "/locations", json={
        "name": "Mitte", "timezone": "Europe/Berlin", "opening_hours": WEEKDAYS_8_TO_18})
    assert location.status_code == 201, location.text
    location_id = location.json()["id"]
    therapist = await api("booking", "POST", "/therapists", json={
        "location_ids": [location_id], "display_name": "Tara Nguyen"})
    therapist_id = therapist.json()["id"]
    hours = await api("booking", "PUT", f"/therapists/{therapist_id}/working-hours/{location_id}",
                      json={"working_hours": {d: [{"opens": "09:00", "closes": "17:00"}]
                                              for d in ("mon", "tue", "wed")}})
    assert hours.status_code == 204, hours.text
    patient = await api("booking", "POST", "/patients", json={
        "given_name": "Ada", "family_name": "Lindqvist", "date_of_birth": "1990-02-03",
        "home_location_id": location_id})
    return {"location_id": location_id, "therapist_id": therapist_id,
            "patient_id": patient.json()["id"]}


def booking(clinic: dict[str, str], starts_at: datetime, **overrides) -> dict:
    return {"patient_id": clinic["patient_id"], "therapist_id": clinic["therapist_id"],
            "location_id": clinic["location_id"], "appointment_type": "treatment_session",
            "starts_at": starts_at.isoformat(), **overrides}


async def count_rows(platform, tenant: uuid.UUID) -> tuple[int, int]:
    conn = await asyncpg.connect(platform.maintenance_url("booking"))
    try:
        return (await conn.fetchval("SELECT count(*) FROM appointments WHERE tenant_id = $1",
                                    tenant),
                await conn.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1 AND "
                                    "stream_name LIKE 'appointment-%'", tenant))
    finally:
        await conn.close()


async def test_bookings_outside_hours_in_closures_or_time_off_are_refused_and_write_nothing(
        platform, api, clinic, tenant):
    monday = next_monday(2)
    closed = monday + timedelta(days=1)
    closure = await api("booking", "POST", f"/locations/{clinic['location_id']}/closures",
                        json={"first_day": closed.isoformat(), "last_day": closed.isoformat(),
                              "reason": "Staff training"})
    assert closure.status_code == 201, closure.text
    off = await api("booking", "POST", f"/therapists/{clinic['therapist_id']}/time-off", json={
        "starts_at": local(monday + timedelta(days=2), 0).isoformat(),
        "ends_at": local(monday + timedelta(days=3), 0).isoformat()})
    assert off.status_code == 201, off.text
    cases = [
        (local(monday + timedelta(days=5), 10), "/problems/outside-opening-hours"),  # Saturday
        (local(monday, 7), "/problems/outside-opening-hours"),
        (local(monday, 17, 30), "/problems/outside-opening-hours"),  # would end at 18:30
        (local(monday, 8), "/problems/outside-working-hours"),  # open, but she starts at 9
        (local(monday + timedelta(days=3), 10), "/problems/outside-working-hours"),  # Thursday
        (local(closed, 10), "/problems/location-closed"),
        (local(monday + timedelta(days=2), 10), "/problems/therapist-time-off"),
    ]
    for starts_at, problem in cases:
        response = await api("booking", "POST", "/appointments",
                             json=booking(clinic, starts_at))
        assert response.status_code == 422, (starts_at, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == problem, starts_at
    assert await count_rows(platform, tenant) == (0, 0)
    fine = await api("booking", "POST", "/appointments", json=booking(clinic, local(monday, 9)))
    assert fine.status_code == 201, fine.text


async def test_a_week_of_slots_across_the_spring_change_comes_out_in_local_time(api, clinic):
    # Europe/Berlin springs from +01:00 to +02:00 on the last Sunday of March.
    year = datetime.now(BERLIN).year + 1
    last_sunday = max(date(year, 3, d) for d in range(25, 32) if date(year, 3, d).weekday() == 6)
    monday_before = last_sunday - timedelta(days=6)
    await api("booking", "PUT", f"/locations/{clinic['location_id']}/opening-hours", json={
        "opening_hours": {d: [{"opens": "08:00", "closes": "10:00"}]
                          for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}})
    await api("booking", "PUT", f"/therapists/{clinic['therapist_id']}/working-hours/"
              f"{clinic['location_id']}", json={"working_hours": {
                  d: [{"opens": "00:00", "closes": "24:00"}]
                  for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}})
    first_day, last_day = monday_before, monday_before + timedelta(days=13)
    response = await api("booking", "GET", f"/availability?location_id={clinic['location_id']}"
                         f"&appointment_type=treatment_session&start_date={first_day}"
                         f"&end_date={last_day}")
    assert response.status_code == 200, response.text
    slots = [datetime.fromisoformat(s["starts_at"]) for s in response.json()]
    assert len(slots) == 28
    assert {s.strftime("%H:%M") for s in slots} == {"08:00", "09:00"}
    assert {s.date(): s.utcoffset() for s in slots} == {
        first_day + timedelta(days=i): timedelta(hours=1 if first_day + timedelta(days=i)
                                                 < last_sunday else 2) for i in range(14)}
    assert slots[0].astimezone(UTC).hour == 7 and slots[-1].astimezone(UTC).hour == 7


async def test_availability_leaves_out_booked_hours_and_the_appointment_types_length(
        api, clinic):
    monday = next_monday(3)
    await api("booking", "POST", "/appointments", json=booking(clinic, local(monday, 10)))
    url = (f"/availability?location_id={clinic['location_id']}"
           f"&appointment_type=initial_assessment&start_date={monday}")
    hours = [datetime.fromisoformat(s["starts_at"]).hour
             for s in (await api("booking", "GET", url)).json()]
    assert hours == [9, 11, 12, 13, 14, 15, 16]
    configured = await api("booking", "PUT", "/appointment-types/initial_assessment",
                           json={"minutes": 90})
    assert configured.status_code == 204
    longer = [(s["starts_at"][11:16], s["ends_at"][11:16])
              for s in (await api("booking", "GET", url)).json()]
    assert longer == [("11:00", "12:30"), ("12:30", "14:00"), ("14:00", "15:30"),
                      ("15:30", "17:00")]
    types = {t["appointment_type"]: t["minutes"]
             for t in (await api("booking", "GET", "/appointment-types")).json()}
    assert types == {"initial_assessment": 90, "treatment_session": 60, "reassessment": 60}
    other = await api("booking", "POST", "/patients", json={
        "given_name": "Bo", "family_name": "Ek", "date_of_birth": "1980-01-01",
        "home_location_id": clinic["location_id"]})
    booked = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 11), patient_id=other.json()["id"],
        appointment_type="initial_assessment"))
    session = await api("booking", "GET", f"/appointments/{booked.json()['id']}")
    start, end = (datetime.fromisoformat(session.json()[k]) for k in ("starts_at", "ends_at"))
    assert end - start == timedelta(minutes=90)


async def test_a_session_moves_within_the_rules_and_never_onto_a_taken_hour(api, clinic):
    monday = next_monday(2)
    first = await api("booking", "POST", "/appointments", json=booking(clinic, local(monday, 9)))
    other = await api("booking", "POST", "/patients", json={
        "given_name": "Cy", "family_name": "Berg", "date_of_birth": "1970-07-07",
        "home_location_id": clinic["location_id"]})
    await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 11), patient_id=other.json()["id"]))
    path = f"/appointments/{first.json()['id']}/reschedule"
    taken = await api("booking", "POST", path, json={"starts_at": local(monday, 11, 30)
                                                      .isoformat()})
    assert taken.status_code == 409 and taken.json()["type"] == "/problems/slot-taken"
    closed = await api("booking", "POST", path, json={"starts_at": local(monday, 18)
                                                       .isoformat()})
    assert closed.status_code == 422
    moved = await api("booking", "POST", path, json={"starts_at": local(monday, 14)
                                                      .isoformat()})
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["starts_at"]) == local(monday, 14)
    assert moved.json()["status"] == "booked"
    rebooked = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 9), patient_id=other.json()["id"]))
    assert rebooked.status_code == 201, "the old hour is free again"


async def test_consents_are_kept_with_their_version_and_time(api, clinic):
    path = f"/patients/{clinic['patient_id']}/consents"
    for body in ({"consent": "treatment", "granted": True, "version": "2026-09"},
                 {"consent": "data_sharing", "partner": "acme-crm", "granted": True,
                  "version": "2026-09"},
                 {"consent": "reminders", "granted": True, "version": "2026-09"},
                 {"consent": "reminders", "granted": False, "version": "2026-11"}):
        response = await api("booking", "POST", path, json=body)
        assert response.status_code == 204, response.text
    wrong = await api("booking", "POST", path, json={"consent": "data_sharing", "granted": True,
                                                     "version": "1"})
    assert wrong.status_code == 422 and wrong.json()["type"] == "/problems/consent-partner"
    consents = {(c["consent"], c["partner"]): (c["granted"], c["version"])
                for c in (await api("booking", "GET", path)).json()}
    assert consents == {("treatment", None): (True, "2026-09"),
                        ("data_sharing", "acme-crm"): (True, "2026-09"),
                        ("reminders", None): (False, "2026-11")}


async def test_registering_the_same_name_and_birth_date_warns_of_a_duplicate(api, clinic):
    again = await api("booking", "POST", "/patients", json={
        "given_name": "ADA", "family_name": "lindqvist", "date_of_birth": "1990-02-03",
        "home_location_id": clinic["location_id"]})
    assert again.status_code == 201
    assert again.json()["possible_duplicates"] == [clinic["patient_id"]]
    found = await api("booking", "GET", "/patients?q=lindkvist")  # a typo still finds her
    assert {p["patient_id"] for p in found.json()} == {clinic["patient_id"], again.json()["id"]}


async def test_an_episode_starts_with_an_initial_assessment(api, clinic):
    episode = await api("booking", "POST", "/episodes", json={
        "patient_id": clinic["patient_id"], "location_id": clinic["location_id"],
        "reason": "Knee pain when running", "symptom_site": "knee_anterior"})
    monday = next_monday(2)
    treatment = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 9), episode_id=episode.json()["id"]))
    assert treatment.status_code == 422
    assert treatment.json()["type"] == "/problems/first-session-is-assessment"
    assessment = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 9), episode_id=episode.json()["id"],
        appointment_type="initial_assessment"))
    assert assessment.status_code == 201, assessment.text
    follow_up = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 11), episode_id=episode.json()["id"]))
    assert follow_up.status_code == 201, follow_up.text
    # Nor can a session go before it, by booking or by moving either of them.
    earlier = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday - timedelta(days=7), 9), episode_id=episode.json()["id"]))
    assert earlier.json()["type"] == "/problems/first-session-is-assessment", earlier.text
    moved = await api("booking", "POST", f"/appointments/{follow_up.json()['id']}/reschedule",
                      json={"starts_at": local(monday - timedelta(days=7), 9).isoformat()})
    assert moved.json()["type"] == "/problems/first-session-is-assessment", moved.text
    moved = await api("booking", "POST", f"/appointments/{assessment.json()['id']}/reschedule",
                      json={"starts_at": local(monday + timedelta(days=1), 9).isoformat()})
    assert moved.json()["type"] == "/problems/first-session-is-assessment", moved.text


async def test_a_cancelled_hour_is_offered_to_the_first_on_the_waitlist(
        api, clinic, published, wait_for):
    monday = next_monday(2)
    booked = await api("booking", "POST", "/appointments", json=booking(clinic, local(monday, 9)))
    waiting = []
    for name in ("First", "Second"):
        patient = await api("booking", "POST", "/patients", json={
            "given_name": name, "family_name": "Waiter", "date_of_birth": "1980-01-01",
            "home_location_id": clinic["location_id"]})
        entry = await api("booking", "POST", "/waitlist", json={
            "patient_id": patient.json()["id"], "location_id": clinic["location_id"]})
        assert entry.status_code == 201, entry.text
        waiting.append((patient.json()["id"], entry.json()["id"]))
    cancelled = await api("booking", "POST", f"/appointments/{booked.json()['id']}/cancel")
    assert cancelled.json()["offered_to"] == waiting[0][1]
    listed = (await api("booking", "GET",
                        f"/waitlist?location_id={clinic['location_id']}")).json()
    assert [(e["entry_id"], e["status"]) for e in listed] == [
        (waiting[0][1], "offered"), (waiting[1][1], "waiting")]
    assert datetime.fromisoformat(listed[0]["offered_starts_at"]) == local(monday, 9)
    [envelope] = await wait_for(lambda: published("kinetic.booking.waitlist.slot_offered.v1"))
    assert envelope["data"]["patient_id"] == waiting[0][0]
    assert envelope["data"]["freed_by"] == booked.json()["id"]
    taken = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 9), patient_id=waiting[0][0], waitlist_entry_id=waiting[0][1]))
    assert taken.status_code == 201, taken.text
    listed = (await api("booking", "GET",
                        f"/waitlist?location_id={clinic['location_id']}")).json()
    assert [e["entry_id"] for e in listed] == [waiting[1][1]]


async def _waiting_patient(api, clinic, name: str, **entry) -> tuple[str, str]:
    patient = await api("booking", "POST", "/patients", json={
        "given_name": name, "family_name": "Waiter", "date_of_birth": "1981-01-01",
        "home_location_id": clinic["location_id"]})
    joined = await api("booking", "POST", "/waitlist", json={
        "patient_id": patient.json()["id"], "location_id": clinic["location_id"], **entry})
    assert joined.status_code == 201, joined.text
    return patient.json()["id"], joined.json()["id"]


async def test_the_waitlist_is_offered_only_hours_its_patient_can_take(api, clinic):
    """A therapist off sick has her day's sessions cancelled: those hours are offered to no
    one. A patient booked elsewhere at the hour, or waiting for a longer session, is passed
    over for the next one, and keeps their place for the next hour."""
    monday = next_monday(2)
    sick_day = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 9)))
    assert sick_day.status_code == 201, sick_day.text
    busy_patient, busy_entry = await _waiting_patient(api, clinic, "Busy")
    other = await api("booking", "POST", "/therapists", json={
        "location_ids": [clinic["location_id"]], "display_name": "Omar Haddad"})
    await api("booking", "PUT",
              f"/therapists/{other.json()['id']}/working-hours/{clinic['location_id']}",
              json={"working_hours": {"mon": [{"opens": "09:00", "closes": "17:00"}]}})
    elsewhere = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 10), patient_id=busy_patient, therapist_id=other.json()["id"]))
    assert elsewhere.status_code == 201, elsewhere.text
    await api("booking", "PUT", "/appointment-types/reassessment", json={"minutes": 90})
    _long_patient, long_entry = await _waiting_patient(api, clinic, "Long",
                                                       appointment_type="reassessment")
    free_patient, free_entry = await _waiting_patient(api, clinic, "Free")

    off = await api("booking", "POST", f"/therapists/{clinic['therapist_id']}/time-off", json={
        "starts_at": local(monday, 0).isoformat(),
        "ends_at": local(monday, 12).isoformat()})
    assert off.status_code == 201, off.text
    cancelled = await api("booking", "POST", f"/appointments/{sick_day.json()['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["offered_to"] is None  # she is off: nobody can take it

    ten = await api("booking", "POST", "/appointments", json=booking(clinic, local(monday, 14)))
    assert ten.status_code == 201, ten.text
    busy_again = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 14), patient_id=busy_patient, therapist_id=other.json()["id"]))
    assert busy_again.status_code == 201, busy_again.text
    cancelled = await api("booking", "POST", f"/appointments/{ten.json()['id']}/cancel")
    assert cancelled.json()["offered_to"] == free_entry  # busy then, and 90 minutes wanted
    listed = {e["entry_id"]: e["status"] for e in (await api(
        "booking", "GET", f"/waitlist?location_id={clinic['location_id']}")).json()}
    assert listed == {busy_entry: "waiting", long_entry: "waiting", free_entry: "offered"}
    taken = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(monday, 14), patient_id=free_patient, waitlist_entry_id=free_entry))
    assert taken.status_code == 201, taken.text


async def test_booking_from_the_waitlist_takes_only_that_patients_entry_there(api, clinic):
    """The entry a booking names must be the booked patient's, at the booked location: a
    slip of the form never takes someone else off the waitlist."""
    _someone, entry = await _waiting_patient(api, clinic, "Someone")
    wrong = await api("booking", "POST", "/appointments", json=booking(
        clinic, local(next_monday(2), 9), waitlist_entry_id=entry))
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["type"] == "/problems/waitlist-entry-elsewhere"
    listed = (await api("booking", "GET",
                        f"/waitlist?location_id={clinic['location_id']}")).json()
    assert [(e["entry_id"], e["status"]) for e in listed] == [(entry, "waiting")]


async def test_a_search_at_the_calendars_ends_is_refused_not_an_error(api, clinic):
    for day in ("9999-12-31", "0001-01-01"):
        found = await api("booking", "GET", f"/availability?location_id={clinic['location_id']}"
                                            f"&appointment_type=treatment_session"
                                            f"&start_date={day}")
        assert found.status_code == 422, (day, found.text)
        assert found.headers["content-type"] == "application/problem+json"
    takings = await api("billing", "GET", "/takings?day=0001-01-01")
    assert takings.status_code == 422, takings.text


async def test_overlapping_stretches_of_a_day_are_refused_and_the_hours_kept(api, clinic):
    overlapping = {"mon": [{"opens": "08:00", "closes": "12:00"},
                           {"opens": "08:30", "closes": "11:00"}]}
    where = f"/locations/{clinic['location_id']}"
    for path, body in (
            (f"{where}/opening-hours", {"opening_hours": overlapping}),
            (f"/therapists/{clinic['therapist_id']}/working-hours/{clinic['location_id']}",
             {"working_hours": overlapping})):
        refused = await api("booking", "PUT", path, json=body)
        assert refused.status_code == 422, (path, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "08:00-12:00 and 08:30-11:00 overlap" in refused.text
    new = await api("booking", "POST", "/locations", json={
        "name": "Twice", "timezone": "Europe/Berlin", "opening_hours": overlapping})
    assert new.status_code == 422, new.text
    assert (await api("booking", "GET", where)).json()["opening_hours"] == WEEKDAYS_8_TO_18
    # The therapist's Monday is still 09-17: one hour's slots from 09:00, none twice.
    monday = next_monday(3)
    slots = (await api("booking", "GET",
                       f"/availability?location_id={clinic['location_id']}"
                       f"&appointment_type=treatment_session&start_date={monday}"
                       f"&end_date={monday}")).json()
    starts = [s["starts_at"] for s in slots]
    assert starts and len(starts) == len(set(starts))
    assert min(datetime.fromisoformat(s) for s in starts) == local(monday, 9)
