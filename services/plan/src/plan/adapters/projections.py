"""Plan's read models kept inline with the plan's events (same transaction): where each
episode's plan stands, for the caseload's "what is due", and which sessions are logged.
Every row follows from the events alone, so a rebuild gives the same rows.

The caseload row's ``plan_status`` follows the plan's lifecycle too (activated, discharged,
closed). The caseload is not this projection's table (its rows come from booking's
``episode.opened``), so a rebuild does not empty it; replaying the events in order leaves
each row at the status of its plan's last such event."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Column, Date, DateTime, Integer, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_infra.event_store.model import RecordedEvent
from kinetic_infra.projections import Projection
from plan.adapters.caseload import caseload
from plan.application.workflows import ACTIVE, DISCHARGED
from plan.domain import plan as p
from plan.domain.content import PlanContent

metadata = MetaData()

plans = Table(
    "plans", metadata,
    Column("plan_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("episode_id", UUID(as_uuid=True), nullable=False),
    Column("patient_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("stage_position", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("reassessment_due", Text),
    Column("overdue_milestones", ARRAY(Text), nullable=False),
    Column("sessions_logged", Integer, nullable=False),
    Column("stale_since", Date),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

logged_sessions = Table(
    "logged_sessions", metadata,
    Column("appointment_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("plan_id", UUID(as_uuid=True), nullable=False),
    Column("session_number", Integer, nullable=False),
    Column("logged_at", DateTime(timezone=True), nullable=False),
)

plan_status = Projection("plans", [plans, logged_sessions])


def _unchanged_since(content: PlanContent) -> date | None:
    """The oldest prescription's last change: the caseload compares it with the stale
    weeks (§3.4 STIMULUS_STALE)."""
    return min((x.changed_on for x in content.prescriptions), default=None)


async def _update(conn: AsyncConnection, event: RecordedEvent, **values: Any) -> None:
    await conn.execute(plans.update().where(plans.c.plan_id == event.data["plan_id"])
                       .values(**values, updated_at=event.recorded_at))


async def _caseload_shows(conn: AsyncConnection, event: RecordedEvent, status: str) -> None:
    """The episode's caseload row, if plan has heard it open; one heard later takes its
    status from the plan's record (``caseload.on_episode_opened``)."""
    await conn.execute(caseload.update()
                       .where(caseload.c.episode_id == event.data["ids"]["episode_id"])
                       .values(plan_status=status))


@plan_status.on(p.PlanDrafted.event_type)
async def _drafted(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = p.PlanDrafted.model_validate(event.data)
    row = dict(plan_id=e.plan_id, tenant_id=event.tenant_id, episode_id=e.episode_id,
               patient_id=e.patient_id, location_id=e.location_id, status="draft",
               stage=e.content.stages[0].code, stage_position=1, revision=0,
               overdue_milestones=[], sessions_logged=0,
               stale_since=_unchanged_since(e.content), updated_at=event.recorded_at)
    await conn.execute(insert(plans).values(**row).on_conflict_do_nothing())


@plan_status.on(p.PlanEdited.event_type)
async def _edited(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = p.PlanEdited.model_validate(event.data)
    await _update(conn, event, revision=e.revision, stale_since=_unchanged_since(e.content))


@plan_status.on(p.PlanActivated.event_type)
async def _activated(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _update(conn, event, status="active", revision=1)
    await _caseload_shows(conn, event, ACTIVE)


@plan_status.on(p.SessionRecorded.event_type)
async def _logged(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = p.SessionRecorded.model_validate(event.data)
    await _update(conn, event, sessions_logged=plans.c.sessions_logged + 1)
    await conn.execute(insert(logged_sessions).values(
        appointment_id=e.session.appointment_id, tenant_id=event.tenant_id, plan_id=e.plan_id,
        session_number=e.session.number, logged_at=e.session.logged_at
    ).on_conflict_do_nothing())


@plan_status.on(p.ProgressionDecided.event_type)
async def _progressed(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = p.ProgressionDecided.model_validate(event.data)
    await _update(conn, event, revision=e.revision,
                  stale_since=min((x.changed_on for x in e.prescriptions), default=None))


@plan_status.on(p.MilestoneOverdue.event_type)
async def _overdue(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _update(conn, event, overdue_milestones=func.array_append(
        plans.c.overdue_milestones, event.data["milestone_id"]))


@plan_status.on(p.MilestoneMet.event_type)
async def _met(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _update(conn, event, overdue_milestones=func.array_remove(
        plans.c.overdue_milestones, event.data["milestone_id"]))


@plan_status.on(p.ReassessmentFlagged.event_type)
async def _flagged(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = p.ReassessmentFlagged.model_validate(event.data)
    reasons = "; ".join(f"{f.rule}: {f.reason}" for f in e.flags)
    await _update(conn, event, reassessment_due=func.concat_ws(
        "; ", plans.c.reassessment_due, reasons))


@plan_status.on(p.ReassessmentResolved.event_type)
async def _resolved(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _update(conn, event, reassessment_due=None)


@plan_status.on(p.StageChanged.event_type)
async def _stage(conn: AsyncConnection, event: RecordedEvent) -> None:
    e = p.StageChanged.model_validate(event.data)
    await _update(conn, event, stage=e.transition.to_stage, stage_position=e.to_position)


@plan_status.on(p.Discharged.event_type)
async def _discharged(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _update(conn, event, status="discharged")
    await _caseload_shows(conn, event, DISCHARGED)


@plan_status.on(p.EpisodeClosed.event_type)
async def _closed(conn: AsyncConnection, event: RecordedEvent) -> None:
    """A draft's row (if any) shows it closed; the caseload row too, also for an episode
    closed without a plan (no plan row to show it by)."""
    await _update(conn, event, status="discharged")
    await _caseload_shows(conn, event, DISCHARGED)
