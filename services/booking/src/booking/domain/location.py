"""Location: a clinic site of the organization, with its IANA timezone (appointments are
stored in UTC and shown in the location's time), its weekly opening hours and closures."""

from __future__ import annotations

from datetime import date, datetime
from typing import assert_never
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from booking.domain.errors import (
    AlreadyExistsError,
    InvalidClosureError,
    InvalidTimezoneError,
    LocationNotFoundError,
)
from booking.domain.schedule import Closure, LocationCalendar
from kinetic_contracts.booking.v1.events import (
    LocationClosureAdded,
    LocationHoursSet,
    LocationRegistered,
    WeeklyHours,
)


class RegisterLocation(BaseModel):
    model_config = ConfigDict(frozen=True)
    location_id: UUID
    name: str = Field(min_length=1, max_length=200)
    timezone: str
    late_cancel_hours: int = Field(default=24, ge=0, le=168)
    opening_hours: WeeklyHours | None = None
    now: datetime


class SetOpeningHours(BaseModel):
    model_config = ConfigDict(frozen=True)
    location_id: UUID
    opening_hours: WeeklyHours
    now: datetime


class AddClosure(BaseModel):
    model_config = ConfigDict(frozen=True)
    location_id: UUID
    closure_id: UUID
    first_day: date
    last_day: date
    reason: str = Field(min_length=1, max_length=200)
    now: datetime


class NoLocation(BaseModel):
    model_config = ConfigDict(frozen=True)


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)
    location_id: UUID
    name: str
    timezone: str
    late_cancel_hours: int = 24
    opening_hours: WeeklyHours | None = None
    closures: tuple[tuple[date, date], ...] = ()

    def calendar(self) -> LocationCalendar:
        return LocationCalendar(self.timezone, self.opening_hours,
                                tuple(Closure(first, last) for first, last in self.closures))


LocationState = NoLocation | Location
LocationEvent = LocationRegistered | LocationHoursSet | LocationClosureAdded
LocationCommand = RegisterLocation | SetOpeningHours | AddClosure
INITIAL: LocationState = NoLocation()
EVENT_TYPES: dict[str, type[LocationEvent]] = {
    e.event_type: e for e in (LocationRegistered, LocationHoursSet, LocationClosureAdded)}


def evolve(state: LocationState, event: LocationEvent) -> LocationState:
    match event:
        case LocationRegistered():
            return Location(location_id=event.location_id, name=event.name,
                            timezone=event.timezone, late_cancel_hours=event.late_cancel_hours)
        case LocationHoursSet():
            assert isinstance(state, Location)
            return state.model_copy(update={"opening_hours": event.opening_hours})
        case LocationClosureAdded():
            assert isinstance(state, Location)
            return state.model_copy(
                update={"closures": (*state.closures, (event.first_day, event.last_day))})
        case _:
            assert_never(event)


def decide(command: LocationCommand, state: LocationState) -> list[LocationEvent]:
    match command:
        case RegisterLocation():
            return _register(command, state)
        case SetOpeningHours():
            if _existing(command.location_id, state).opening_hours == command.opening_hours:
                return []
            return [LocationHoursSet(location_id=command.location_id,
                                     opening_hours=command.opening_hours, set_at=command.now)]
        case AddClosure():
            _existing(command.location_id, state)
            if command.last_day < command.first_day:
                raise InvalidClosureError("the closure ends before it starts")
            return [LocationClosureAdded(**command.model_dump(exclude={"now"}),
                                         added_at=command.now)]
        case _:
            assert_never(command)


def _existing(location_id: UUID, state: LocationState) -> Location:
    if not isinstance(state, Location):
        raise LocationNotFoundError(f"location {location_id} not found")
    return state


def _register(command: RegisterLocation, state: LocationState) -> list[LocationEvent]:
    if isinstance(state, Location):
        if state.name == command.name and state.timezone == command.timezone:
            return []
        raise AlreadyExistsError(f"location {command.location_id} already exists")
    try:
        ZoneInfo(command.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTimezoneError(f"{command.timezone!r} is not an IANA timezone") from None
    registered: list[LocationEvent] = [LocationRegistered(
        location_id=command.location_id, name=command.name, timezone=command.timezone,
        late_cancel_hours=command.late_cancel_hours, registered_at=command.now)]
    if command.opening_hours is not None:
        registered.append(LocationHoursSet(location_id=command.location_id,
                                           opening_hours=command.opening_hours,
                                           set_at=command.now))
    return registered
