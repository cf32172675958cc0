"""The booking benchmark's baseline: a bare FastAPI + asyncpg endpoint that books by one INSERT.

``python -m tests.bench.bare_booking --port N --dsn URL`` serves ``POST /appointments`` with
the same request body as booking's (a pydantic model, unknown fields refused, the start
with its UTC offset) and the same answer (201 ``{"id": ...}``). It does nothing else: no
token check, no reading of the patient, location or therapist, no events, no outbox, no
audit record, no telemetry. One ``INSERT`` into an ``appointments`` table of booking's
shape (the same columns, exclusion constraints and indexes, see ``DDL``), on an asyncpg pool
as large as the service's (10, growing to 30). An overlapping booking answers 409. Served by
uvicorn exactly as the service's API is (``kinetic_infra.http.serving``): ``access_log`` off,
log level info, one process, or with ``--reuse-port`` one of several sharing the port.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, timedelta
from typing import Literal
from uuid import UUID, uuid4

import asyncpg
from fastapi import FastAPI, HTTPException, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kinetic_infra.http.serving import serve

# Booking's appointments read model (migrations 0003-0005), without row-level security.
DDL = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE TABLE IF NOT EXISTS appointments (
    appointment_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    therapist_id uuid NOT NULL,
    location_id uuid NOT NULL,
    episode_id uuid,
    appointment_type text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
    status text NOT NULL,
    late_cancel boolean,
    booked_at timestamptz NOT NULL,
    cancelled_at timestamptz,
    checked_in_at timestamptz,
    finished_at timestamptz,
    reminded_at timestamptz,
    CONSTRAINT appointments_therapist_one_at_a_time EXCLUDE USING gist (
        tenant_id WITH =, therapist_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
        WHERE (status IN ('booked', 'checked_in', 'completed')),
    CONSTRAINT appointments_patient_one_at_a_time EXCLUDE USING gist (
        tenant_id WITH =, patient_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
        WHERE (status IN ('booked', 'checked_in', 'completed'))
);
CREATE INDEX IF NOT EXISTS appointments_location_day
    ON appointments (tenant_id, location_id, starts_at);
CREATE INDEX IF NOT EXISTS appointments_episode ON appointments (tenant_id, episode_id, starts_at);
CREATE INDEX IF NOT EXISTS appointments_therapist_time
    ON appointments (tenant_id, therapist_id, starts_at);
"""

INSERT_SQL = """
INSERT INTO appointments (appointment_id, tenant_id, patient_id, therapist_id, location_id,
                          episode_id, appointment_type, starts_at, ends_at, status, booked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'booked', now())
"""

TENANT_ID = UUID("0194f1d2-0000-7000-8000-0000000000ba")  # every bare booking's organization
DEFAULT_MINUTES = 60


class AppointmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: UUID
    therapist_id: UUID
    location_id: UUID
    episode_id: UUID | None = None
    appointment_type: Literal["initial_assessment", "treatment_session", "reassessment"]
    starts_at: AwareDatetime
    minutes: int | None = Field(default=None, ge=15, le=240)
    waitlist_entry_id: UUID | None = None


class Created(BaseModel):
    id: UUID


def create_app(dsn: str) -> FastAPI:
    pools: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pools["db"] = await asyncpg.create_pool(dsn, min_size=10, max_size=30)
        try:
            yield
        finally:
            await pools["db"].close()

    app = FastAPI(title="Bare booking baseline", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/appointments", status_code=status.HTTP_201_CREATED, response_model=Created)
    async def book(body: AppointmentIn) -> Created:
        appointment_id = uuid4()
        starts_at = body.starts_at.astimezone(UTC)
        ends_at = starts_at + timedelta(minutes=body.minutes or DEFAULT_MINUTES)
        try:
            await pools["db"].execute(INSERT_SQL, appointment_id, TENANT_ID, body.patient_id,
                                      body.therapist_id, body.location_id, body.episode_id,
                                      body.appointment_type, starts_at, ends_at)
        except asyncpg.ExclusionViolationError:
            raise HTTPException(status.HTTP_409_CONFLICT, "already booked then") from None
        return Created(id=appointment_id)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--reuse-port", action="store_true",
                        help="share the port with other processes (replicas)")
    args = parser.parse_args()
    serve(create_app(args.dsn), "127.0.0.1", args.port, reuse_port=args.reuse_port)


if __name__ == "__main__":
    main()
