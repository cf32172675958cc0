"""The caseload says where each episode's plan stands (awaiting the evaluation, evaluated,
active, discharged) whatever order plan's consumers hear booking's and assessment's events
in, and the episode's workflow endpoint answers for an episode whose workflow is gone: from
the plan's record when the episode ended, else a 404 problem."""

from __future__ import annotations

import importlib.util
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.e2e.test_evaluations import an_evaluation_of_an_unopened_episode, publish
from tests.e2e.test_plan import evaluated_plan, far_dates

pytestmark = pytest.mark.platform

MIGRATION = (Path(__file__).parents[2] / "services/plan/src/plan/migrations/versions"
             / "0004_caseload_follows_the_plan.py")


async def caseload_status(api, episode_id) -> str | None:
    got = await api("plan", "GET", f"/episodes/{episode_id}")
    return got.json()["plan_status"] if got.status_code == 200 else None


async def _is(probe, expected) -> bool:
    return await probe == expected


async def activated(api, episode, wait_for) -> str:
    """The runner evaluated and the drafted plan activated: the episode's path."""
    base = f"/episodes/{episode['episode_id']}"
    plan = await evaluated_plan(api, episode, wait_for)
    edited = await api("plan", "PUT", f"{base}/plan",
                       json={"content": far_dates(plan["content"], date.today())})
    assert edited.status_code == 200, edited.text
    activation = await api("plan", "POST", f"{base}/plan/activate")
    assert activation.status_code == 200, activation.text
    return base


async def test_the_caseload_shows_the_plan_evaluated_then_active_then_discharged(
        api, episode, wait_for):
    episode_id = episode["episode_id"]
    assert await wait_for(lambda: _is(caseload_status(api, episode_id), "awaiting_evaluation"))

    await evaluated_plan(api, episode, wait_for)
    assert await wait_for(lambda: _is(caseload_status(api, episode_id), "evaluated"))

    base = await activated(api, episode, wait_for)
    # Kept with the plan's events, in the command's transaction: no wait.
    assert await caseload_status(api, episode_id) == "active"
    listed = {e["episode_id"]: e["plan_status"]
              for e in (await api("plan", "GET", "/episodes")).json()}
    assert listed[episode_id] == "active"

    discharged = await api("plan", "POST", f"{base}/discharge", json={"override": {
        "reason_code": "patient_withdrew", "free_text": "Moved abroad for work"}})
    assert discharged.status_code == 200, discharged.text
    assert await caseload_status(api, episode_id) == "discharged"


async def test_an_evaluation_heard_before_the_episode_opened_leaves_the_caseload_evaluated(
        platform, api, tenant, wait_for):
    """The evaluation's consumer runs first: the caseload row is there, evaluated, with the
    evaluation's facts; the late episode.opened brings booking's and keeps the status."""
    from kinetic_contracts.booking.v1.events import EpisodeOpened

    episode_id, patient_id, location_id = await an_evaluation_of_an_unopened_episode(
        platform, tenant)
    assert await wait_for(lambda: _is(caseload_status(api, episode_id), "evaluated"))

    opened_at = datetime(2025, 5, 5, 9, tzinfo=UTC)
    await publish(platform, tenant, "booking", EpisodeOpened(
        episode_id=episode_id, patient_id=patient_id, location_id=location_id,
        symptom_site="knee_anterior", opened_at=opened_at))

    async def with_bookings_facts():
        got = (await api("plan", "GET", f"/episodes/{episode_id}")).json()
        return got if got["symptom_site"] == "knee_anterior" else None

    row = await wait_for(with_bookings_facts)
    assert row["plan_status"] == "evaluated"
    assert datetime.fromisoformat(row["opened_at"]) == opened_at


