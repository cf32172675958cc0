"""Assessment's read model of evaluations, kept inline with the events (same transaction):
one row per evaluation with where it stands, for lists and for the tenancy and location
checks. The full draft is read from the evaluation's own stream.

Each evaluation opened or closed also sets its episode's ``evaluation_status`` (the intake
row, intake.py), derived from the episode's evaluations rows alone, so a rebuild, which
replays them in order, leaves the same status. The episodes rows are intake's: a rebuild
does not empty them."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text, case, func, select
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from assessment.adapters.intake import AWAITING_EVALUATION, episodes
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


async def _episode_stands(conn: AsyncConnection, episode_id: object) -> None:
    """Set where the episode's evaluation stands: an open draft if it has one, else how its
    most recently closed evaluation ended, else (none opened) awaiting the initial one."""
    e = evaluations.c
    draft = e.status == "draft"
    stands = case((e.status == "referred_out", "referred_out"),
                  (draft & (e.kind == "initial"), "initial_evaluation_in_progress"),
                  (draft, "reassessment_in_progress"),
                  (e.kind == "initial", "evaluated"), else_="reassessed")
    latest = (select(stands).where(e.episode_id == episode_id)
              .order_by(draft.desc(), e.closed_at.desc().nulls_last(), e.opened_at.desc(),
                        e.evaluation_id.desc())
              .limit(1).scalar_subquery())
    await conn.execute(episodes.update().where(episodes.c.episode_id == episode_id)
                       .values(evaluation_status=func.coalesce(latest, AWAITING_EVALUATION)))


@clinic.on(EvaluationOpened.event_type)
async def _opened(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = EvaluationOpened.model_validate(event.data)
    row = {**e.model_dump(), "tenant_id": event.tenant_id, "status": "draft"}
    await upsert(conn, evaluations, "evaluation_id", row)
    await _episode_stands(conn, e.episode_id)


async def _closed(conn: AsyncConnection, event: RecordedEvent, status: str) -> None:
    await conn.execute(evaluations.update()
                       .where(evaluations.c.evaluation_id == event.data["evaluation_id"])
                       .values(status=status, closed_at=event.recorded_at))
    await _episode_stands(conn, event.data["episode_id"])


@clinic.on(EvaluationCompleted.event_type)
async def _completed(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _closed(conn, event, "completed")


@clinic.on(ReassessmentCompleted.event_type)
async def _reassessed(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _closed(conn, event, "completed")


@clinic.on(ReferredOut.event_type)
async def _referred(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _closed(conn, event, "referred_out")
