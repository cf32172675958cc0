"""What a partner holds of a patient follows the patient's consent in force, whatever order
the feed applies the consent records in, and free text in a public event (an evaluation's
goals, in the patient's own words) reaches only a partner that may have clinical free text:
granted the class and named in the patient's data-sharing consent."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e import test_partner_withdrawal as withdrawal
from tests.e2e.test_partner_nats import PartnerConnection, nats_key
from tests.e2e.test_partners import ERASE, Receiver, _some, fhir_key, register

pytestmark = pytest.mark.platform

partners_db = withdrawal.partners_db  # the partners database as the feed's consumers use it

COMPLETED = "kinetic.assessment.evaluation.completed.v1"
REGISTERED = "kinetic.booking.patient.registered.v1"
MASKED = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                         "valueCode": "masked"}]}


async def test_a_withdrawal_applied_after_the_later_reconsent_leaves_the_partners_fhir_record(
        partners_db, tenant):
    """The patient withdraws at T1 and consents again at T2; a replica (or a redelivery)
    applies T2 first. T1, arriving last, is stale: it must neither erase the partner's FHIR
    resources of the patient nor drop its deliveries nor tell it to erase, since the consent
    in force (T2) says yes and nothing would rebuild them."""
    from sqlalchemy import delete, insert, select

    from kinetic_contracts import CloudEvent
    from kinetic_contracts.booking.v1.events import PatientConsentRecorded, PatientRegistered
    from partners.adapters import feed
    from partners.adapters.fhir_store import fhir_resources
    from partners.adapters.http import new_secret

    patient, partner_id, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    registered = PatientRegistered(patient_id=patient, home_location_id=uuid.uuid4(),
                                   birth_year=1990, registered_at=now - timedelta(minutes=5))

    def booking_event(data, at: datetime, sequence: int) -> CloudEvent:
        return CloudEvent(id=uuid.uuid4(), source="/kinetic/booking", type=data.event_type,
                          subject=str(patient), time=at, data=data.model_dump(mode="json"),
                          tenantid=tenant, sequence=sequence)

    def consent(granted: bool, at: datetime, sequence: int) -> CloudEvent:
        return booking_event(PatientConsentRecorded(
            patient_id=patient, consent="data_sharing", partner="ordered-ehr",
            granted=granted, version="1", recorded_at=at), at, sequence)

    withdrew = consent(False, now - timedelta(minutes=2), 2)  # T1
    consented_again = consent(True, now - timedelta(minutes=1), 3)  # T2
    async with partners_db.connect() as conn:
        await partners_db.begin(conn)
        await conn.execute(insert(feed.partners).values(
            partner_id=partner_id, tenant_id=tenant, name="ordered-ehr",
            webhook_url="http://127.0.0.1:9/refused",  # nothing is ever delivered: retried
            event_types=["kinetic.booking.patient.*"],
            data_classes=["identifiers", "clinical_free_text"], secret=new_secret(),
            registered_at=now - timedelta(hours=1)))
        await conn.commit()
    try:
        for event in (booking_event(registered, registered.registered_at, 1),
                      consented_again, withdrew):  # T2 before T1
            async with partners_db.connect() as conn:
                await partners_db.begin(conn)
                await feed._handle(conn, event)
                await conn.commit()

        async with partners_db.connect() as conn:
            await partners_db.begin(conn)
            in_force = await conn.scalar(select(feed.consents.c.granted).where(
                feed.consents.c.patient_id == patient,
                feed.consents.c.partner == "ordered-ehr"))
            served = (await conn.execute(select(fhir_resources.c.resource_type).where(
                fhir_resources.c.partner_id == partner_id,
                fhir_resources.c.patient_id == patient))).scalars().all()
            log = {event_type: status for event_type, status in await conn.execute(
                select(feed.deliveries.c.event_type, feed.deliveries.c.status)
                .where(feed.deliveries.c.partner_id == partner_id))}
        assert in_force is True  # the later record stands
        assert served == ["Patient"], "a stale withdrawal erased the consenting patient's record"
        assert ERASE not in log, log  # no instruction to erase either
        assert "withdrawn" not in log.values(), log  # nor its deliveries dropped
    finally:
        async with partners_db.connect() as conn:
            await partners_db.begin(conn)
            await conn.execute(delete(feed.queue).where(feed.queue.c.partner_id == partner_id))
            for table in (feed.deliveries, fhir_resources, feed.partners):
                await conn.execute(delete(table).where(table.c.partner_id == partner_id))
            await conn.execute(delete(feed.consents).where(feed.consents.c.patient_id == patient))
            await conn.commit()


async def test_goal_text_reaches_only_a_partner_granted_free_text_and_named_in_the_consent(
        api, urls, episode, platform, wait_for):
    """Two partners granted clinical free text take the evaluation: the patient's consent
    names one. It receives the goals as written, by webhook and in its FHIR Goals; the other
    receives them withheld on its webhook and its NATS feed, and its EHR's Goals are masked."""
    import asyncpg

    from tests.e2e.test_evaluations import evaluate_the_runner

    richer = ("identifiers", "clinical_free_text")
    words, codes = Receiver(), Receiver()
    registered = {}
    for receiver, name in ((words, "words-ehr"), (codes, "codes-ehr")):
        await receiver.start()
        registered[name] = await register(api, receiver, COMPLETED, name=name,
                                          data_classes=richer)
    written = "45 min at pre-injury pace, 3 times a week"  # evaluate_the_runner's goal
    try:
        patient = episode["patient_id"]
        consent = await api("booking", "POST", f"/patients/{patient}/consents", json={
            "consent": "data_sharing", "partner": "words-ehr", "granted": True, "version": "1"})
        assert consent.status_code == 204, consent.text

        async def consent_known() -> bool:  # booking's consumer and assessment's race
            conn = await asyncpg.connect(platform.maintenance_url("partners"))
            try:
                return bool(await conn.fetchval(
                    "SELECT granted FROM partner_consents WHERE patient_id = $1",
                    uuid.UUID(patient)))
            finally:
                await conn.close()
        await wait_for(consent_known)
        nats = (await nats_key(api, registered["codes-ehr"]["partner_id"]))["nats_key"]

        evaluation = await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})
        done = await evaluate_the_runner(api, evaluation.json()["id"])
        assert done["status"] == "completed", done

        [as_written] = await wait_for(lambda: _some(words.of_type(COMPLETED)))
        assert [(g["activity"], g["level"]) for g in as_written["data"]["goals"]] == [
            ("running", written)]
        [withheld] = await wait_for(lambda: _some(codes.of_type(COMPLETED)))
        assert withheld["id"] == as_written["id"]  # the same event, its text withheld
        assert [(g["activity"], g["level"]) for g in withheld["data"]["goals"]] == [
            ("[withheld]", "[withheld]")]
        async with PartnerConnection(platform.nats.url, nats) as reader:
            [on_nats] = await reader.read_all(lambda got: len(got) >= 1)
        assert on_nats["id"] == as_written["id"] and written not in json.dumps(on_nats)

        for name, description in (("words-ehr", {"text": f"running: {written}"}),
                                  ("codes-ehr", MASKED)):
            key = await fhir_key(api, registered[name]["partner_id"])
            async with httpx.AsyncClient(base_url=f"{urls['partners']}/fhir/R4",
                                         timeout=15) as client:
                found = await client.get("/Goal", params={"patient": patient},
                                         headers={"Authorization": f"Bearer {key}"})
            assert found.status_code == 200, found.text
            goals = [e["resource"] for e in found.json().get("entry", [])]
            assert [g["description"] for g in goals] == [description], name

        # A delivery stored with the goals as written (made before goals were withheld, or
        # under a grant since narrowed): a replay sends it as the partner may have it now,
        # and keeps it so.
        codes_id = uuid.UUID(registered["codes-ehr"]["partner_id"])
        conn = await asyncpg.connect(platform.maintenance_url("partners"))
        try:
            await conn.execute("UPDATE deliveries SET envelope = $1::jsonb "
                               "WHERE partner_id = $2 AND event_type = $3",
                               json.dumps(as_written), codes_id, COMPLETED)
            replay = await api("partners", "POST", f"/partners/{codes_id}/replay",
                               json={"since": "2000-01-01T00:00:00Z"})
            assert replay.status_code == 200, replay.text
            [_, replayed] = await wait_for(
                lambda: _some(codes.of_type(COMPLETED)[1:] and codes.of_type(COMPLETED)))
            stored = await conn.fetchval("SELECT envelope::text FROM deliveries "
                                         "WHERE partner_id = $1 AND event_type = $2",
                                         codes_id, COMPLETED)
        finally:
            await conn.close()
        assert replayed["id"] == as_written["id"] and written not in json.dumps(replayed)
        assert written not in stored
    finally:
        for receiver in (words, codes):
            await receiver.stop()