async def test_the_workflow_of_an_episode_that_ended_before_plan_heard_it_open_answers_discharged(
        platform, api, tenant, published, wait_for):
    """Referred out before plan heard the episode open: it never gets a workflow, and the
    endpoint answers from the plan's record instead of failing."""
    from kinetic_contracts.assessment.v1.events import ReferredOut
    from kinetic_contracts.booking.v1.events import EpisodeOpened

    episode_id, patient_id, location_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await publish(platform, tenant, "assessment", ReferredOut(
        evaluation_id=uuid.uuid4(), episode_id=episode_id, patient_id=patient_id,
        location_id=location_id, red_flags=["unexplained_weight_loss"],
        referred_at=datetime.now(UTC)))
    await wait_for(lambda: published("kinetic.plan.episode.discharged.v1"))
    await publish(platform, tenant, "booking", EpisodeOpened(
        episode_id=episode_id, patient_id=patient_id, location_id=location_id,
        symptom_site="knee_anterior", opened_at=datetime.now(UTC)))
    assert await wait_for(lambda: _is(caseload_status(api, episode_id), "discharged"))

    got = await api("plan", "GET", f"/episodes/{episode_id}/workflow")
    assert got.status_code == 200, got.text
    assert got.json() == {"workflow_id": f"episode-of-care-{episode_id}", "stage": "discharged"}


async def _delete_workflow(platform, episode_id: str, wait_for) -> None:
    """What Temporal's retention does to a finished workflow, done now (deletion is
    asynchronous: wait until Temporal no longer knows it)."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
    from temporalio.service import RPCError, RPCStatusCode

    from kinetic_infra.stack.temporal import NAMESPACE
    from kinetic_infra.temporal import connect_client

    client = await connect_client(platform.temporal.address, NAMESPACE)
    await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
        namespace=NAMESPACE,
        workflow_execution=WorkflowExecution(workflow_id=f"episode-of-care-{episode_id}")))

    async def gone() -> bool:
        try:
            await client.get_workflow_handle(f"episode-of-care-{episode_id}").describe()
        except RPCError as exc:
            return exc.status == RPCStatusCode.NOT_FOUND
        return False

    # The dev server deletes on a background queue, which a busy test run keeps waiting.
    await wait_for(gone, timeout=120)


async def test_a_discharged_episode_whose_workflow_was_purged_answers_discharged(
        platform, api, episode, wait_for):
    episode_id = episode["episode_id"]
    base = await activated(api, episode, wait_for)
    discharged = await api("plan", "POST", f"{base}/discharge", json={"override": {
        "reason_code": "patient_withdrew", "free_text": "Moved abroad for work"}})
    assert discharged.status_code == 200, discharged.text
    assert await wait_for(lambda: _is(_stage(api, episode_id), "discharged"))

    await _delete_workflow(platform, episode_id, wait_for)
    got = await api("plan", "GET", f"/episodes/{episode_id}/workflow")
    assert got.status_code == 200, got.text
    assert got.json()["stage"] == "discharged"


async def _stage(api, episode_id: str) -> str | None:
    got = await api("plan", "GET", f"/episodes/{episode_id}/workflow")
    return got.json()["stage"] if got.status_code == 200 else None


async def test_an_open_episode_whose_workflow_is_gone_answers_a_404_problem(
        platform, api, episode, wait_for):
    """Not over, yet no workflow: nothing to report, said as a problem rather than a 500."""
    episode_id = episode["episode_id"]
    assert await wait_for(lambda: _is(_stage(api, episode_id), "awaiting_evaluation"))

    await _delete_workflow(platform, episode_id, wait_for)
    got = await api("plan", "GET", f"/episodes/{episode_id}/workflow")
    assert got.status_code == 404, got.text
    assert got.headers["content-type"].startswith("application/problem+json")
    assert got.json()["type"] == "/problems/episode-workflow-not-found"


async def test_the_migration_sets_the_caseload_of_earlier_episodes_from_their_plans(
        platform, api, episode, wait_for):
    """A row an earlier version left ``evaluated`` for an active plan is set from the plan."""
    from sqlalchemy import text

    from kinetic_infra.db.database import Database

    episode_id = episode["episode_id"]
    await activated(api, episode, wait_for)
    spec = importlib.util.spec_from_file_location("caseload_migration", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)

    db = Database(platform.maintenance_url("plan"))
    try:
        async with db.transaction() as conn:
            await conn.execute(text("UPDATE caseload SET plan_status = 'evaluated' "
                                    "WHERE episode_id = :e"), {"e": episode_id})
        assert await caseload_status(api, episode_id) == "evaluated"
        async with db.transaction() as conn:
            await conn.execute(text(migration.REPAIR))
    finally:
        await db.dispose()
    assert await caseload_status(api, episode_id) == "active"
