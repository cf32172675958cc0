"""Booking's HTTP API for therapists and appointments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.adapters.commands import event_context, execute
from booking.adapters.projections import appointments, patients, therapists
from booking.application import availability, handlers
from booking.domain import appointment, therapist, waitlist
from booking.domain.errors import (
    AppointmentNotFoundError,
    LocationNotVisibleError,
    TherapistNotFoundError,
)
from booking.domain.therapist import AddTimeOff, RegisterTherapist, SetWorkingHours
from kinetic_contracts.booking.v1.events import AppointmentType, WeeklyHoursIn
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.event_store.decider import handle, load
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import CurrentStaff, ForbiddenError, Staff
from kinetic_infra.http.headers import IdempotencyKey
from kinetic_infra.read_models import fetch_all, fetch_one
from kinetic_infra.service.definition import Runtime

FRONT_DESK = (Role.FRONT_DESK, Role.OPERATOR)
SCHEDULE_READERS = (Role.FRONT_DESK, Role.THERAPIST, Role.OPERATOR)


class TherapistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location_ids: list[UUID] = Field(min_length=1, max_length=50)
    display_name: str | None = Field(default=None, min_length=1, max_length=100,
                                     examples=["Tara Nguyen"])


class TherapistOut(BaseModel):
    therapist_id: UUID
    location_ids: list[UUID]
    display_name: str | None
    registered_at: datetime


class WorkingHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    working_hours: WeeklyHoursIn = Field(
        description="Per weekday, in the location's timezone; a missing weekday is a day "
                    "off; a day's stretches may touch, never overlap",
        examples=[{"mon": [{"opens": "08:00", "closes": "12:00"},
                           {"opens": "13:00", "closes": "17:00"}]}])


class TimeOffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class AppointmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: UUID
    therapist_id: UUID
    location_id: UUID
    episode_id: UUID | None = Field(
        default=None, description="The episode's first session must be an initial assessment")
    appointment_type: AppointmentType
    starts_at: AwareDatetime = Field(description="With its UTC offset, e.g. 2027-03-01T09:00+01:00")
    minutes: int | None = Field(default=None, ge=15, le=240,
                                description="Default: the organization's length for the type")
    waitlist_entry_id: UUID | None = Field(
        default=None, description="Booking a waitlist offer: the entry leaves the waitlist")


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    starts_at: AwareDatetime
    therapist_id: UUID | None = Field(default=None,
                                      description="Another therapist at the same location")


class ReverseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason_code: Literal["recorded_in_error", "fee_waived"] = Field(
        description="recorded_in_error: the completion or no-show did not happen; "
                    "fee_waived: the clinic waives the charge as goodwill")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by_clinic: bool = Field(
        default=False, description="The clinic cancels, not the patient (a therapist off sick, "
                                   "a room out of use): never a late cancellation, so no fee, "
                                   "however close the session")


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
    reminded_at: datetime | None
    replaces: UUID | None = Field(
        default=None, description="The no-show recorded in error this appointment stands for")


class ScheduledOut(AppointmentOut):
    patient_name: str = Field(description="For the front desk's day view")


class Created(BaseModel):
    id: UUID


class CancelOut(BaseModel):
    appointment_id: UUID
    late: bool = Field(description="Inside the location's late-cancellation window (never for "
                                   "the clinic's own cancellation)")
    by_clinic: bool = Field(description="The clinic cancelled, not the patient")
    offered_to: UUID | None = Field(
        description="The waitlist entry the freed hour was offered to, if any")


def _at(principal: Principal, location_id: UUID) -> None:
    if not principal.can_at(location_id, FRONT_DESK):
        raise ForbiddenError("booking at this location needs the front desk or operator role")


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["appointments"], route_class=AuditedRoute)
    db, store = runtime.db, runtime.store

    async def booked(conn: AsyncConnection, principal: Principal, appointment_id: UUID,
                     request: Request, roles: tuple[Role, ...]) -> appointment.AppointmentState:
        """The appointment's state; one at a location where the caller has no such role
        reads as unknown."""
        state, _ = await load(conn, store, handlers.appointment_stream(appointment_id),
                              appointment, tenant_id=principal.tenant_id)
        if isinstance(state, appointment.NoAppointment) or not principal.can_at(
                state.booked.location_id, roles):
            raise AppointmentNotFoundError(f"appointment {appointment_id} not found")
        note(request).patient_id = state.booked.patient_id
        note(request).location_id = state.booked.location_id
        return state

    async def appointment_row(appointment_id: UUID, principal: Principal) -> dict[str, Any]:
        return await fetch_one(db, appointments, appointments.c.appointment_id, appointment_id,
                               principal, AppointmentNotFoundError(
                                   f"appointment {appointment_id} not found"),
                               location=appointments.c.location_id, roles=SCHEDULE_READERS)

    @api.post("/therapists", status_code=status.HTTP_201_CREATED, response_model=Created,
              summary="Register a therapist at one or more locations (operator)")
    async def register_therapist(body: TherapistIn, principal: Staff(Role.OPERATOR),
                                 idempotency_key: IdempotencyKey = None) -> Created:
        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, str]:
            therapist_id = new_id()
            unknown = [loc for loc in body.location_ids if not await handlers.stream_exists(
                conn, store, handlers.location_stream(loc), principal.tenant_id)]
            command = RegisterTherapist(therapist_id=therapist_id, now=datetime.now(UTC),
                                        unknown_locations=unknown, **body.model_dump())
            await handlers.register_therapist(conn, store, command,
                                              event_context(principal.tenant_id, command_id))
            return {"id": str(therapist_id)}

        return Created(**await execute(db, "booking.therapists", principal, idempotency_key,
                                       work, body))

    @api.get("/therapists", response_model=list[TherapistOut], summary="The therapists")
    async def list_therapists(principal: CurrentStaff) -> list[dict[str, Any]]:
        return await fetch_all(db, therapists, principal, therapists.c.registered_at)

    @api.put("/therapists/{therapist_id}/working-hours/{location_id}",
             status_code=status.HTTP_204_NO_CONTENT,
             summary="Set a therapist's weekly working hours at a location (front desk)")
    async def set_working_hours(therapist_id: UUID, location_id: UUID, body: WorkingHoursIn,
                                principal: Staff(*FRONT_DESK)) -> None:
        _at(principal, location_id)

        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, Any]:
            await handle(conn, store, handlers.therapist_stream(therapist_id),
                         therapist, SetWorkingHours(
                             therapist_id=therapist_id, location_id=location_id,
                             working_hours=body.working_hours, now=datetime.now(UTC)),
                         tenant_id=principal.tenant_id,
                         context=event_context(principal.tenant_id, command_id,
                                               location_id=location_id))
            return {}

        await execute(db, "booking.working-hours", principal, None, work)

    @api.post("/therapists/{therapist_id}/time-off", status_code=status.HTTP_201_CREATED,
              response_model=Created, summary="Record time off (front desk)")
    async def add_time_off(therapist_id: UUID, body: TimeOffIn, principal: Staff(*FRONT_DESK),
                           idempotency_key: IdempotencyKey = None) -> Created:
        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, str]:
            found = await handlers.load_therapist(conn, store, therapist_id, principal.tenant_id)
            if found is None or not any(principal.can_at(loc, FRONT_DESK)
                                        for loc in found.location_ids):
                raise TherapistNotFoundError(f"therapist {therapist_id} not found")
            time_off_id = new_id()
            await handle(conn, store, handlers.therapist_stream(therapist_id),
                         therapist, AddTimeOff(
                             therapist_id=therapist_id, time_off_id=time_off_id,
                             starts_at=body.starts_at.astimezone(UTC),
                             ends_at=body.ends_at.astimezone(UTC), now=datetime.now(UTC)),
                         tenant_id=principal.tenant_id,
                         context=event_context(principal.tenant_id, command_id))
            return {"id": str(time_off_id)}

        return Created(**await execute(db, "booking.time-off", principal, idempotency_key, work,
                                       (therapist_id, body)))

    @api.post("/appointments", status_code=status.HTTP_201_CREATED, response_model=Created,
              summary="Book a one-on-one session (front desk)",
              responses={409: {"description": "The therapist or the patient is already booked"}},
              openapi_extra=audited("create", "appointment"))
    async def book(request: Request, body: AppointmentIn, principal: Staff(*FRONT_DESK),
                   idempotency_key: IdempotencyKey = None) -> Created:
        note(request).patient_id, note(request).location_id = body.patient_id, body.location_id
        _at(principal, body.location_id)

        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, str]:
            tenant, now, appointment_id = principal.tenant_id, datetime.now(UTC), new_id()
            facts = await handlers.booking_facts(
                conn, store, patient_id=body.patient_id, location_id=body.location_id,
                therapist_id=body.therapist_id, episode_id=body.episode_id, tenant_id=tenant)
            command = appointment.BookAppointment(
                appointment_id=appointment_id, now=now, patient_exists=facts.patient_exists,
                location=facts.location, therapist=facts.therapist, episode=facts.episode,
                minutes=body.minutes or await availability.minutes_for(
                    conn, body.appointment_type),
                **body.model_dump(exclude={"starts_at", "minutes", "waitlist_entry_id"}),
                starts_at=body.starts_at.astimezone(UTC))
            context = event_context(tenant, command_id, location_id=body.location_id,
                                    episode_id=body.episode_id)
            await handlers.book_appointment(conn, store, command, context)
            if body.waitlist_entry_id is not None:
                await handle(conn, store, handlers.waitlist_stream(body.waitlist_entry_id),
                             waitlist, waitlist.LeaveWaitlist(
                                 entry_id=body.waitlist_entry_id, reason="booked", now=now,
                                 booked_patient_id=body.patient_id,
                                 booked_location_id=body.location_id),
                             tenant_id=tenant, context=context)
            return {"id": str(appointment_id)}

        created = Created(**await execute(db, "booking.appointments", principal,
                                          idempotency_key, work, body))
        note(request).resource_id = str(created.id)
        return created

    @api.get("/appointments/{appointment_id}", response_model=AppointmentOut,
             summary="One appointment", openapi_extra=audited("read", "appointment"))
    async def get_appointment(request: Request, appointment_id: UUID,
                              principal: Staff(*SCHEDULE_READERS)) -> dict[str, Any]:
        row = await appointment_row(appointment_id, principal)
        note(request).patient_id, note(request).location_id = row["patient_id"], row["location_id"]
        return row

    @api.get("/appointments", response_model=list[ScheduledOut],
             summary="Appointments of a location in a time range (the day or week view)",
             openapi_extra=audited("list", "appointment"))
    async def list_appointments(request: Request, location_id: UUID, start: AwareDatetime,
                                end: AwareDatetime, principal: Staff(*SCHEDULE_READERS)
                                ) -> list[dict[str, Any]]:
        note(request).location_id = location_id
        if not principal.can_at(location_id, SCHEDULE_READERS):
            raise LocationNotVisibleError("you hold no role at this location")
        async with db.read(principal.tenant_id) as conn:
            name = patients.c.given_name + " " + patients.c.family_name
            rows = await conn.execute(
                select(appointments, name.label("patient_name"))
                .join(patients, patients.c.patient_id == appointments.c.patient_id)
                .where(appointments.c.location_id == location_id,
                       appointments.c.starts_at < end, appointments.c.ends_at > start)
                .order_by(appointments.c.starts_at).limit(2000))
            return [dict(r) for r in rows.mappings()]

    @api.post("/appointments/{appointment_id}/reschedule", response_model=AppointmentOut,
              summary="Move a booked session to another time or therapist (front desk)",
              responses={409: {"description": "The therapist or the patient is already booked"}},
              openapi_extra=audited("reschedule", "appointment"))
    async def reschedule(request: Request, appointment_id: UUID, body: RescheduleIn,
                         principal: Staff(*FRONT_DESK)) -> dict[str, Any]:
        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, Any]:
            tenant = principal.tenant_id
            state = await booked(conn, principal, appointment_id, request, FRONT_DESK)
            b = state.booked
            therapist_id = body.therapist_id or b.therapist_id
            await handle(conn, store, handlers.appointment_stream(appointment_id), appointment,
                         appointment.RescheduleAppointment(
                             appointment_id=appointment_id, now=datetime.now(UTC),
                             starts_at=body.starts_at.astimezone(UTC),
                             location=await handlers.load_location(conn, store, b.location_id,
                                                                   tenant),
                             therapist=await handlers.load_therapist(conn, store, therapist_id,
                                                                     tenant),
                             episode=None if b.episode_id is None else await handlers.moving_facts(
                                 conn, store, b.episode_id, appointment_id, tenant)),
                         tenant_id=tenant, context=event_context(
                             tenant, command_id, location_id=b.location_id,
                             episode_id=b.episode_id))
            return {}

        await execute(db, "booking.reschedule", principal, None, work)
        return await appointment_row(appointment_id, principal)

    @api.post("/appointments/{appointment_id}/cancel", response_model=CancelOut,
              summary="Cancel; the location's window decides whether the patient's cancellation "
                      "is a late cancel (the clinic's, by_clinic, never is), and the freed hour "
                      "is offered to the waitlist",
              openapi_extra=audited("cancel", "appointment"))
    async def cancel(request: Request, appointment_id: UUID, principal: Staff(*FRONT_DESK),
                     body: CancelIn | None = None) -> CancelOut:
        by_clinic = body is not None and body.by_clinic

        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, Any]:
            tenant, now = principal.tenant_id, datetime.now(UTC)
            state = await booked(conn, principal, appointment_id, request, FRONT_DESK)
            freed = state.booked
            context = event_context(tenant, command_id, location_id=freed.location_id)
            late = await handlers.cancel_appointment(conn, store, appointment.CancelAppointment(
                appointment_id=appointment_id, now=now, by_clinic=by_clinic,
                late_cancel_hours=await handlers.late_cancel_hours(
                    conn, store, freed.location_id, tenant)), context)
            offered = await handlers.offer_freed_hour(conn, store, freed, now, context)
            return {"late": late, "offered_to": str(offered) if offered else None}

        result = await execute(db, "booking.cancel", principal, None, work)
        return CancelOut(appointment_id=appointment_id, by_clinic=by_clinic, **result)

    @api.post("/appointments/{appointment_id}/reverse", response_model=AppointmentOut,
              summary="Reverse a completion or no-show recorded in error, or waive a late "
                      "cancellation's fee; billing credits what it charged (front desk)",
              openapi_extra=audited("reverse", "appointment"))
    async def reverse(request: Request, appointment_id: UUID, body: ReverseIn,
                      principal: Staff(*FRONT_DESK)) -> dict[str, Any]:
        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, Any]:
            b = (await booked(conn, principal, appointment_id, request, FRONT_DESK)).booked
            await handlers.reverse_outcome(conn, store, appointment.ReverseOutcome(
                appointment_id=appointment_id, reason_code=body.reason_code,
                now=datetime.now(UTC)),
                event_context(principal.tenant_id, command_id, location_id=b.location_id,
                              episode_id=b.episode_id))
            return {}

        await execute(db, "booking.reverse", principal, None, work)
        return await appointment_row(appointment_id, principal)

    @api.post("/appointments/{appointment_id}/arrived", response_model=AppointmentOut,
              status_code=status.HTTP_201_CREATED,
              summary="The patient recorded as a no-show did come: the no-show is reversed "
                      "(recorded in error) and a replacement appointment for its hour is "
                      "checked in; billing credits the no-show fee and charges the session "
                      "once it is completed (front desk)",
              responses={409: {"description": "Not a no-show, or the hour went to another "
                                              "patient meanwhile"}},
              openapi_extra=audited("arrived-after-no-show", "appointment"))
    async def arrived(request: Request, appointment_id: UUID, principal: Staff(*FRONT_DESK)
                      ) -> dict[str, Any]:
        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, Any]:
            b = (await booked(conn, principal, appointment_id, request, FRONT_DESK)).booked
            replacement = await handlers.arrive_after_no_show(
                conn, store, appointment_id, datetime.now(UTC), event_context(
                    principal.tenant_id, command_id, location_id=b.location_id,
                    episode_id=b.episode_id))
            return {"id": str(replacement)}

        # The audit names the no-show (the path's id); the event chain names the replacement.
        replacement = UUID((await execute(db, "booking.arrived", principal, None, work))["id"])
        return await appointment_row(replacement, principal)

    def arrival(outcome: str, action: str, summary: str) -> None:
        @api.post(f"/appointments/{{appointment_id}}/{action}",
                  response_model=AppointmentOut, summary=summary,
                  openapi_extra=audited(outcome, "appointment"), name=outcome)
        async def record(request: Request, appointment_id: UUID,
                         principal: Staff(*SCHEDULE_READERS)) -> dict[str, Any]:
            async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, Any]:
                b = (await booked(conn, principal, appointment_id, request,
                                  SCHEDULE_READERS)).booked
                await handlers.record_arrival(conn, store, appointment.RecordArrival(
                    appointment_id=appointment_id, outcome=outcome, now=datetime.now(UTC)),
                    event_context(principal.tenant_id, command_id, location_id=b.location_id,
                                  episode_id=b.episode_id))
                return {}

            await execute(db, f"booking.{action}", principal, None, work)
            return await appointment_row(appointment_id, principal)

    arrival("checked_in", "check-in", "The patient has arrived (front desk or therapist)")
    arrival("completed", "complete", "The session took place (after check-in)")
    arrival("no_show", "no-show", "The patient did not come (after the start, no check-in)")
    return api
