"""Assessment's command handling: facts read in the command's transaction, then the pure
evaluation decider, then append (events, outbox and the inline read model together)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, MetaData, Table, and_, delete, func, select
from sqlalchemy.dialects.postgresql import UUID as PgUUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from assessment.adapters.intake import episodes, reassessments_awaiting_baseline as awaiting
from assessment.adapters.projections import evaluations
from assessment.domain import evaluation, ruleset
from assessment.domain.errors import BaselineMissingError, EpisodeNotFoundError
from kinetic_infra.event_store.decider import handle, load
from kinetic_infra.event_store.model import EventContext, StreamName
from kinetic_infra.event_store.store import EventStore


metadata = MetaData()

# What booking said of an appointment after booking it, kept for good (migration 0005):
# replicas of the consumer read booking's stream side by side and a booking that found its
# episode not applied yet comes back later, so a cancellation or a move can be heard before
# the booking it changes. Both are read where a booking is remembered and where its draft is
# opened, so the outcome is the one the events' own order gives. Every cancellation is kept
# (the event does not say the appointment's type); a move only of a reassessment in an
# episode, the one the drafts follow. A cancellation is final in booking; of the moves the
# latest (``rescheduled_at``) stands, and any move stands over the booking, which it follows.
appointment_changes = Table(
    "appointment_changes", metadata,
    Column("tenant_id", PgUUID(as_uuid=True), primary_key=True),
    Column("appointment_id", PgUUID(as_uuid=True), primary_key=True),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("therapist_id", PgUUID(as_uuid=True)),
    Column("starts_at", DateTime(timezone=True)),
    Column("rescheduled_at", DateTime(timezone=True)),
)


def stream(evaluation_id: UUID) -> StreamName:
    return StreamName("evaluation", evaluation_id)


def ruleset_stream(tenant_id: UUID) -> StreamName:
    return StreamName("ruleset", tenant_id)


async def rules_of(conn: AsyncConnection, store: EventStore, tenant_id: UUID
                   ) -> ruleset.RuleSet:
    state, _ = await load(conn, store, ruleset_stream(tenant_id), ruleset, tenant_id=tenant_id)
    return state  # type: ignore[no-any-return]


def draft_id_for(source: UUID) -> UUID:
    """The draft a booked session or a reassessment-due opens: the same one every time the
    event is delivered."""
    return uuid.uuid5(source, "evaluation")


def addendum_id_for(evaluation_id: UUID, idempotency_key: UUID) -> UUID:
    """The addendum a request with this Idempotency-Key adds: the same one however often it
    is sent. Derived, not the key itself, so a client reusing a key on another evaluation
    still gets addendum ids that are unique (the partners service keys disclosures by them)."""
    return uuid.uuid5(idempotency_key, f"addendum:{evaluation_id}")


async def state_of(conn: AsyncConnection, store: EventStore, evaluation_id: UUID,
                   tenant_id: UUID) -> evaluation.EvaluationState:
    return (await loaded(conn, store, evaluation_id, tenant_id))[0]


async def loaded(conn: AsyncConnection, store: EventStore, evaluation_id: UUID,
                 tenant_id: UUID) -> tuple[evaluation.EvaluationState, int]:
    """The evaluation and its stream version (what a second tab's edit is checked against)."""
    state, version = await load(conn, store, stream(evaluation_id), evaluation,
                                tenant_id=tenant_id)
    return state, version


async def run(conn: AsyncConnection, store: EventStore, command: evaluation.EvaluationCommand,
              context: EventContext) -> None:
    await handle(conn, store, stream(command.evaluation_id), evaluation, command,
                 tenant_id=context.tenant_id, context=context)


async def _lock_drafts(conn: AsyncConnection, episode_id: UUID, kind: evaluation.Kind) -> None:
    """Until the transaction ends: the episode's drafts of this kind are ours to open."""
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(
        f"assessment:draft:{episode_id}:{kind}", 0))))


