"""Consents, episode closing, the waitlist and hours as given/when/then: pure, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from booking.domain import episode, location, patient, therapist, waitlist
from booking.domain.errors import (
    ConsentPartnerError,
    EpisodeNotFoundError,
    WaitlistEntryClosedError,
    WaitlistEntryElsewhereError,
)
from kinetic_contracts.booking.v1.events import Hours

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)


def fold(module, events, state=None):
    state = module.INITIAL if state is None else state
    for event in events:
        state = module.evolve(state, event)
    return state


def registered_patient() -> patient.PatientState:
    events = patient.decide(patient.RegisterPatient(
        patient_id=uuid.uuid4(), home_location_id=uuid.uuid4(), given_name="Ada",
        family_name="L", date_of_birth="1990-01-01", now=NOW, home_location_exists=True),
        patient.INITIAL)
    return fold(patient, events)


def consent(state, **values):
    command = patient.RecordConsent(patient_id=state.patient_id, now=NOW, **values)
    return patient.decide(command, state)


def test_a_consent_is_recorded_with_its_version_and_the_same_answer_again_is_not():
    state = registered_patient()
    [given] = consent(state, consent="reminders", granted=True, version="v1")
    assert (given.granted, given.version, given.recorded_at) == (True, "v1", NOW)
    state = fold(patient, [given], state)
    assert consent(state, consent="reminders", granted=True, version="v1") == []
    [withdrawn] = consent(state, consent="reminders", granted=False, version="v1")
    assert withdrawn.granted is False


def test_data_sharing_names_its_partner_and_other_consents_do_not():
    state = registered_patient()
    with pytest.raises(ConsentPartnerError):
        consent(state, consent="data_sharing", granted=True, version="v1")
    with pytest.raises(ConsentPartnerError):
        consent(state, consent="treatment", partner="acme", granted=True, version="v1")
    [shared] = consent(state, consent="data_sharing", partner="acme", granted=True, version="v1")
    assert shared.partner == "acme"


def test_an_episode_closes_once_and_an_unknown_one_is_refused():
    opened = episode.EpisodeOpened(episode_id=uuid.uuid4(), patient_id=uuid.uuid4(),
                                   location_id=uuid.uuid4(), reason="r", symptom_site="knee",
                                   opened_at=NOW)
    state = fold(episode, [opened])
    close = episode.CloseEpisode(episode_id=opened.episode_id, reason="discharged", now=NOW)
    [closed] = episode.decide(close, state)
    assert episode.decide(close, fold(episode, [closed], state)) == []
    with pytest.raises(EpisodeNotFoundError):
        episode.decide(close, episode.INITIAL)


def joined_entry() -> waitlist.WaitlistState:
    [joined] = waitlist.decide(waitlist.JoinWaitlist(
        entry_id=uuid.uuid4(), patient_id=uuid.uuid4(), location_id=uuid.uuid4(),
        appointment_type="treatment_session", now=NOW, patient_exists=True,
        location_exists=True), waitlist.INITIAL)
    return fold(waitlist, [joined])


TOMORROW = NOW + timedelta(days=1)


def offer(state, now=NOW):
    return waitlist.decide(waitlist.OfferSlot(
        entry_id=state.joined.entry_id, therapist_id=uuid.uuid4(), starts_at=TOMORROW,
        ends_at=TOMORROW + timedelta(hours=1), freed_by=uuid.uuid4(), now=now), state)


def test_a_waiting_entry_is_offered_one_hour_and_then_skipped():
    state = joined_entry()
    [offered] = offer(state)
    assert offered.patient_id == state.joined.patient_id
    with pytest.raises(WaitlistEntryClosedError):
        offer(fold(waitlist, [offered], state))


def test_an_offer_whose_hour_began_unbooked_lapses_and_the_entry_takes_the_next():
    state = joined_entry()
    offered = fold(waitlist, offer(state), state)
    with pytest.raises(WaitlistEntryClosedError):
        offer(offered, now=TOMORROW - timedelta(minutes=1))
    [again] = offer(offered, now=TOMORROW)
    assert again.patient_id == state.joined.patient_id


def test_the_first_who_can_take_the_hour_is_offered_it():
    hour = timedelta(hours=1)
    busy, long, free, later = (uuid.uuid4() for _ in range(4))
    candidates = [waitlist.Candidate(busy, patient_busy=True, minutes=60),
                  waitlist.Candidate(long, patient_busy=False, minutes=90),
                  waitlist.Candidate(free, patient_busy=False, minutes=60),
                  waitlist.Candidate(later, patient_busy=False, minutes=45)]
    assert waitlist.first_to_offer(candidates, hour) == free
    assert waitlist.first_to_offer(candidates[:2], hour) is None
    assert waitlist.first_to_offer(candidates[:2], timedelta(minutes=90)) == long


def test_booking_from_an_entry_takes_only_that_patients_entry_at_that_location():
    state = joined_entry()
    j = state.joined
    for patient_id, location_id in ((uuid.uuid4(), j.location_id),
                                    (j.patient_id, uuid.uuid4()), (None, None)):
        with pytest.raises(WaitlistEntryElsewhereError):
            waitlist.decide(waitlist.LeaveWaitlist(
                entry_id=j.entry_id, reason="booked", now=NOW, booked_patient_id=patient_id,
                booked_location_id=location_id), state)
    [left] = waitlist.decide(waitlist.LeaveWaitlist(
        entry_id=j.entry_id, reason="booked", now=NOW, booked_patient_id=j.patient_id,
        booked_location_id=j.location_id), state)
    assert left.reason == "booked"


def test_an_entry_that_left_takes_no_offers():
    state = joined_entry()
    [left] = waitlist.decide(waitlist.LeaveWaitlist(entry_id=state.joined.entry_id,
                                                    reason="withdrawn", now=NOW), state)
    with pytest.raises(WaitlistEntryClosedError):
        offer(fold(waitlist, [left], state))


def test_setting_the_same_hours_again_changes_nothing():
    hours = {"mon": [Hours(opens="08:00", closes="18:00")]}
    site = location.Location(location_id=uuid.uuid4(), name="M", timezone="Europe/Berlin")
    [set_once] = location.decide(location.SetOpeningHours(
        location_id=site.location_id, opening_hours=hours, now=NOW), site)
    site = location.evolve(site, set_once)
    assert location.decide(location.SetOpeningHours(
        location_id=site.location_id, opening_hours=hours, now=NOW), site) == []
    staff = therapist.Therapist(therapist_id=uuid.uuid4(),
                                location_ids=frozenset({site.location_id}))
    command = therapist.SetWorkingHours(therapist_id=staff.therapist_id,
                                        location_id=site.location_id, working_hours=hours,
                                        now=NOW)
    [worked] = therapist.decide(command, staff)
    assert therapist.decide(command, therapist.evolve(staff, worked)) == []
