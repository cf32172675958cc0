"""The front desk's "to book" list: episodes that need a session booked.

Two reasons put an open episode on it:
- plan said a reassessment is due, the clinician has not resolved it since (a resolution may
  decide against a reassessment visit) and no reassessment has been booked since;
- plan's expected frequency is not met: fewer sessions are booked in the next
  ``HORIZON_DAYS`` than the frequency asks for (capped by the sessions the plan has left).
  Unscheduled plan-of-care visits are a leading cause of patients dropping out.
Computed at read time from the read models, so it is never stale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.adapters.projections import (
    appointments,
    episode_plans,
    episodes,
    patients,
    reassessments_due,
    reassessments_resolved,
)
from booking.domain.appointment import HOLDING_STATUSES

HORIZON_DAYS = 14


@dataclass(frozen=True)
class ToBook:
    episode_id: UUID
    patient_id: UUID
    given_name: str
    family_name: str
    reason: str  # reassessment_due | under_booked
    detail: str
    due_by: date | None


def still_due(raised_at: datetime, resolved_at: datetime | None) -> bool:
    """A reassessment due stands until plan resolves one at or after it was raised. An older
    resolution answered an earlier due; a newer one answers this due, whichever was heard
    first (plan's events may arrive out of order)."""
    return resolved_at is None or resolved_at < raised_at


def sessions_wanted(sessions_per_week: float, left: int) -> int:
    """How many sessions the next horizon should hold at the plan's frequency."""
    return max(0, min(left, math.ceil(sessions_per_week * HORIZON_DAYS / 7 - 1e-9)))


async def to_book(conn: AsyncConnection, location_id: UUID, now: datetime) -> list[ToBook]:
    a, e, p = appointments.c, episodes.c, patients.c
    base = (select(e.episode_id, e.patient_id, p.given_name, p.family_name)
            .join(patients, patients.c.patient_id == e.patient_id)
            .where(e.location_id == location_id, e.status == "open"))
    r = reassessments_due.c
    reassessment_booked = (select(a.appointment_id).where(
        a.episode_id == e.episode_id, a.appointment_type == "reassessment",
        a.status.in_(HOLDING_STATUSES), a.starts_at >= r.raised_at).exists())
    rr = reassessments_resolved.c
    due = await conn.execute(
        base.add_columns(r.reason, r.due_by, r.raised_at, rr.resolved_at)
        .join(reassessments_due, r.episode_id == e.episode_id)
        .outerjoin(reassessments_resolved, rr.episode_id == e.episode_id)
        .where(~reassessment_booked).order_by(r.due_by))
    found = [ToBook(row.episode_id, row.patient_id, row.given_name, row.family_name,
                    "reassessment_due", f"Reassessment due: {row.reason.replace('_', ' ')}",
                    row.due_by) for row in due if still_due(row.raised_at, row.resolved_at)]

    pl = episode_plans.c
    horizon = now + timedelta(days=HORIZON_DAYS)
    upcoming = (select(func.count()).where(
        a.episode_id == e.episode_id, a.status.in_(HOLDING_STATUSES), a.starts_at >= now,
        a.starts_at < horizon).scalar_subquery())
    held = (select(func.count()).where(
        a.episode_id == e.episode_id, a.status.in_(HOLDING_STATUSES),
        and_(a.appointment_type != "initial_assessment")).scalar_subquery())
    planned = await conn.execute(
        base.add_columns(pl.sessions_per_week, pl.expected_sessions, upcoming.label("upcoming"),
                         held.label("held"))
        .join(episode_plans, pl.episode_id == e.episode_id).order_by(p.family_name))
    for row in planned:
        wanted = sessions_wanted(row.sessions_per_week, row.expected_sessions - row.held
                                 + row.upcoming)
        if row.upcoming < wanted:
            found.append(ToBook(
                row.episode_id, row.patient_id, row.given_name, row.family_name,
                "under_booked", f"{row.upcoming} of {wanted} sessions booked in the next "
                f"{HORIZON_DAYS} days ({row.sessions_per_week:g} a week)", None))
    return found
