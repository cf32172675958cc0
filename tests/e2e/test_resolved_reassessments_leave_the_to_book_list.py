"""A reassessment the clinician resolved (here: continue without one) leaves the front desk's
"to book" list, so nobody books the patient a visit the clinician decided against; the
resolution works in whichever order booking hears it and the due, and a due raised after it
is listed again."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from kinetic_contracts.plan.v1.events import ReassessmentDue, ReassessmentResolved
from tests.e2e.test_booking_reactions import deliver_twice, open_episode

pytestmark = pytest.mark.platform


def due(where, episode_id: str, raised_at: datetime, reason: str = "progress_stalled"
        ) -> ReassessmentDue:
    return ReassessmentDue(
        episode_id=uuid.UUID(episode_id), patient_id=uuid.UUID(where["patient_id"]),
        location_id=uuid.UUID(where["location_id"]), reason=reason,
        due_by=date.today() + timedelta(days=7), raised_at=raised_at, rules=["STALL-1"])


def resolved(where, episode_id: str, resolved_at: datetime) -> ReassessmentResolved:
    return ReassessmentResolved(
        plan_id=uuid.uuid4(), episode_id=uuid.UUID(episode_id),
        patient_id=uuid.UUID(where["patient_id"]), location_id=uuid.UUID(where["location_id"]),
        outcome="continue_with_reason", rules=["STALL-1"], resolved_by=uuid.uuid4(),
        resolved_at=resolved_at)


def listing(api, where, episode_id: str):
    async def due_rows() -> list[dict]:
        rows = (await api("booking", "GET", f"/to-book?location_id={where['location_id']}"
                          )).json()
        return [r for r in rows if r["reason"] == "reassessment_due"
                and r["episode_id"] == episode_id]
    return due_rows


async def due_recorded(platform, episode_id: str, raised_at: datetime) -> bool:
    conn = await asyncpg.connect(platform.maintenance_url("booking"))
    try:
        return await conn.fetchval(
            "SELECT raised_at FROM reassessments_due WHERE episode_id = $1",
            uuid.UUID(episode_id)) == raised_at
    finally:
        await conn.close()


async def test_a_reassessment_resolved_without_a_visit_leaves_the_to_book_list(
        platform, api, clinic, tenant, wait_for):  # noqa: F811
    episode_id = await open_episode(api, clinic)
    listed = listing(api, clinic, episode_id)
    raised_at = datetime.now(UTC).replace(microsecond=0)
    await deliver_twice(platform, tenant, due(clinic, episode_id, raised_at))
    await wait_for(listed)

    await deliver_twice(platform, tenant, resolved(clinic, episode_id,
                                                   raised_at + timedelta(minutes=5)))

    async def gone() -> bool:
        return await listed() == []

    await wait_for(gone)


async def test_a_resolution_heard_before_its_due_still_answers_it(
        platform, api, clinic, tenant, wait_for):  # noqa: F811
    episode_id = await open_episode(api, clinic)
    listed = listing(api, clinic, episode_id)
    raised_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await deliver_twice(platform, tenant, resolved(clinic, episode_id,
                                                   raised_at + timedelta(minutes=30)))
    await deliver_twice(platform, tenant, due(clinic, episode_id, raised_at))
    await wait_for(lambda: due_recorded(platform, episode_id, raised_at))
    await asyncio.sleep(0.5)
    assert await listed() == []

    # A due raised after that resolution is a new one: it is listed.
    later = raised_at + timedelta(minutes=45)
    await deliver_twice(platform, tenant, due(clinic, episode_id, later, reason="pain_flare"))
    [entry] = await wait_for(listed)
    assert entry["detail"] == "Reassessment due: pain flare"
