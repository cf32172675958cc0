"""The organization's appointment types and how long each lasts (60 minutes unless the
organization sets otherwise). One stream per organization."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kinetic_contracts.booking.v1.events import AppointmentType, AppointmentTypeConfigured


class ConfigureAppointmentType(BaseModel):
    model_config = ConfigDict(frozen=True)
    organization_id: UUID
    appointment_type: AppointmentType
    minutes: int = Field(ge=15, le=240)
    now: datetime


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True)
    minutes: dict[str, int] = Field(default_factory=dict)


INITIAL = Catalog()
EVENT_TYPES = {AppointmentTypeConfigured.event_type: AppointmentTypeConfigured}


def evolve(state: Catalog, event: AppointmentTypeConfigured) -> Catalog:
    return Catalog(minutes={**state.minutes, event.appointment_type: event.minutes})


def decide(command: ConfigureAppointmentType, state: Catalog) -> list[AppointmentTypeConfigured]:
    if state.minutes.get(command.appointment_type) == command.minutes:
        return []
    return [AppointmentTypeConfigured(**command.model_dump(exclude={"now"}),
                                      configured_at=command.now)]
