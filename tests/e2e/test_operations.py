"""What an operator relies on: health, readiness, OpenAPI, the admin pages and their links,
dead letters surfacing there, projections rebuilt from the log, one `make run` at a time."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import uuid

import asyncpg
import httpx
import nats
import pytest

from kinetic_contracts import CloudEvent, nats_subject
from kinetic_contracts.booking.v1.events import EpisodeOpened
from kinetic_infra.broker.streams import DEAD_LETTER_STREAM, dead_letter_subject

pytestmark = pytest.mark.platform


async def test_every_service_is_alive_ready_and_documented(urls):
    for service, base in urls.items():
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert set(ready.json()["checks"]) >= {"database", "nats"}
            assert (await client.get("/docs")).status_code == 200
            assert (await client.get("/openapi.json")).json()["info"]["title"] == f"Kinetic {service}"


async def test_plan_readiness_includes_temporal(urls):
    async with httpx.AsyncClient(base_url=urls["plan"]) as client:
        assert (await client.get("/readyz")).json()["checks"]["temporal"] == "ok"


async def test_each_admin_page_links_to_every_other_service(urls, session_of, tenant):
    cookies = session_of(tenant)
    for base in urls.values():
        async with httpx.AsyncClient(base_url=base, cookies=cookies) as client:
            page = await client.get("/admin")
        assert page.status_code == 200
        for other in urls.values():
            assert f'href="{other}/admin"' in page.text


async def test_a_poison_event_is_dead_lettered_while_later_events_still_apply(
        platform, urls, api, front_desk, wait_for, session_of):
    """An episode.opened whose payload breaks its schema fails in every consumer; after the
    bounded retries it is parked on the dead-letter subject and shown on the admin page,
    and the good event published after it is applied."""
    tenant = uuid.uuid4()  # the poison's organization, not the fixture's
    poison = CloudEvent(id=uuid.uuid4(), source="/kinetic/booking", type=EpisodeOpened.event_type,
                        subject=str(uuid.uuid4()), time="2026-01-01T00:00:00Z",
                        data={"episode_id": "not-a-uuid"}, tenantid=tenant, sequence=1)
    nc = await nats.connect(platform.nats.url)
    js = nc.jetstream()
    await js.publish(nats_subject(tenant, poison.type), poison.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": str(poison.id)})
    episode = await api("booking", "POST", "/episodes", json={
        "patient_id": front_desk["patient_id"], "location_id": front_desk["location_id"],
        "reason": "Achilles pain", "symptom_site": "achilles"})
    episode_id = episode.json()["id"]

    async def assessed():
        return (await api("assessment", "GET", f"/episodes/{episode_id}")).status_code == 200

    await wait_for(assessed)

    async def parked():
        conn = await asyncpg.connect(platform.maintenance_url("assessment"))
        try:
            return await conn.fetchval("SELECT id FROM dead_letters WHERE message_id = $1",
                                       str(poison.id))
        finally:
            await conn.close()

    dead_letter_id = await wait_for(parked, timeout=60)
    dead = await js.get_last_msg(DEAD_LETTER_STREAM, dead_letter_subject("assessment-intake"))
    assert json.loads(dead.data)["id"] == str(poison.id)
    await nc.close()
    async with httpx.AsyncClient(base_url=urls["assessment"],
                                 cookies=session_of(tenant)) as client:
        page = await client.get("/admin")
    assert "assessment-intake" in page.text and "ValidationError" in page.text
    assert str(tenant) in page.text  # the parked message's subject names its organization
    async with httpx.AsyncClient(base_url=urls["assessment"],
                                 cookies=session_of(uuid.uuid4())) as client:
        other = await client.get("/admin")
        foreign_replay = await client.post(f"/admin/dead-letters/{dead_letter_id}/replay")
    assert str(tenant) not in other.text  # another organization's operator never sees it
    assert "Unknown+dead+letter" in foreign_replay.headers["location"]
    async with httpx.AsyncClient(base_url=urls["assessment"],
                                 cookies=session_of(tenant)) as client:
        replay = await client.post(f"/admin/dead-letters/{dead_letter_id}/replay")
    # The payload is still invalid, so the replay fails again and says so.
    assert "replayed:+retry" in replay.headers["location"]


async def test_booking_read_models_rebuild_from_the_event_log(platform, api, front_desk):
    from booking.adapters.projections import front_desk as projection

    from kinetic_infra.db.database import Database
    from kinetic_infra.projections import rebuild

    # Rebuilding is maintenance: it replays every organization's events, so it runs on a
    # connection that bypasses row-level security, never as the application role.
    db = Database(platform.maintenance_url("booking"))
    try:
        async def snapshot():
            async with db.read() as conn:
                from sqlalchemy import select

                return {t.name: sorted(map(tuple, (await conn.execute(select(t))).all()),
                                       key=str) for t in projection.tables}

        before = await snapshot()
        replayed = await rebuild(db, projection)
        assert replayed > 0
        assert await snapshot() == before
    finally:
        await db.dispose()


def test_the_rebuild_command_replays_the_log_and_refuses_without_a_maintenance_role(
        platform, front_desk):
    """``python -m kinetic_infra.service rebuild``, as an operator runs it beside a
    deployment: it needs a role past row-level security and names what it rebuilt."""
    booking = next(d for d in platform.services if d.name == "booking")
    command = [sys.executable, "-m", "kinetic_infra.service", "rebuild"]
    refused = subprocess.run(command, env=platform.env_for(booking), capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode != 0 and "KINETIC_MAINTENANCE_DATABASE_URL" in refused.stderr
    env = platform.env_for(booking,
                           KINETIC_MAINTENANCE_DATABASE_URL=platform.maintenance_url("booking"))
    unknown = subprocess.run([*command, "no_such_projection"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert unknown.returncode != 0 and "no projection no_such_projection" in unknown.stderr
    rebuilt = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr
    lines = rebuilt.stdout.strip().splitlines()
    assert lines and all(line.startswith("booking: ") and " rebuilt from " in line
                         for line in lines), rebuilt.stdout
    assert not any(line.endswith(" from 0 events") for line in lines)


def test_a_second_run_on_the_same_data_directory_says_it_is_already_running(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"pid": 4242, "urls": [["booking admin",
                                                                          "http://x/admin"]]}))
    with open(tmp_path / "run.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = subprocess.run([sys.executable, "-m", "kinetic_infra.stack.cli", "run",
                                 "--data-dir", str(tmp_path)], capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 1
    assert "already running" in result.stderr and "4242" in result.stderr
