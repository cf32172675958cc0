"""Plan's command handling: facts read in the command's transaction (the organization's rule
set and exercise library, the episode's completed sessions), then the pure plan decider,
then append (events, outbox and the inline read model together)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_infra.event_store.decider import handle, load
from kinetic_infra.event_store.model import EventContext, RecordedEvent, StreamName
from kinetic_infra.event_store.store import EventStore
from plan.adapters.library import exercises
from plan.adapters.sessions import sessions
from plan.domain import plan, rules
from plan.domain.exercises import Exercise, Library
from plan.domain.rules import PlanRules


def plan_id_for(episode_id: UUID) -> UUID:
    """An episode has one plan, whichever event or click first drafts it."""
    return uuid.uuid5(episode_id, "plan")


def stream(plan_id: UUID) -> StreamName:
    return StreamName("plan", plan_id)


def rules_stream(tenant_id: UUID) -> StreamName:
    return StreamName("plan-rules", tenant_id)


async def rules_of(conn: AsyncConnection, store: EventStore, tenant_id: UUID) -> PlanRules:
    state, _ = await load(conn, store, rules_stream(tenant_id), rules, tenant_id=tenant_id)
    return state  # type: ignore[no-any-return]


async def library_of(conn: AsyncConnection) -> Library:
    """The seeded library with the organization's own exercises (row-level security limits
    the rows to the caller's organization)."""
    library = Library.seeded()
    for row in (await conn.execute(select(exercises.c.exercise)
                                   .order_by(exercises.c.added_at))).scalars():
        library = library.with_exercise(Exercise.model_validate(row))
    return library


async def loaded(conn: AsyncConnection, store: EventStore, plan_id: UUID, tenant_id: UUID
                 ) -> tuple[plan.PlanState, int]:
    state, version = await load(conn, store, stream(plan_id), plan, tenant_id=tenant_id)
    return state, version


async def state_of(conn: AsyncConnection, store: EventStore, plan_id: UUID, tenant_id: UUID
                   ) -> plan.Plan:
    state, _ = await loaded(conn, store, plan_id, tenant_id)
    if not isinstance(state, plan.Plan):
        raise plan.PlanNotFoundError(f"plan {plan_id} has not been drafted")
    return state


async def ended(conn: AsyncConnection, store: EventStore, episode_id: UUID, tenant_id: UUID
                ) -> bool:
    """Whether the episode's record says it is over: discharged, or closed before its plan
    was active. Plan's consumers may hear of an episode only after that (each reads its own
    stream), and an ended episode gets no workflow to wait for it."""
    state, _ = await loaded(conn, store, plan_id_for(episode_id), tenant_id)
    return state is not None and state.status == "discharged"


async def run(conn: AsyncConnection, store: EventStore, command: plan.PlanCommand,
              context: EventContext) -> list[RecordedEvent]:
    return await handle(conn, store, stream(command.plan_id), plan, command,
                        tenant_id=context.tenant_id, context=context)


async def sessions_used(conn: AsyncConnection, episode_id: UUID) -> int:
    """Completed sessions of the episode, the initial assessment included (§5 counts it as
    session 1)."""
    return int(await conn.scalar(select(func.count()).select_from(sessions)
                                 .where(sessions.c.episode_id == episode_id)) or 0)


async def session_number(conn: AsyncConnection, episode_id: UUID, appointment_id: UUID
                         ) -> int | None:
    """The completed session's place in the episode (1 = the initial assessment)."""
    rows = (await conn.execute(select(sessions.c.appointment_id)
                               .where(sessions.c.episode_id == episode_id)
                               .order_by(sessions.c.starts_at))).scalars().all()
    return rows.index(appointment_id) + 1 if appointment_id in rows else None


def context_for(tenant_id: UUID, command_id: UUID, state: plan.Plan | None = None,
                **ids: Any) -> EventContext:
    if state is not None:
        ids = {"location_id": state.ids.location_id, "episode_id": state.ids.episode_id}
    return EventContext(tenant_id=tenant_id, correlation_id=command_id, causation_id=command_id,
                        **ids)
