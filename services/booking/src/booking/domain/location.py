"""Location: a clinic site of the organization, with its IANA timezone (appointments are
stored in UTC and shown in the location's time)."""

from __future__ import annotations

from datetime import datetime
from typing import assert_never
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from booking.domain.errors import AlreadyExistsError, InvalidTimezoneError
from kinetic_contracts.booking.v1.events import LocationRegistered


class RegisterLocation(BaseModel):
    model_config = ConfigDict(frozen=True)
    location_id: UUID
    name: str = Field(min_length=1, max_length=200)
    timezone: str
    late_cancel_hours: int = Field(default=24, ge=0, le=168)
    now: datetime


class NoLocation(BaseModel):
    model_config = ConfigDict(frozen=True)


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)
    location_id: UUID
    name: str
    timezone: str
    late_cancel_hours: int = 24


LocationState = NoLocation | Location
LocationEvent = LocationRegistered
INITIAL: LocationState = NoLocation()
EVENT_TYPES: dict[str, type[LocationEvent]] = {LocationRegistered.event_type: LocationRegistered}


def evolve(state: LocationState, event: LocationEvent) -> LocationState:
    match event:
        case LocationRegistered():
            return Location(location_id=event.location_id, name=event.name,
                            timezone=event.timezone, late_cancel_hours=event.late_cancel_hours)
        case _:
            assert_never(event)


def decide(command: RegisterLocation, state: LocationState) -> list[LocationEvent]:
    if isinstance(state, Location):
        if state.name == command.name and state.timezone == command.timezone:
            return []
        raise AlreadyExistsError(f"location {command.location_id} already exists")
    try:
        ZoneInfo(command.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTimezoneError(f"{command.timezone!r} is not an IANA timezone") from None
    return [LocationRegistered(location_id=command.location_id, name=command.name,
                               timezone=command.timezone,
                               late_cancel_hours=command.late_cancel_hours,
                               registered_at=command.now)]
