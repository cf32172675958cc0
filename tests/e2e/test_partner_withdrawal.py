"""A patient's withdrawal of data sharing with a partner, against what is under way at that
moment: another service's event of the patient being handled beside it, and deliveries
queued or being retried. Nothing of the patient reaches the partner after the withdrawal
but the instruction to erase, and its FHIR resources of the patient are gone for good."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.test_partners import ERASE, Receiver, _some, register

pytestmark = pytest.mark.platform

MEASURED = "kinetic.assessment.outcome.measured.v1"
OPENED = "kinetic.booking.episode.opened.v1"


@pytest.fixture
async def partners_db(platform, tenant) -> AsyncIterator[Any]:
    """Connections to the partners database as the service's own role, scoped to the test's
    organization (row-level security), as the feed's consumers run."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from kinetic_infra.db.database import sqlalchemy_url

    engine = create_async_engine(sqlalchemy_url(platform.database_urls["partners"]))

    class Scoped:
        @staticmethod
        async def begin(conn) -> None:
            await conn.begin()
            await conn.execute(text("SELECT set_config('kinetic.tenant_id', :t, true)"),
                               {"t": str(tenant)})

        connect = staticmethod(engine.connect)

    try:
        yield Scoped
    finally:
        await engine.dispose()


async def test_a_withdrawal_beside_another_streams_event_of_the_patient_lets_nothing_through(
        partners_db, platform, tenant, wait_for):
    """Assessment's consumer handles an outcome of the patient while booking's handles the
    patient's withdrawal, each in its own transaction. Unchecked, the first reads "no
    withdrawal", the withdrawal forgets the patient's FHIR resources and commits, and the
    first then commits a delivery and new resources: sent after the withdrawal and served for
    good. The patient's lock orders them: here the outcome holds it, the withdrawal waits,
    then finds the outcome's delivery to drop and its resources to forget."""
    import asyncpg
    from sqlalchemy import delete, insert, select, text

    from kinetic_contracts import CloudEvent
    from kinetic_contracts.assessment.v1.events import OutcomeMeasured
    from kinetic_contracts.booking.v1.events import PatientConsentRecorded
    from partners.adapters import feed
    from partners.adapters.fhir_store import fhir_resources
    from partners.adapters.http import new_secret  # the dispatcher signs with it

    patient, partner_id, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    measured = OutcomeMeasured(evaluation_id=uuid.uuid4(), episode_id=uuid.uuid4(),
                               patient_id=patient, location_id=uuid.uuid4(), measure="kujala",
                               version="1", scores={"total": 64.0}, context="initial",
                               measured_at=now)
    outcome = CloudEvent(id=uuid.uuid4(), source="/kinetic/assessment", type=MEASURED,
                         subject=str(measured.evaluation_id), time=now,
                         data=measured.model_dump(mode="json"), tenantid=tenant, sequence=5)
    consent = PatientConsentRecorded(patient_id=patient, consent="data_sharing",
                                     partner="racing-ehr", granted=False, version="1",
                                     recorded_at=now)
    withdrawal = CloudEvent(id=uuid.uuid4(), source="/kinetic/booking", type=consent.event_type,
                            subject=str(patient), time=now,
                            data=consent.model_dump(mode="json"), tenantid=tenant, sequence=9)
    async with partners_db.connect() as setup:
        await partners_db.begin(setup)
        await setup.execute(insert(feed.partners).values(
            partner_id=partner_id, tenant_id=tenant, name="racing-ehr",
            webhook_url="http://127.0.0.1:9/refused",  # nothing is ever delivered: retried
            event_types=["kinetic.assessment.*"],
            data_classes=["identifiers", "clinical_free_text"], secret=new_secret(),
            registered_at=now))
        await setup.commit()
    try:
        async with partners_db.connect() as assessment, partners_db.connect() as booking:
            await partners_db.begin(assessment)
            await feed._handle(assessment, outcome)  # no withdrawal in force: delivered
            await partners_db.begin(booking)
            waiter = await booking.scalar(select(text("pg_backend_pid()")))
            withdrawing = asyncio.create_task(feed._handle(booking, withdrawal))

            async def finished_or_waiting_for_a_lock() -> bool:
                if withdrawing.done():
                    return True
                conn = await asyncpg.connect(platform.maintenance_url("partners"))
                try:
                    return await conn.fetchval(
                        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                        waiter)
                finally:
                    await conn.close()

            await wait_for(finished_or_waiting_for_a_lock, timeout=10)
            await assessment.commit()
            await asyncio.wait_for(withdrawing, 10)
            await booking.commit()

        async with partners_db.connect() as conn:
            await partners_db.begin(conn)
            log = {event_type: status for event_type, status in await conn.execute(
                select(feed.deliveries.c.event_type, feed.deliveries.c.status)
                .where(feed.deliveries.c.partner_id == partner_id))}
            queued = set((await conn.execute(
                select(feed.deliveries.c.event_type).join(
                    feed.queue, feed.queue.c.delivery_id == feed.deliveries.c.delivery_id)
                .where(feed.deliveries.c.partner_id == partner_id))).scalars())
            served = (await conn.execute(select(fhir_resources.c.resource_type).where(
                fhir_resources.c.partner_id == partner_id,
                fhir_resources.c.patient_id == patient))).scalars().all()
        assert served == [], "the withdrawn patient's FHIR resources are still served"
        assert log[MEASURED] == "withdrawn", log  # queued before: dropped, and the log says so
        assert queued == {ERASE}, queued  # the instruction to erase still goes
        assert log[ERASE] in ("pending", "retrying"), log
    finally:
        async with partners_db.connect() as conn:
            await partners_db.begin(conn)
            await conn.execute(delete(feed.queue).where(feed.queue.c.partner_id == partner_id))
            for table in (feed.deliveries, fhir_resources, feed.partners):
                await conn.execute(delete(table).where(table.c.partner_id == partner_id))
            await conn.commit()


