"""Patient registration. The stored event keeps the patient's identity and contact details;
the public contract (kinetic.booking.patient.registered.v1) carries ids and the birth year
only. The name and contact details go out once more, restricted
(kinetic.booking.patient.contact_details_recorded.v1), for the partners service alone, which
discloses them per grant and consent: no partner receives a name it was not granted."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal, assert_never
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from booking.domain.errors import (
    AlreadyExistsError,
    ConsentPartnerError,
    DateOfBirthInFutureError,
    ImplausibleDateOfBirthError,
    LocationNotFoundError,
    PatientNotFoundError,
)

from kinetic_contracts.booking.v1 import events as public
from kinetic_contracts.booking.v1.events import (
    ContactDetails,
    PatientConsentRecorded,
    PatientContactDetailsRecorded,
)

EARLIEST_BIRTH_DATE = date(1900, 1, 1)


class PatientRegistered(ContactDetails):
    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str] = "kinetic.booking.patient.registered.v1"

    home_location_id: UUID
    registered_at: datetime

    def to_public(self) -> public.PatientRegistered:
        return public.PatientRegistered(
            patient_id=self.patient_id, home_location_id=self.home_location_id,
            birth_year=self.date_of_birth.year, registered_at=self.registered_at,
        )


class RegisterPatient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    patient_id: UUID
    home_location_id: UUID
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    preferred_language: str | None = Field(default=None, max_length=35)
    now: datetime
    home_location_exists: bool


class RecordConsent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    patient_id: UUID
    consent: Literal["treatment", "data_sharing", "reminders"]
    partner: str | None = Field(default=None, max_length=100)
    granted: bool
    version: str = Field(min_length=1, max_length=40)
    now: datetime


class NoPatient(BaseModel):
    model_config = ConfigDict(frozen=True)


class Patient(BaseModel):
    model_config = ConfigDict(frozen=True)
    patient_id: UUID
    home_location_id: UUID
    # (consent, partner) -> (granted, version): the latest record is in force
    consents: dict[tuple[str, str | None], tuple[bool, str]] = Field(default_factory=dict)


PatientState = NoPatient | Patient
PatientEvent = PatientRegistered | PatientContactDetailsRecorded | PatientConsentRecorded
INITIAL: PatientState = NoPatient()
EVENT_TYPES: dict[str, type[PatientEvent]] = {
    PatientRegistered.event_type: PatientRegistered,
    PatientContactDetailsRecorded.event_type: PatientContactDetailsRecorded,
    PatientConsentRecorded.event_type: PatientConsentRecorded}


def evolve(state: PatientState, event: PatientEvent) -> PatientState:
    match event:
        case PatientRegistered():
            return Patient(patient_id=event.patient_id, home_location_id=event.home_location_id)
        case PatientContactDetailsRecorded():
            return state
        case PatientConsentRecorded():
            assert isinstance(state, Patient)
            return state.model_copy(update={"consents": {
                **state.consents, (event.consent, event.partner): (event.granted, event.version)}})
        case _:
            assert_never(event)


def decide(command: RegisterPatient | RecordConsent, state: PatientState) -> list[PatientEvent]:
    if isinstance(command, RecordConsent):
        return _consent(command, state)
    if isinstance(state, Patient):
        raise AlreadyExistsError(f"patient {command.patient_id} is already registered")
    if not command.home_location_exists:
        raise LocationNotFoundError(f"location {command.home_location_id} does not exist")
    if command.date_of_birth > command.now.date():
        raise DateOfBirthInFutureError("the date of birth is in the future")
    if command.date_of_birth < EARLIEST_BIRTH_DATE:
        # The public contract carries the birth year from 1900 on; an earlier date is a typo.
        raise ImplausibleDateOfBirthError("the date of birth is before 1900")
    registered = PatientRegistered(
        **command.model_dump(exclude={"now", "home_location_exists"}), registered_at=command.now)
    return [registered, PatientContactDetailsRecorded(
        **registered.model_dump(include=set(ContactDetails.model_fields)),
        recorded_at=command.now)]


def _consent(command: RecordConsent, state: PatientState) -> list[PatientEvent]:
    if not isinstance(state, Patient):
        raise PatientNotFoundError(f"patient {command.patient_id} not found")
    if (command.consent == "data_sharing") != (command.partner is not None):
        raise ConsentPartnerError("data sharing names its partner; other consents name none")
    key = (command.consent, command.partner)
    if state.consents.get(key) == (command.granted, command.version):
        return []  # the same answer to the same text again: already on record
    return [PatientConsentRecorded(**command.model_dump(exclude={"now"}),
                                   recorded_at=command.now)]
