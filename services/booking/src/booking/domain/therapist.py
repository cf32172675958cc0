"""Therapist: who works at which locations (working hours and time off build on this)."""

from __future__ import annotations

from datetime import datetime
from typing import assert_never
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from booking.domain.errors import AlreadyExistsError, LocationNotFoundError
from kinetic_contracts.booking.v1.events import TherapistRegistered


class RegisterTherapist(BaseModel):
    model_config = ConfigDict(frozen=True)
    therapist_id: UUID
    location_ids: list[UUID] = Field(min_length=1)
    now: datetime
    unknown_locations: list[UUID] = Field(default_factory=list)


class NoTherapist(BaseModel):
    model_config = ConfigDict(frozen=True)


class Therapist(BaseModel):
    model_config = ConfigDict(frozen=True)
    therapist_id: UUID
    location_ids: frozenset[UUID]


TherapistState = NoTherapist | Therapist
INITIAL: TherapistState = NoTherapist()
EVENT_TYPES = {TherapistRegistered.event_type: TherapistRegistered}


def evolve(state: TherapistState, event: TherapistRegistered) -> TherapistState:
    match event:
        case TherapistRegistered():
            return Therapist(therapist_id=event.therapist_id,
                             location_ids=frozenset(event.location_ids))
        case _:
            assert_never(event)


def decide(command: RegisterTherapist, state: TherapistState) -> list[TherapistRegistered]:
    if isinstance(state, Therapist):
        raise AlreadyExistsError(f"therapist {command.therapist_id} already exists")
    if command.unknown_locations:
        raise LocationNotFoundError(f"location {command.unknown_locations[0]} does not exist")
    return [TherapistRegistered(therapist_id=command.therapist_id,
                                location_ids=sorted(set(command.location_ids), key=str),
                                registered_at=command.now)]
