"""Assessment's read model of evaluations, kept inline with the events (same transaction):
one row per evaluation with where it stands, for lists and for the tenancy and location
checks. The full draft is read from the evaluation's own stream."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from assessment.domain.evaluation import EvaluationOpened
from kinetic_contracts.assessment.v1.events import (
    EvaluationCompleted,
    ReassessmentCompleted,
    ReferredOut,
)
from kinetic_infra.db.upsert import upsert
from kinetic_infra.event_store.model import RecordedEvent
from kinetic_infra.projections import Projection

metadata = MetaData()

evaluations = Table(
    "evaluations", metadata,
    Column("evaluation_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("episode_id", UUID(as_uuid=True), nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("appointment_id", UUID(as_uuid=True)),
    Column("therapist_id", UUID(as_uuid=True)),
    Column("baseline_evaluation_id", UUID(as_uuid=True)),
    Column("status", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
)

clinic = Projection("evaluations", [evaluations])


@clinic.on(EvaluationOpened.event_type)
async def _opened(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = EvaluationOpened.model_validate(event.data)
    row = {**e.model_dump(), "tenant_id": event.tenant_id, "status": "draft"}
    await upsert(conn, evaluations, "evaluation_id", row)


async def _closed(conn: AsyncConnection, evaluation_id: object, status: str,
                  at: object) -> None:
    await conn.execute(evaluations.update()
                       .where(evaluations.c.evaluation_id == evaluation_id)
                       .values(status=status, closed_at=at))


@clinic.on(EvaluationCompleted.event_type)
async def _completed(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _closed(conn, event.data["evaluation_id"], "completed", event.recorded_at)


@clinic.on(ReassessmentCompleted.event_type)
async def _reassessed(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _closed(conn, event.data["evaluation_id"], "completed", event.recorded_at)


@clinic.on(ReferredOut.event_type)
async def _referred(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _closed(conn, event.data["evaluation_id"], "referred_out", event.recorded_at)
