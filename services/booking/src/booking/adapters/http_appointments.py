"""Booking's HTTP API for therapists and appointments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from booking.adapters.projections import appointments, therapists
from booking.application import handlers
from booking.domain import appointment
from booking.domain.errors import AppointmentNotFoundError, LocationNotVisibleError
from booking.domain.therapist import RegisterTherapist
from kinetic_contracts.booking.v1.events import AppointmentType
from kinetic_infra.auth.principal import Role
from kinetic_infra.commands import run_command
from kinetic_infra.event_store.decider import load
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.event_store.model import EventContext
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import CurrentStaff, ForbiddenError, Staff
from kinetic_infra.read_models import fetch_all, fetch_one
from kinetic_infra.service.definition import Runtime

FRONT_DESK = (Role.FRONT_DESK, Role.OPERATOR)
SCHEDULE_READERS = (Role.FRONT_DESK, Role.THERAPIST, Role.OPERATOR)


class TherapistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location_ids: list[UUID] = Field(min_length=1, max_length=50)


class TherapistOut(BaseModel):
    therapist_id: UUID
    location_ids: list[UUID]
    registered_at: datetime


class AppointmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: UUID
    therapist_id: UUID
    location_id: UUID
    episode_id: UUID | None = None
    appointment_type: AppointmentType
    starts_at: AwareDatetime = Field(description="With its UTC offset, e.g. 2027-03-01T09:00+01:00")
    minutes: int = Field(default=appointment.DEFAULT_MINUTES, ge=15, le=240)


class AppointmentOut(BaseModel):
    appointment_id: UUID
    patient_id: UUID
    therapist_id: UUID
    location_id: UUID
    episode_id: UUID | None
    appointment_type: str
    starts_at: datetime
    ends_at: datetime
    status: str
    late_cancel: bool | None
    booked_at: datetime
    cancelled_at: datetime | None
    checked_in_at: datetime | None
    finished_at: datetime | None


class Created(BaseModel):
    id: UUID


class CancelOut(BaseModel):
    appointment_id: UUID
    late: bool = Field(description="Inside the location's late-cancellation window")


def _at(principal: Any, location_id: UUID) -> None:
    if not principal.can_at(location_id, FRONT_DESK):
        raise ForbiddenError("booking at this location needs the front desk or operator role")


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["appointments"], route_class=AuditedRoute)
    db, store = runtime.db, runtime.store

    def context(tenant: UUID, command_id: UUID, **ids: UUID | None) -> EventContext:
        return EventContext(tenant_id=tenant, correlation_id=command_id,
                            causation_id=command_id, **ids)

    @api.post("/therapists", status_code=status.HTTP_201_CREATED, response_model=Created,
              summary="Register a therapist at one or more locations (operator)")
    async def register_therapist(body: TherapistIn, principal: Staff(Role.OPERATOR)) -> Created:
        therapist_id, command_id = new_id(), new_id()

        async def work(conn: Any) -> dict[str, str]:
            unknown = [loc for loc in body.location_ids if not await handlers.stream_exists(
                conn, store, handlers.location_stream(loc), principal.tenant_id)]
            command = RegisterTherapist(therapist_id=therapist_id, now=datetime.now(UTC),
                                        location_ids=body.location_ids,
                                        unknown_locations=unknown)
            await handlers.register_therapist(conn, store, command,
                                              context(principal.tenant_id, command_id))
            return {"id": str(therapist_id)}

        return Created(id=(await run_command(db, work, tenant_id=principal.tenant_id))["id"])

    @api.get("/therapists", response_model=list[TherapistOut], summary="The therapists")
    async def list_therapists(principal: CurrentStaff) -> list[dict[str, Any]]:
        return await fetch_all(db, therapists, principal, therapists.c.registered_at)

    @api.post("/appointments", status_code=status.HTTP_201_CREATED, response_model=Created,
              summary="Book a one-on-one session (front desk)",
              responses={409: {"description": "The therapist or the patient is already booked"}},
              openapi_extra=audited("create", "appointment"))
    async def book(request: Request, body: AppointmentIn, principal: Staff(*FRONT_DESK)
                   ) -> Created:
        note(request).patient_id, note(request).location_id = body.patient_id, body.location_id
        _at(principal, body.location_id)
        appointment_id, command_id = new_id(), new_id()

        async def work(conn: Any) -> dict[str, str]:
            tenant = principal.tenant_id
            command = appointment.BookAppointment(
                appointment_id=appointment_id, now=datetime.now(UTC),
                patient_exists=await handlers.stream_exists(
                    conn, store, handlers.patient_stream(body.patient_id), tenant),
                therapist_locations=await handlers.therapist_locations(
                    conn, store, body.therapist_id, tenant),
                **body.model_dump(exclude={"starts_at"}),
                starts_at=body.starts_at.astimezone(UTC))
            await handlers.book_appointment(conn, store, command, context(
                tenant, command_id, location_id=body.location_id, episode_id=body.episode_id))
            return {"id": str(appointment_id)}

        created = Created(id=(await run_command(db, work, tenant_id=principal.tenant_id))["id"])
        note(request).resource_id = str(created.id)
        return created

    @api.get("/appointments/{appointment_id}", response_model=AppointmentOut,
             summary="One appointment", openapi_extra=audited("read", "appointment"))
    async def get_appointment(request: Request, appointment_id: UUID,
                              principal: Staff(*SCHEDULE_READERS)) -> dict[str, Any]:
        row = await fetch_one(db, appointments, appointments.c.appointment_id, appointment_id,
                              principal, AppointmentNotFoundError(
                                  f"appointment {appointment_id} not found"),
                              location=appointments.c.location_id, roles=SCHEDULE_READERS)
        note(request).patient_id, note(request).location_id = row["patient_id"], row["location_id"]
        return row

    @api.get("/appointments", response_model=list[AppointmentOut],
             summary="Appointments of a location in a time range (the day or week view)",
             openapi_extra=audited("list", "appointment"))
    async def list_appointments(request: Request, location_id: UUID, start: AwareDatetime,
                                end: AwareDatetime, principal: Staff(*SCHEDULE_READERS)
                                ) -> list[dict[str, Any]]:
        note(request).location_id = location_id
        if not principal.can_at(location_id, SCHEDULE_READERS):
            raise LocationNotVisibleError("you hold no role at this location")
        async with db.read(principal.tenant_id) as conn:
            rows = await conn.execute(
                select(appointments).where(appointments.c.location_id == location_id,
                                           appointments.c.starts_at < end,
                                           appointments.c.ends_at > start)
                .order_by(appointments.c.starts_at).limit(2000))
            return [dict(r) for r in rows.mappings()]

    @api.post("/appointments/{appointment_id}/cancel", response_model=CancelOut,
              summary="Cancel; the location's window decides whether it is a late cancel",
              openapi_extra=audited("cancel", "appointment"))
    async def cancel(request: Request, appointment_id: UUID, principal: Staff(*FRONT_DESK)
                     ) -> CancelOut:
        command_id = new_id()

        async def work(conn: Any) -> dict[str, Any]:
            tenant = principal.tenant_id
            state, _ = await load(conn, store, handlers.appointment_stream(appointment_id),
                                  appointment, tenant_id=tenant)
            if isinstance(state, appointment.NoAppointment):
                raise AppointmentNotFoundError(f"appointment {appointment_id} not found")
            booked = state.booked
            note(request).patient_id, note(request).location_id = (booked.patient_id,
                                                                   booked.location_id)
            _at(principal, booked.location_id)
            late = await handlers.cancel_appointment(conn, store, appointment.CancelAppointment(
                appointment_id=appointment_id, now=datetime.now(UTC),
                late_cancel_hours=await handlers.late_cancel_hours(
                    conn, store, booked.location_id, tenant)),
                context(tenant, command_id, location_id=booked.location_id))
            return {"late": late}

        result = await run_command(db, work, tenant_id=principal.tenant_id)
        return CancelOut(appointment_id=appointment_id, late=result["late"])

    def arrival(outcome: str, action: str, summary: str) -> None:
        @api.post(f"/appointments/{{appointment_id}}/{action}",
                  response_model=AppointmentOut, summary=summary,
                  openapi_extra=audited(outcome, "appointment"), name=outcome)
        async def record(request: Request, appointment_id: UUID,
                         principal: Staff(*SCHEDULE_READERS)) -> dict[str, Any]:
            async def work(conn: Any) -> dict[str, Any]:
                tenant = principal.tenant_id
                state, _ = await load(conn, store, handlers.appointment_stream(appointment_id),
                                      appointment, tenant_id=tenant)
                if isinstance(state, appointment.NoAppointment) or not principal.can_at(
                        state.booked.location_id, SCHEDULE_READERS):
                    raise AppointmentNotFoundError(f"appointment {appointment_id} not found")
                note(request).patient_id = state.booked.patient_id
                note(request).location_id = state.booked.location_id
                await handlers.record_arrival(conn, store, appointment.RecordArrival(
                    appointment_id=appointment_id, outcome=outcome, now=datetime.now(UTC)),
                    context(tenant, new_id(), location_id=state.booked.location_id,
                            episode_id=state.booked.episode_id))
                return {}

            await run_command(db, work, tenant_id=principal.tenant_id)
            return await fetch_one(db, appointments, appointments.c.appointment_id,
                                   appointment_id, principal, AppointmentNotFoundError(
                                       f"appointment {appointment_id} not found"))

    arrival("checked_in", "check-in", "The patient has arrived (front desk or therapist)")
    arrival("completed", "complete", "The session took place (after check-in)")
    arrival("no_show", "no-show", "The patient did not come (after the start, no check-in)")
    return api