async def test_a_delivery_being_retried_at_the_withdrawal_is_not_sent_and_the_erase_goes(
        api, platform, front_desk, wait_for):
    """The receiver refuses the patient's episode, so it is being retried when the patient
    withdraws. The withdrawal drops it (``withdrawn`` in the delivery log) instead of leaving
    it at the head of the patient's lane: the instruction to erase goes out at once, and the
    episode never does, not even once the receiver takes everything again."""
    import asyncpg

    receiver = Receiver()
    await receiver.start()
    try:
        partner = await register(api, receiver, "kinetic.booking.episode.*", name="retry-ehr",
                                 data_classes=("identifiers", "contact_details"))
        partner_id, patient = partner["partner_id"], front_desk["patient_id"]
        receiver.refuse = lambda e: e["type"] != ERASE
        opened = await api("booking", "POST", "/episodes", json={
            "patient_id": patient, "location_id": front_desk["location_id"],
            "reason": "knee pain", "symptom_site": "knee_anterior"})
        assert opened.status_code == 201, opened.text

        async def log() -> dict[str, dict[str, Any]]:
            listed = await api("partners", "GET", f"/partners/{partner_id}/deliveries")
            assert listed.status_code == 200, listed.text
            return {d["event_type"]: d for d in listed.json()}

        async def being_retried() -> bool:
            return (await log()).get(OPENED, {}).get("status") == "retrying"

        await wait_for(being_retried, timeout=60)
        withdrawn = await api("booking", "POST", f"/patients/{patient}/consents", json={
            "consent": "data_sharing", "partner": "retry-ehr", "granted": False,
            "version": "1"})
        assert withdrawn.status_code == 204, withdrawn.text
        [erase] = await wait_for(lambda: _some(receiver.of_type(ERASE)))
        assert erase["data"]["patient_id"] == patient
        assert (await log())[OPENED]["status"] == "withdrawn"

        receiver.refuse = None  # it takes everything now: nothing of the patient comes
        await asyncio.sleep(3)  # a retry still queued would have come by now
        assert not receiver.of_type(OPENED)
        assert (await log())[OPENED]["status"] == "withdrawn"
        conn = await asyncpg.connect(platform.maintenance_url("partners"))
        try:
            served = await conn.fetchval(
                "SELECT count(*) FROM fhir_resources WHERE partner_id = $1 AND patient_id = $2",
                uuid.UUID(partner_id), uuid.UUID(patient))
        finally:
            await conn.close()
        assert served == 0
    finally:
        await receiver.stop()
