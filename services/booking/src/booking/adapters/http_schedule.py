"""Booking's HTTP API for schedules: opening hours and closures, appointment types, and
the availability search the day view and the "to book" list use."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import to_json
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.adapters.commands import event_context, execute
from booking.adapters.projections import appointment_types, location_closures
from booking.application import availability, handlers
from booking.domain import appointment_types as catalog
from booking.domain import location
from booking.domain.errors import LocationNotVisibleError
from kinetic_contracts.booking.v1.events import AppointmentType, WeeklyHoursIn
from kinetic_contracts.problems import RuleViolationError
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.event_store.decider import handle
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.event_store.model import StreamName
from kinetic_infra.http.auth import CurrentStaff, ForbiddenError, Staff
from kinetic_infra.http.headers import IdempotencyKey
from kinetic_infra.service.definition import Runtime

SCHEDULE_READERS = (Role.FRONT_DESK, Role.THERAPIST, Role.OPERATOR)
MAX_SEARCH_DAYS = 62
APPOINTMENT_TYPES: tuple[AppointmentType, ...] = ("initial_assessment", "treatment_session",
                                                  "reassessment")


class RangeTooLongError(RuleViolationError):
    type_slug = "range-too-long"
    title = f"Search at most {MAX_SEARCH_DAYS} days at a time"


class OpeningHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opening_hours: WeeklyHoursIn = Field(
        description="Per weekday, in the location's timezone; a missing weekday is "
                    "closed; a day's stretches may touch, never overlap",
        examples=[{"mon": [{"opens": "08:00", "closes": "19:00"}],
                   "sat": [{"opens": "09:00", "closes": "13:00"}]}])


class ClosureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first_day: date
    last_day: date
    reason: str = Field(min_length=1, max_length=200, examples=["Public holiday"])

    @model_validator(mode="after")
    def _ordered(self) -> ClosureIn:
        if self.last_day < self.first_day:
            raise ValueError("last_day is before first_day")
        return self


class ClosureOut(BaseModel):
    closure_id: UUID
    first_day: date
    last_day: date
    reason: str


class AppointmentTypeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: int = Field(ge=15, le=240, examples=[60])


class AppointmentTypeOut(BaseModel):
    appointment_type: AppointmentType
    minutes: int


class SlotOut(BaseModel):
    therapist_id: UUID
    starts_at: datetime = Field(description="In the location's timezone, with its offset")
    ends_at: datetime


class Created(BaseModel):
    id: UUID


def _operator_at(principal: Principal, location_id: UUID) -> None:
    if not principal.can_at(location_id, (Role.OPERATOR,)):
        raise ForbiddenError("setting a location's hours needs the operator role there")


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["schedules"])
    db, store = runtime.db, runtime.store

    async def on_location(principal: Principal, location_id: UUID, key: UUID | None,
                          command: Any, result: dict[str, Any], request: Any = None
                          ) -> dict[str, Any]:
        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, Any]:
            await handle(conn, store, handlers.location_stream(location_id), location, command,
                         tenant_id=principal.tenant_id, context=event_context(
                             principal.tenant_id, command_id, location_id=location_id))
            return result

        return await execute(db, "booking.location-schedule", principal, key, work,
                             (location_id, request))

    @api.put("/locations/{location_id}/opening-hours", status_code=status.HTTP_204_NO_CONTENT,
             summary="Set the weekly opening hours (operator)")
    async def set_opening_hours(location_id: UUID, body: OpeningHoursIn,
                                principal: Staff(Role.OPERATOR)) -> None:
        _operator_at(principal, location_id)
        await on_location(principal, location_id, None, location.SetOpeningHours(
            location_id=location_id, opening_hours=body.opening_hours, now=datetime.now(UTC)),
            {})

    @api.post("/locations/{location_id}/closures", status_code=status.HTTP_201_CREATED,
              response_model=Created, summary="Close the location on whole days (operator)")
    async def add_closure(location_id: UUID, body: ClosureIn, principal: Staff(Role.OPERATOR),
                          idempotency_key: IdempotencyKey = None) -> Created:
        _operator_at(principal, location_id)
        closure_id = new_id()
        result = await on_location(principal, location_id, idempotency_key, location.AddClosure(
            location_id=location_id, closure_id=closure_id, now=datetime.now(UTC),
            **body.model_dump()), {"id": str(closure_id)}, body)
        return Created(**result)

    @api.get("/locations/{location_id}/closures", response_model=list[ClosureOut],
             summary="The location's closures")
    async def list_closures(location_id: UUID, principal: CurrentStaff) -> list[dict[str, Any]]:
        async with db.read(principal.tenant_id) as conn:
            if await availability.location_calendar(conn, location_id) is None:
                raise LocationNotVisibleError(f"location {location_id} not found")
            rows = await conn.execute(select(location_closures).where(
                location_closures.c.location_id == location_id)
                .order_by(location_closures.c.first_day))
            return [dict(r) for r in rows.mappings()]

    @api.put("/appointment-types/{appointment_type}", status_code=status.HTTP_204_NO_CONTENT,
             summary="Set how long the organization's sessions of a type last (operator)")
    async def configure_type(appointment_type: AppointmentType, body: AppointmentTypeIn,
                             principal: Staff(Role.OPERATOR)) -> None:
        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, Any]:
            tenant = principal.tenant_id
            await handle(conn, store, StreamName("appointment_types", tenant), catalog,
                         catalog.ConfigureAppointmentType(
                             organization_id=tenant, appointment_type=appointment_type,
                             minutes=body.minutes, now=datetime.now(UTC)),
                         tenant_id=tenant, context=event_context(tenant, command_id))
            return {}

        await execute(db, "booking.appointment-types", principal, None, work)

    @api.get("/appointment-types", response_model=list[AppointmentTypeOut],
             summary="The organization's appointment types and their lengths")
    async def list_types(principal: CurrentStaff) -> list[dict[str, Any]]:
        async with db.read(principal.tenant_id) as conn:
            rows = dict((await conn.execute(select(appointment_types.c.appointment_type,
                                                   appointment_types.c.minutes))).all())
        return [{"appointment_type": t, "minutes": rows.get(t, 60)} for t in APPOINTMENT_TYPES]

    @api.get("/availability", response_model=list[SlotOut],
             summary="Free slots at a location, in its timezone",
             description="Every free slot of the appointment type's length (or of "
                         "`minutes`) from `start_date` to `end_date` (the location's local "
                         "days, inclusive), within its opening hours, the therapists' working "
                         "hours, outside closures, time off and booked sessions, and not in "
                         "the past.")
    async def search(principal: Staff(*SCHEDULE_READERS), location_id: UUID,
                     appointment_type: AppointmentType, start_date: date,
                     end_date: date | None = None, therapist_id: UUID | None = None,
                     limit: int = Query(default=500, ge=1, le=5000),
                     minutes: int | None = Query(
                         default=None, ge=15, le=240,
                         description="Slots of this length instead of the type's: a session "
                                     "keeps its own length when moved, which may differ from "
                                     "the type's (booked with `minutes`, or before the type's "
                                     "length changed)")) -> Response:
        if not principal.can_at(location_id, SCHEDULE_READERS):
            raise LocationNotVisibleError("you hold no role at this location")
        last = end_date or start_date
        if not timedelta(0) <= last - start_date < timedelta(days=MAX_SEARCH_DAYS):
            raise RangeTooLongError(f"end_date must be within {MAX_SEARCH_DAYS} days after "
                                    "start_date")
        async with db.read(principal.tenant_id) as conn:
            minutes = minutes or await availability.minutes_for(conn, appointment_type)
            found = await availability.search(conn, location_id, start_date, last, minutes,
                                              datetime.now(UTC), therapist_id)
        if found is None:
            raise LocationNotVisibleError(f"location {location_id} not found")
        calendar, slots = found
        zone = calendar.zone
        # Serialised once here, as plain dicts in SlotOut's shape (FastAPI would validate
        # the models again, and building them costs more than the JSON): a four-week search
        # of a busy location returns hundreds of slots.
        return Response(to_json([
            {"therapist_id": s.therapist_id, "starts_at": s.starts_at.astimezone(zone),
             "ends_at": s.ends_at.astimezone(zone)}
            for s in slots[:limit]]), media_type="application/json")

    return api
