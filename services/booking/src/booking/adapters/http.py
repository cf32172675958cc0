"""Booking's HTTP API: locations, patients and episodes of care for the front desk."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from booking.adapters.projections import episodes, locations, patients
from booking.application import handlers
from booking.domain.episode import OpenEpisode
from booking.domain.errors import EpisodeNotFoundError, LocationNotFoundError, PatientNotFoundError
from booking.domain.location import RegisterLocation
from booking.domain.patient import RegisterPatient
from kinetic_infra.commands import run_command
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.event_store.model import EventContext
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import CurrentStaff, ForbiddenError, Staff
from kinetic_infra.http.headers import IdempotencyKey
from kinetic_infra.read_models import fetch_all, fetch_one
from kinetic_infra.service.definition import Runtime


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocationIn(Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Riverside Clinic"])
    timezone: str = Field(min_length=1, max_length=64, examples=["Europe/Berlin"])
    late_cancel_hours: int = Field(default=24, ge=0, le=168,
                                   description="Cancelling closer to the start is a late cancel")


class LocationOut(BaseModel):
    location_id: UUID
    name: str
    timezone: str
    late_cancel_hours: int


class PatientIn(Strict):
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    home_location_id: UUID
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    preferred_language: str | None = Field(default=None, max_length=35, examples=["en"])


class PatientOut(BaseModel):
    patient_id: UUID
    home_location_id: UUID
    given_name: str
    family_name: str
    date_of_birth: date
    email: str | None
    phone: str | None
    preferred_language: str | None
    registered_at: datetime


class EpisodeIn(Strict):
    patient_id: UUID
    location_id: UUID
    reason: str = Field(min_length=1, max_length=2000,
                        examples=["Right knee pain when running, 10 weeks"])
    symptom_site: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$",
                              examples=["knee_anterior"])
    goal: str | None = Field(default=None, max_length=2000,
                             examples=["Run 10 km at pre-injury pace"])
    goal_target_date: date | None = None
    referral: bool = False


class EpisodeOut(BaseModel):
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    reason: str
    symptom_site: str
    goal: str | None
    goal_target_date: date | None
    referral: bool
    status: str
    opened_at: datetime


class Created(BaseModel):
    id: UUID


def _context(tenant_id: UUID, command_id: UUID, **ids: UUID | None) -> EventContext:
    return EventContext(tenant_id=tenant_id, correlation_id=command_id, causation_id=command_id,
                        **ids)


INTAKE = (Role.FRONT_DESK, Role.OPERATOR)
# Who may read a patient's record and an episode's clinical reason and goal. Billing staff
# read patients (to invoice them) but never clinical notes.
PATIENT_READERS = (Role.FRONT_DESK, Role.THERAPIST, Role.BILLING, Role.OPERATOR)
CLINICAL_READERS = (Role.FRONT_DESK, Role.THERAPIST, Role.OPERATOR)


def _intake_at(principal: Principal, location_id: UUID) -> None:
    if not principal.can_at(location_id, INTAKE):
        raise ForbiddenError("intake at this location needs the front desk or operator role")


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["booking"], route_class=AuditedRoute)
    db, store = runtime.db, runtime.store

    async def create(scope: str, principal: Principal, key: UUID | None, work: Any) -> Created:
        command_id = key or new_id()
        # The key is scoped to the organization: another organization reusing a key gets
        # its own effect, never the first organization's result.
        scoped = f"{scope}:{principal.tenant_id}"
        result = await run_command(db, lambda conn: work(conn, command_id),
                                   tenant_id=principal.tenant_id,
                                   idempotency_scope=scoped if key else None,
                                   command_id=str(command_id) if key else None)
        return Created(id=result["id"])

    @api.post("/locations", status_code=status.HTTP_201_CREATED, response_model=Created,
              summary="Register a clinic location (operator)")
    async def register_location(body: LocationIn, principal: Staff(Role.OPERATOR),
                                idempotency_key: IdempotencyKey = None) -> Created:
        async def work(conn: Any, command_id: UUID) -> dict[str, str]:
            location_id = new_id()
            command = RegisterLocation(location_id=location_id, now=datetime.now(UTC),
                                       **body.model_dump())
            await handlers.register_location(conn, store, command, _context(
                principal.tenant_id, command_id, location_id=location_id))
            return {"id": str(location_id)}

        return await create("booking.locations", principal, idempotency_key, work)

    @api.get("/locations", response_model=list[LocationOut],
             summary="The organization's locations")
    async def list_locations(principal: CurrentStaff) -> list[dict[str, Any]]:
        return await fetch_all(db, locations, principal, locations.c.name)

    @api.get("/locations/{location_id}", response_model=LocationOut, summary="One location")
    async def get_location(location_id: UUID, principal: CurrentStaff) -> dict[str, Any]:
        return await fetch_one(db, locations, locations.c.location_id, location_id, principal,
                               LocationNotFoundError(f"location {location_id} not found"))

    @api.post("/patients", status_code=status.HTTP_201_CREATED, response_model=Created,
              summary="Register a patient (front desk)", openapi_extra=audited("create", "patient"))
    async def register_patient(request: Request, body: PatientIn, principal: Staff(*INTAKE),
                               idempotency_key: IdempotencyKey = None) -> Created:
        note(request).location_id = body.home_location_id
        _intake_at(principal, body.home_location_id)

        async def work(conn: Any, command_id: UUID) -> dict[str, str]:
            patient_id = new_id()
            exists = await handlers.stream_exists(
                conn, store, handlers.location_stream(body.home_location_id), principal.tenant_id)
            command = RegisterPatient(patient_id=patient_id, now=datetime.now(UTC),
                                      home_location_exists=exists, **body.model_dump())
            await handlers.register_patient(conn, store, command, _context(
                principal.tenant_id, command_id, location_id=body.home_location_id))
            return {"id": str(patient_id)}

        created = await create("booking.patients", principal, idempotency_key, work)
        note(request).patient_id, note(request).resource_id = created.id, str(created.id)
        return created

    @api.get("/patients/{patient_id}", response_model=PatientOut, summary="One patient",
             openapi_extra=audited("read", "patient"))
    async def get_patient(request: Request, patient_id: UUID, principal: Staff(*PATIENT_READERS)
                          ) -> dict[str, Any]:
        note(request).patient_id = patient_id
        row = await fetch_one(db, patients, patients.c.patient_id, patient_id, principal,
                              PatientNotFoundError(f"patient {patient_id} not found"),
                              location=patients.c.home_location_id, roles=PATIENT_READERS)
        note(request).location_id = row["home_location_id"]
        return row

    @api.post("/episodes", status_code=status.HTTP_201_CREATED, response_model=Created,
              summary="Open an episode of care at intake (front desk)",
              openapi_extra=audited("create", "episode"))
    async def open_episode(request: Request, body: EpisodeIn, principal: Staff(*INTAKE),
                           idempotency_key: IdempotencyKey = None) -> Created:
        note(request).patient_id, note(request).location_id = body.patient_id, body.location_id
        _intake_at(principal, body.location_id)

        async def work(conn: Any, command_id: UUID) -> dict[str, str]:
            episode_id = new_id()
            tenant = principal.tenant_id
            command = OpenEpisode(
                episode_id=episode_id, now=datetime.now(UTC),
                patient_exists=await handlers.stream_exists(
                    conn, store, handlers.patient_stream(body.patient_id), tenant),
                location_exists=await handlers.stream_exists(
                    conn, store, handlers.location_stream(body.location_id), tenant),
                **body.model_dump(),
            )
            await handlers.open_episode(conn, store, command, _context(
                tenant, command_id, location_id=body.location_id, episode_id=episode_id))
            return {"id": str(episode_id)}

        created = await create("booking.episodes", principal, idempotency_key, work)
        note(request).resource_id = str(created.id)
        return created

    @api.get("/episodes/{episode_id}", response_model=EpisodeOut,
             summary="One episode of care, with its clinical reason and goal",
             openapi_extra=audited("read", "episode"))
    async def get_episode(request: Request, episode_id: UUID,
                          principal: Staff(*CLINICAL_READERS)) -> dict[str, Any]:
        row = await fetch_one(db, episodes, episodes.c.episode_id, episode_id, principal,
                              EpisodeNotFoundError(f"episode {episode_id} not found"),
                              location=episodes.c.location_id, roles=CLINICAL_READERS)
        note(request).patient_id, note(request).location_id = row["patient_id"], row["location_id"]
        return row

    return api
