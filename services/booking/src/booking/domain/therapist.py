"""Therapist: the locations they work at, their weekly working hours at each (in that
location's timezone) and their time off."""

from __future__ import annotations

from datetime import datetime
from typing import assert_never
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from booking.domain.errors import (
    AlreadyExistsError,
    InvalidTimeOffError,
    LocationNotFoundError,
    NotAtLocationError,
    TherapistNotFoundError,
)
from booking.domain.schedule import Interval, TherapistCalendar
from kinetic_contracts.booking.v1.events import (
    TherapistHoursSet,
    TherapistRegistered,
    TherapistTimeOffAdded,
    WeeklyHours,
)


class RegisterTherapist(BaseModel):
    model_config = ConfigDict(frozen=True)
    therapist_id: UUID
    location_ids: list[UUID] = Field(min_length=1)
    display_name: str | None = Field(default=None, max_length=100)
    now: datetime
    unknown_locations: list[UUID] = Field(default_factory=list)


class SetWorkingHours(BaseModel):
    model_config = ConfigDict(frozen=True)
    therapist_id: UUID
    location_id: UUID
    working_hours: WeeklyHours
    now: datetime


class AddTimeOff(BaseModel):
    model_config = ConfigDict(frozen=True)
    therapist_id: UUID
    time_off_id: UUID
    starts_at: datetime
    ends_at: datetime
    now: datetime


class NoTherapist(BaseModel):
    model_config = ConfigDict(frozen=True)


class Therapist(BaseModel):
    model_config = ConfigDict(frozen=True)
    therapist_id: UUID
    location_ids: frozenset[UUID]
    working_hours: dict[UUID, WeeklyHours] = Field(default_factory=dict)
    time_off: tuple[Interval, ...] = ()

    def calendar(self, location_id: UUID) -> TherapistCalendar:
        """For checking a booking: hours at that location, with time off as busy time."""
        return TherapistCalendar(self.therapist_id, self.working_hours.get(location_id),
                                 self.time_off)


TherapistState = NoTherapist | Therapist
TherapistEvent = TherapistRegistered | TherapistHoursSet | TherapistTimeOffAdded
TherapistCommand = RegisterTherapist | SetWorkingHours | AddTimeOff
INITIAL: TherapistState = NoTherapist()
EVENT_TYPES: dict[str, type[TherapistEvent]] = {
    e.event_type: e for e in (TherapistRegistered, TherapistHoursSet, TherapistTimeOffAdded)}


def evolve(state: TherapistState, event: TherapistEvent) -> TherapistState:
    match event:
        case TherapistRegistered():
            return Therapist(therapist_id=event.therapist_id,
                             location_ids=frozenset(event.location_ids))
        case TherapistHoursSet():
            assert isinstance(state, Therapist)
            return state.model_copy(update={"working_hours": {
                **state.working_hours, event.location_id: event.working_hours}})
        case TherapistTimeOffAdded():
            assert isinstance(state, Therapist)
            return state.model_copy(
                update={"time_off": (*state.time_off, (event.starts_at, event.ends_at))})
        case _:
            assert_never(event)


def decide(command: TherapistCommand, state: TherapistState) -> list[TherapistEvent]:
    match command:
        case RegisterTherapist():
            if isinstance(state, Therapist):
                raise AlreadyExistsError(f"therapist {command.therapist_id} already exists")
            if command.unknown_locations:
                raise LocationNotFoundError(
                    f"location {command.unknown_locations[0]} does not exist")
            return [TherapistRegistered(therapist_id=command.therapist_id,
                                        location_ids=sorted(set(command.location_ids), key=str),
                                        display_name=command.display_name,
                                        registered_at=command.now)]
        case SetWorkingHours():
            therapist = _existing(command.therapist_id, state)
            if command.location_id not in therapist.location_ids:
                raise NotAtLocationError("the therapist does not work at that location")
            if therapist.working_hours.get(command.location_id) == command.working_hours:
                return []
            return [TherapistHoursSet(therapist_id=command.therapist_id,
                                      location_id=command.location_id,
                                      working_hours=command.working_hours, set_at=command.now)]
        case AddTimeOff():
            _existing(command.therapist_id, state)
            if command.ends_at <= command.starts_at:
                raise InvalidTimeOffError("time off ends before it starts")
            return [TherapistTimeOffAdded(**command.model_dump(exclude={"now"}),
                                          added_at=command.now)]
        case _:
            assert_never(command)


def _existing(therapist_id: UUID, state: TherapistState) -> Therapist:
    if not isinstance(state, Therapist):
        raise TherapistNotFoundError(f"therapist {therapist_id} not found")
    return state