async def open_draft(conn: AsyncConnection, store: EventStore, *, evaluation_id: UUID,
                     kind: evaluation.Kind, episode_id: UUID, context: EventContext,
                     appointment_id: UUID | None = None, therapist_id: UUID | None = None
                     ) -> UUID:
    """Open a draft for the episode, or return the open draft of that kind it already has
    (a booking and plan's reassessment-due may both ask for one).

    Check-then-open is serialised per episode and kind by a transaction-scoped advisory
    lock: two tabs clicking "Evaluate", or a click racing the appointment.booked consumer,
    would otherwise both find no draft, and the second insert would break the one-draft
    index (a 500). Whoever waits for the lock reads the draft the first one committed."""
    await _lock_drafts(conn, episode_id, kind)
    existing = await conn.scalar(select(evaluations.c.evaluation_id).where(
        evaluations.c.episode_id == episode_id, evaluations.c.kind == kind,
        evaluations.c.status == "draft"))
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    episode = (await conn.execute(select(episodes).where(
        episodes.c.episode_id == episode_id))).mappings().first()
    if episode is None:
        raise EpisodeNotFoundError(f"episode {episode_id} not found")
    baseline = None
    if kind == "reassessment":
        baseline = await conn.scalar(
            select(evaluations.c.evaluation_id).where(
                evaluations.c.episode_id == episode_id, evaluations.c.kind == "initial",
                evaluations.c.status == "completed")
            .order_by(evaluations.c.closed_at.desc()).limit(1))
        if baseline is None:
            raise BaselineMissingError("the episode has no completed initial evaluation")
    await run(conn, store, evaluation.OpenEvaluation(
        evaluation_id=evaluation_id, now=datetime.now(UTC), kind=kind, episode_id=episode_id,
        patient_id=episode["patient_id"], location_id=episode["location_id"],
        appointment_id=appointment_id, therapist_id=therapist_id,
        baseline_evaluation_id=baseline), context)
    return evaluation_id


async def open_booked(conn: AsyncConnection, store: EventStore, *, appointment_id: UUID,
                      kind: evaluation.Kind, episode_id: UUID, therapist_id: UUID,
                      starts_at: datetime, context: EventContext) -> UUID | None:
    """The draft of a booked initial assessment or reassessment, for its therapist.

    A reassessment booked before the episode has a completed initial evaluation (the front
    desk books the assessment and the week-4 reassessment at intake) has no baseline to be
    measured against yet. Refusing it would lose it for good, and retrying it could take
    weeks, so it is remembered instead (returns None), and ``complete`` opens its draft when
    the initial evaluation completes. Both hold the episode's reassessment-draft lock, so a
    booking racing the completion is either seen by it or sees the completed baseline.

    A reassessment's booking heard after its cancellation or a move (a replica's, or a dead
    letter replayed later) is read as booking now has it, as a waiting one is: cancelled, it
    opens nothing; moved, its draft is the latest therapist's."""
    if kind == "reassessment":
        change = (await conn.execute(select(appointment_changes).where(
            appointment_changes.c.tenant_id == context.tenant_id,
            appointment_changes.c.appointment_id == appointment_id))).mappings().first()
        if change is not None and change["cancelled_at"] is not None:
            return None  # its cancellation overtook it: as if it had been forgotten
        if change is not None and change["therapist_id"] is not None:
            therapist_id, starts_at = change["therapist_id"], change["starts_at"]
    try:
        return await open_draft(conn, store, evaluation_id=draft_id_for(appointment_id),
                                kind=kind, episode_id=episode_id, appointment_id=appointment_id,
                                therapist_id=therapist_id, context=context)
    except BaselineMissingError:
        if kind != "reassessment":
            raise
    await conn.execute(insert(awaiting).values(
        appointment_id=appointment_id, tenant_id=context.tenant_id, episode_id=episode_id,
        therapist_id=therapist_id, starts_at=starts_at, correlation_id=context.correlation_id,
        causation_id=context.causation_id,
    ).on_conflict_do_nothing(index_elements=["appointment_id"]))
    return None


async def booked_cancelled(conn: AsyncConnection, tenant_id: UUID, appointment_id: UUID,
                           cancelled_at: datetime) -> None:
    """The appointment was cancelled: a reassessment waiting for its baseline opens no draft,
    nor does one whose booking is heard only after this."""
    await conn.execute(insert(appointment_changes).values(
        tenant_id=tenant_id, appointment_id=appointment_id, cancelled_at=cancelled_at,
    ).on_conflict_do_update(index_elements=["tenant_id", "appointment_id"],
                            set_={"cancelled_at": cancelled_at}))
    await conn.execute(delete(awaiting).where(awaiting.c.appointment_id == appointment_id))


