"""Booking's HTTP API for the front desk's lists: the waitlist and the "to book" list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.adapters.commands import event_context, execute
from booking.adapters.http_schedule import SlotOut
from booking.adapters.projections import locations, patients, waitlist as waitlist_rows
from booking.application import availability, handlers
from booking.application.to_book import HORIZON_DAYS, to_book
from booking.domain import waitlist
from booking.domain.errors import LocationNotVisibleError, WaitlistEntryNotFoundError
from kinetic_contracts.booking.v1.events import AppointmentType
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.event_store.decider import handle, load
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import ForbiddenError, Staff
from kinetic_infra.http.headers import IdempotencyKey
from kinetic_infra.service.definition import Runtime

FRONT_DESK = (Role.FRONT_DESK, Role.OPERATOR)
NEXT_SLOTS = 3


class WaitlistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: UUID
    location_id: UUID
    therapist_id: UUID | None = Field(default=None, description="Only this therapist (or any)")
    appointment_type: AppointmentType = "treatment_session"
    wants_before: AwareDatetime | None = Field(
        default=None, description="Usually the patient's current appointment")


class WaitlistOut(BaseModel):
    entry_id: UUID
    patient_id: UUID
    given_name: str
    family_name: str
    location_id: UUID
    therapist_id: UUID | None
    appointment_type: str
    wants_before: datetime | None
    joined_at: datetime
    status: str = Field(description="waiting, or offered (an hour was offered to the patient)")
    offered_therapist_id: UUID | None
    offered_starts_at: datetime | None


class ToBookOut(BaseModel):
    episode_id: UUID
    patient_id: UUID
    given_name: str
    family_name: str
    reason: str = Field(description="reassessment_due or under_booked")
    detail: str
    due_by: date | None
    next_slots: list[SlotOut] = Field(
        description="The next free slots at the location of what the entry needs: a "
                    "reassessment, or a treatment session for a plan not booked to frequency")


class Created(BaseModel):
    id: UUID


# What each reason on the list needs booked.
SLOT_KINDS = {"reassessment_due": "reassessment", "under_booked": "treatment_session"}


def search_days(zone: ZoneInfo, now: datetime) -> tuple[date, date]:
    """The local days the list's next slots come from: from the location's today, not UTC's
    (a clinic behind UTC would otherwise lose its evening's free slots once UTC's date has
    moved on), over the list's horizon."""
    today = now.astimezone(zone).date()
    return today, today + timedelta(days=HORIZON_DAYS)


