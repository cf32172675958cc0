"""Booking's deciders as given/when/then: pure functions, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from booking.domain import episode, location, patient
from booking.domain.errors import (
    AlreadyExistsError,
    DateOfBirthInFutureError,
    ImplausibleDateOfBirthError,
    InvalidTimezoneError,
    LocationNotFoundError,
    PatientNotFoundError,
)
from kinetic_contracts.registry import GRANTABLE_EVENT_TYPES

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def register_patient(**overrides) -> patient.RegisterPatient:
    values = dict(patient_id=uuid.uuid4(), home_location_id=uuid.uuid4(), given_name="Ada",
                  family_name="Lovelace", date_of_birth=date(1996, 4, 2), now=NOW,
                  home_location_exists=True)
    return patient.RegisterPatient(**(values | overrides))


def open_episode(**overrides) -> episode.OpenEpisode:
    values = dict(episode_id=uuid.uuid4(), patient_id=uuid.uuid4(), location_id=uuid.uuid4(),
                  reason="Knee pain on stairs", symptom_site="knee_anterior", now=NOW,
                  patient_exists=True, location_exists=True)
    return episode.OpenEpisode(**(values | overrides))


def test_given_no_patient_when_registered_then_patient_registered_without_phi_in_public_copy():
    event, details = patient.decide(register_patient(), patient.INITIAL)
    assert event.given_name == "Ada"
    public = event.to_public().model_dump()
    assert "given_name" not in public and "family_name" not in public
    assert public["birth_year"] == 1996
    # The name goes out once more, restricted: marked as contact details for the partners
    # service's disclosure, and never a type a partner's grant can name.
    assert (details.given_name, details.data_class) == ("Ada", "contact_details")
    assert details.event_type not in GRANTABLE_EVENT_TYPES


def test_given_registered_patient_when_registered_again_then_already_exists():
    command = register_patient()
    state = patient.evolve(patient.INITIAL, patient.decide(command, patient.INITIAL)[0])
    with pytest.raises(AlreadyExistsError):
        patient.decide(command, state)


def test_given_unknown_home_location_when_registered_then_location_not_found():
    with pytest.raises(LocationNotFoundError):
        patient.decide(register_patient(home_location_exists=False), patient.INITIAL)


def test_given_future_birth_date_when_registered_then_rule_violation():
    with pytest.raises(DateOfBirthInFutureError):
        patient.decide(register_patient(date_of_birth=date(2030, 1, 1)), patient.INITIAL)


def test_given_birth_date_before_1900_when_registered_then_rule_violation():
    with pytest.raises(ImplausibleDateOfBirthError):
        patient.decide(register_patient(date_of_birth=date(1899, 12, 31)), patient.INITIAL)


def test_given_known_patient_when_episode_opened_then_episode_opened_with_public_codes_only():
    [event] = episode.decide(open_episode(), episode.INITIAL)
    public = event.to_public().model_dump()
    assert public["symptom_site"] == "knee_anterior"
    assert "reason" not in public and "goal" not in public


def test_given_unknown_patient_when_episode_opened_then_patient_not_found():
    with pytest.raises(PatientNotFoundError):
        episode.decide(open_episode(patient_exists=False), episode.INITIAL)


def test_given_open_episode_when_opened_again_then_already_exists():
    command = open_episode()
    state = episode.evolve(episode.INITIAL, episode.decide(command, episode.INITIAL)[0])
    with pytest.raises(AlreadyExistsError):
        episode.decide(command, state)


def test_given_unknown_timezone_when_location_registered_then_invalid_timezone():
    with pytest.raises(InvalidTimezoneError):
        location.decide(location.RegisterLocation(location_id=uuid.uuid4(), name="X",
                                                  timezone="Mars/Base", now=NOW),
                        location.INITIAL)


def test_given_registered_location_when_registered_identically_then_nothing_changes():
    command = location.RegisterLocation(location_id=uuid.uuid4(), name="Riverside",
                                        timezone="Europe/Berlin", now=NOW)
    state = location.evolve(location.INITIAL, location.decide(command, location.INITIAL)[0])
    assert location.decide(command, state) == []