async def booked_moved(conn: AsyncConnection, tenant_id: UUID, appointment_id: UUID,
                       therapist_id: UUID, starts_at: datetime, rescheduled_at: datetime
                       ) -> None:
    """A reassessment was moved: while it waits for its baseline (or before its booking is
    heard) its draft will be the therapist's it is moved to, by the latest move whatever the
    order the moves are heard in. Read when its draft is opened (below)."""
    latest = appointment_changes.c.rescheduled_at
    await conn.execute(insert(appointment_changes).values(
        tenant_id=tenant_id, appointment_id=appointment_id, therapist_id=therapist_id,
        starts_at=starts_at, rescheduled_at=rescheduled_at,
    ).on_conflict_do_update(
        index_elements=["tenant_id", "appointment_id"],
        set_={"therapist_id": therapist_id, "starts_at": starts_at,
              "rescheduled_at": rescheduled_at},
        where=latest.is_(None) | (latest < rescheduled_at)))


async def _open_awaiting_reassessments(conn: AsyncConnection, store: EventStore,
                                       episode_id: UUID, context: EventContext) -> None:
    """The drafts of the reassessments booked before this, the episode's first baseline, as
    if they had been booked just now: the earliest session's opens the episode's one
    reassessment draft (unless one is open already), the others find it, as bookings do.

    Each as booking last arranged it: a cancelled one opens nothing, a moved one is the
    therapist's it was moved to. Read here rather than only where the booking is remembered,
    since a cancellation or move applied alongside the booking on another replica sees no
    row to change, and the booking sees no change yet."""
    therapist = func.coalesce(appointment_changes.c.therapist_id, awaiting.c.therapist_id)
    starts_at = func.coalesce(appointment_changes.c.starts_at, awaiting.c.starts_at)
    rows = (await conn.execute(
        select(awaiting.c.appointment_id, awaiting.c.correlation_id, awaiting.c.causation_id,
               therapist.label("therapist_id"))
        .select_from(awaiting.outerjoin(appointment_changes, and_(
            appointment_changes.c.tenant_id == awaiting.c.tenant_id,
            appointment_changes.c.appointment_id == awaiting.c.appointment_id)))
        .where(awaiting.c.episode_id == episode_id, appointment_changes.c.cancelled_at.is_(None))
        .order_by(starts_at, awaiting.c.appointment_id))).mappings().all()
    for row in rows:
        await open_draft(
            conn, store, evaluation_id=draft_id_for(row["appointment_id"]), kind="reassessment",
            episode_id=episode_id, appointment_id=row["appointment_id"],
            therapist_id=row["therapist_id"], context=dataclasses.replace(
                context, correlation_id=row["correlation_id"] or context.correlation_id,
                causation_id=row["causation_id"]))
    await conn.execute(delete(awaiting).where(awaiting.c.episode_id == episode_id))


async def complete(conn: AsyncConnection, store: EventStore, evaluation_id: UUID,
                   context: EventContext) -> None:
    """Complete the evaluation; an initial evaluation also opens the draft of a reassessment
    booked before it, in the same transaction (``open_booked``)."""
    state = await state_of(conn, store, evaluation_id, context.tenant_id)
    initial = isinstance(state, evaluation.Evaluation) and state.opened.kind == "initial"
    if initial:
        # Taken before completion writes anything (the episode's row among it), as a booking
        # opening a reassessment draft takes it before writing: no lock order to deadlock on.
        await _lock_drafts(conn, state.opened.episode_id, "reassessment")
    baseline = None
    if isinstance(state, evaluation.Evaluation) and state.opened.baseline_evaluation_id:
        before = await state_of(conn, store, state.opened.baseline_evaluation_id,
                                context.tenant_id)
        if isinstance(before, evaluation.Evaluation) and before.status == "completed":
            baseline = before.baseline()
    await run(conn, store, evaluation.CompleteEvaluation(
        evaluation_id=evaluation_id, now=datetime.now(UTC), baseline_measures=baseline,
        rules=await rules_of(conn, store, context.tenant_id)), context)
    if initial:
        await _open_awaiting_reassessments(conn, store, state.opened.episode_id, context)