def _front_desk_at(principal: Principal, location_id: UUID) -> None:
    if not principal.can_at(location_id, FRONT_DESK):
        raise LocationNotVisibleError("you hold no front-desk role at this location")


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["front desk"], route_class=AuditedRoute)
    db, store = runtime.db, runtime.store

    @api.post("/waitlist", status_code=status.HTTP_201_CREATED, response_model=Created,
              summary="Put a patient on the waitlist for an earlier slot (front desk)",
              openapi_extra=audited("create", "waitlist"))
    async def join(request: Request, body: WaitlistIn, principal: Staff(*FRONT_DESK),
                   idempotency_key: IdempotencyKey = None) -> Created:
        note(request).patient_id, note(request).location_id = body.patient_id, body.location_id
        if not principal.can_at(body.location_id, FRONT_DESK):
            raise ForbiddenError("the waitlist of this location needs the front desk role")

        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, str]:
            tenant, entry_id = principal.tenant_id, new_id()
            await handle(conn, store, handlers.waitlist_stream(entry_id), waitlist,
                         waitlist.JoinWaitlist(
                             entry_id=entry_id, now=datetime.now(UTC),
                             patient_exists=await handlers.stream_exists(
                                 conn, store, handlers.patient_stream(body.patient_id), tenant),
                             location_exists=await handlers.stream_exists(
                                 conn, store, handlers.location_stream(body.location_id),
                                 tenant),
                             **body.model_dump(exclude={"wants_before"}),
                             wants_before=body.wants_before and body.wants_before.astimezone(UTC)),
                         tenant_id=tenant, context=event_context(
                             tenant, command_id, location_id=body.location_id))
            return {"id": str(entry_id)}

        created = Created(**await execute(db, "booking.waitlist", principal, idempotency_key,
                                          work, body))
        note(request).resource_id = str(created.id)
        return created

    @api.get("/waitlist", response_model=list[WaitlistOut],
             summary="Who waits for an earlier slot at a location, first come first",
             openapi_extra=audited("list", "waitlist"))
    async def list_waitlist(request: Request, location_id: UUID, principal: Staff(*FRONT_DESK)
                            ) -> list[dict[str, Any]]:
        note(request).location_id = location_id
        _front_desk_at(principal, location_id)
        w = waitlist_rows.c
        async with db.read(principal.tenant_id) as conn:
            rows = await conn.execute(
                select(waitlist_rows, patients.c.given_name, patients.c.family_name)
                .join(patients, patients.c.patient_id == w.patient_id)
                .where(w.location_id == location_id, w.status.in_(("waiting", "offered")))
                .order_by(w.joined_at, w.entry_id))
            return [dict(r) for r in rows.mappings()]

    @api.post("/waitlist/{entry_id}/withdraw", status_code=status.HTTP_204_NO_CONTENT,
              summary="Take a patient off the waitlist (front desk)",
              openapi_extra=audited("withdraw", "waitlist"))
    async def withdraw(request: Request, entry_id: UUID, principal: Staff(*FRONT_DESK)) -> None:
        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, Any]:
            tenant = principal.tenant_id
            state, _ = await load(conn, store, handlers.waitlist_stream(entry_id), waitlist,
                                  tenant_id=tenant)
            if not isinstance(state, waitlist.Entry) or not principal.can_at(
                    state.joined.location_id, FRONT_DESK):
                raise WaitlistEntryNotFoundError(f"waitlist entry {entry_id} not found")
            note(request).patient_id = state.joined.patient_id
            note(request).location_id = state.joined.location_id
            await handle(conn, store, handlers.waitlist_stream(entry_id), waitlist,
                         waitlist.LeaveWaitlist(entry_id=entry_id, reason="withdrawn",
                                                now=datetime.now(UTC)),
                         tenant_id=tenant, context=event_context(
                             tenant, command_id, location_id=state.joined.location_id))
            return {}

        await execute(db, "booking.waitlist-withdraw", principal, None, work)

    @api.get("/to-book", response_model=list[ToBookOut],
             summary='The "to book" list: reassessments due and plans not booked to frequency',
             openapi_extra=audited("list", "to-book"))
    async def list_to_book(request: Request, location_id: UUID, principal: Staff(*FRONT_DESK)
                           ) -> list[dict[str, Any]]:
        note(request).location_id = location_id
        _front_desk_at(principal, location_id)
        now = datetime.now(UTC)
        async with db.read(principal.tenant_id) as conn:
            entries = await to_book(conn, location_id, now)
            slots: dict[str, list[SlotOut]] = {}
            for reason in {e.reason for e in entries}:
                slots[reason] = await next_slots(conn, location_id, SLOT_KINDS[reason], now)
        return [{**vars(e), "next_slots": slots[e.reason]} for e in entries]

    async def next_slots(conn: AsyncConnection, location_id: UUID, kind: str, now: datetime
                         ) -> list[SlotOut]:
        """The next free slots of that kind at the location, over the list's horizon."""
        timezone = (await conn.execute(select(locations.c.timezone).where(
            locations.c.location_id == location_id))).scalar_one_or_none()
        if timezone is None:
            return []
        first_day, last_day = search_days(ZoneInfo(timezone), now)
        minutes = await availability.minutes_for(conn, kind)
        found = await availability.search(conn, location_id, first_day, last_day, minutes, now)
        if found is None:
            return []
        calendar, free = found
        return [SlotOut(therapist_id=s.therapist_id, starts_at=s.starts_at.astimezone(
            calendar.zone), ends_at=s.ends_at.astimezone(calendar.zone))
            for s in free[:NEXT_SLOTS]]

    return api
