"""Booking's HTTP API: locations, patients and episodes of care for the front desk."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from booking.adapters.projections import episodes, locations, patient_consents, patients
from booking.application import handlers
from booking.domain.episode import OpenEpisode
from booking.domain.errors import EpisodeNotFoundError, LocationNotFoundError, PatientNotFoundError
from booking.domain.location import RegisterLocation
from booking.domain import patient
from booking.domain.patient import RegisterPatient
from kinetic_contracts.booking.v1.events import WeeklyHours, WeeklyHoursIn
from kinetic_infra.event_store.decider import handle
from booking.adapters.commands import Work, event_context, execute
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import CurrentStaff, ForbiddenError, Staff
from kinetic_infra.http.headers import IdempotencyKey
from kinetic_infra.read_models import at_visible_locations, fetch_all, fetch_one
from kinetic_infra.service.definition import Runtime


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocationIn(Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Riverside Clinic"])
    timezone: str = Field(min_length=1, max_length=64, examples=["Europe/Berlin"])
    late_cancel_hours: int = Field(default=24, ge=0, le=168,
                                   description="Cancelling closer to the start is a late cancel")
    opening_hours: WeeklyHoursIn | None = Field(
        default=None, description="Per weekday, local time; without hours: bookable any "
                                  "time; a day's stretches may touch, never overlap",
        examples=[{d: [{"opens": "08:00", "closes": "19:00"}]
                   for d in ("mon", "tue", "wed", "thu", "fri")}])


class LocationOut(BaseModel):
    location_id: UUID
    name: str
    timezone: str
    late_cancel_hours: int
    opening_hours: WeeklyHours | None


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


class PatientCreated(BaseModel):
    id: UUID
    possible_duplicates: list[UUID] = Field(
        description="Patients already registered with the same name and date of birth: check "
                    "before booking (the new record is kept either way)")


class PatientMatch(BaseModel):
    patient_id: UUID
    given_name: str
    family_name: str
    date_of_birth: date
    home_location_id: UUID
    phone: str | None
    email: str | None


class ConsentIn(Strict):
    consent: Literal["treatment", "data_sharing", "reminders"]
    partner: str | None = Field(default=None, min_length=1, max_length=100,
                                description="The named partner, for data sharing only")
    granted: bool
    version: str = Field(min_length=1, max_length=40, examples=["2026-09"],
                         description="Version of the consent text the patient saw")


class ConsentOut(BaseModel):
    consent: str
    partner: str | None
    granted: bool
    version: str
    recorded_at: datetime


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
    closed_at: datetime | None


class Created(BaseModel):
    id: UUID


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

    async def create(scope: str, principal: Principal, key: UUID | None, work: Work,
                     request: Any) -> Created:
        return Created(id=(await execute(db, scope, principal, key, work, request))["id"])

    @api.post("/locations", status_code=status.HTTP_201_CREATED, response_model=Created,
              summary="Register a clinic location (operator)")
    async def register_location(body: LocationIn, principal: Staff(Role.OPERATOR),
                                idempotency_key: IdempotencyKey = None) -> Created:
        async def work(conn: Any, command_id: UUID) -> dict[str, str]:
            location_id = new_id()
            command = RegisterLocation(location_id=location_id, now=datetime.now(UTC),
                                       **body.model_dump())
            await handlers.register_location(conn, store, command, event_context(
                principal.tenant_id, command_id, location_id=location_id))
            return {"id": str(location_id)}

        return await create("booking.locations", principal, idempotency_key, work, body)

    @api.get("/locations", response_model=list[LocationOut],
             summary="The organization's locations")
    async def list_locations(principal: CurrentStaff) -> list[dict[str, Any]]:
        return await fetch_all(db, locations, principal, locations.c.name)

    @api.get("/locations/{location_id}", response_model=LocationOut, summary="One location")
    async def get_location(location_id: UUID, principal: CurrentStaff) -> dict[str, Any]:
        return await fetch_one(db, locations, locations.c.location_id, location_id, principal,
                               LocationNotFoundError(f"location {location_id} not found"))

    @api.post("/patients", status_code=status.HTTP_201_CREATED, response_model=PatientCreated,
              summary="Register a patient (front desk); warns of probable duplicates",
              openapi_extra=audited("create", "patient"))
    async def register_patient(request: Request, body: PatientIn, principal: Staff(*INTAKE),
                               idempotency_key: IdempotencyKey = None) -> PatientCreated:
        note(request).location_id = body.home_location_id
        _intake_at(principal, body.home_location_id)

        async def work(conn: Any, command_id: UUID) -> dict[str, str]:
            patient_id = new_id()
            exists = await handlers.stream_exists(
                conn, store, handlers.location_stream(body.home_location_id), principal.tenant_id)
            command = RegisterPatient(patient_id=patient_id, now=datetime.now(UTC),
                                      home_location_exists=exists, **body.model_dump())
            duplicates = await _same_identity(conn, body)
            await handlers.register_patient(conn, store, command, event_context(
                principal.tenant_id, command_id, location_id=body.home_location_id))
            return {"id": str(patient_id), "possible_duplicates": duplicates}

        created = PatientCreated(**await execute(db, "booking.patients", principal,
                                                 idempotency_key, work, body))
        note(request).patient_id, note(request).resource_id = created.id, str(created.id)
        return created

    @api.get("/patients", response_model=list[PatientMatch],
             summary="Find patients by name, phone or e-mail (front desk)",
             openapi_extra=audited("search", "patient"))
    async def search_patients(request: Request, principal: Staff(*INTAKE),
                              q: str = Query(min_length=2, max_length=100)
                              ) -> list[dict[str, Any]]:
        async with db.read(principal.tenant_id) as conn:
            rows = await conn.execute(_patient_search(q, principal.locations_for(INTAKE)))
            return [dict(r) for r in rows.mappings()]

    @api.post("/patients/{patient_id}/consents", status_code=status.HTTP_204_NO_CONTENT,
              summary="Record a consent given or withdrawn, with the version of its text",
              openapi_extra=audited("consent", "patient"))
    async def record_consent(request: Request, patient_id: UUID, body: ConsentIn,
                             principal: Staff(*INTAKE)) -> None:
        note(request).patient_id = patient_id

        async def work(conn: AsyncConnection, command_id: UUID) -> dict[str, Any]:
            home = await _home_location(conn, patient_id)
            if home is None or not principal.can_at(home, INTAKE):
                raise PatientNotFoundError(f"patient {patient_id} not found")
            note(request).location_id = home
            await handle(conn, store, handlers.patient_stream(patient_id), patient,
                         patient.RecordConsent(patient_id=patient_id, now=datetime.now(UTC),
                                               **body.model_dump()),
                         tenant_id=principal.tenant_id, context=event_context(
                             principal.tenant_id, command_id, location_id=home))
            return {}

        await execute(db, "booking.consents", principal, None, work)

    @api.get("/patients/{patient_id}/consents", response_model=list[ConsentOut],
             summary="The consents in force", openapi_extra=audited("read", "consent"))
    async def list_consents(request: Request, patient_id: UUID,
                            principal: Staff(*PATIENT_READERS)) -> list[dict[str, Any]]:
        note(request).patient_id = patient_id
        await get_patient(request, patient_id, principal)  # 404 unless the caller may see them
        async with db.read(principal.tenant_id) as conn:
            rows = await conn.execute(select(patient_consents).where(
                patient_consents.c.patient_id == patient_id)
                .order_by(patient_consents.c.consent, patient_consents.c.partner))
            return [{**r, "partner": r["partner"] or None} for r in rows.mappings()]

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
            await handlers.open_episode(conn, store, command, event_context(
                tenant, command_id, location_id=body.location_id, episode_id=episode_id))
            return {"id": str(episode_id)}

        created = await create("booking.episodes", principal, idempotency_key, work, body)
        note(request).resource_id = str(created.id)
        return created

    @api.get("/episodes", response_model=list[EpisodeOut],
             summary="A patient's episodes of care, newest first",
             openapi_extra=audited("list", "episode"))
    async def list_episodes(request: Request, patient_id: UUID,
                            principal: Staff(*CLINICAL_READERS)) -> list[dict[str, Any]]:
        note(request).patient_id = patient_id
        query = at_visible_locations(
            select(episodes).where(episodes.c.patient_id == patient_id)
            .order_by(episodes.c.opened_at.desc()), principal, episodes.c.location_id,
            CLINICAL_READERS)
        async with db.read(principal.tenant_id) as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

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


async def _same_identity(conn: AsyncConnection, body: PatientIn) -> list[str]:
    """Probable duplicates: the same name (ignoring case) and date of birth."""
    rows = await conn.execute(select(patients.c.patient_id).where(
        func.lower(patients.c.given_name) == body.given_name.lower(),
        func.lower(patients.c.family_name) == body.family_name.lower(),
        patients.c.date_of_birth == body.date_of_birth).order_by(patients.c.registered_at))
    return [str(r.patient_id) for r in rows]


async def _home_location(conn: AsyncConnection, patient_id: UUID) -> UUID | None:
    return await conn.scalar(select(patients.c.home_location_id)
                             .where(patients.c.patient_id == patient_id))


def _patient_search(q: str, location_ids: frozenset[UUID] | None) -> Any:
    """Name by similarity (typos forgiven), or an exact phone or e-mail; at locations where
    the caller does intake (None: all of them)."""
    name = func.lower(patients.c.given_name + " " + patients.c.family_name)
    needle = q.strip().lower()
    query = (select(patients.c.patient_id, patients.c.given_name, patients.c.family_name,
                    patients.c.date_of_birth, patients.c.home_location_id, patients.c.phone,
                    patients.c.email)
             .where(name.op("%")(needle) | name.contains(needle, autoescape=True)
                    | (patients.c.phone == q.strip()) | (func.lower(patients.c.email) == needle))
             .order_by(func.similarity(name, needle).desc(), patients.c.family_name)
             .limit(25))
    if location_ids is not None:
        query = query.where(patients.c.home_location_id.in_(location_ids))
    return query
