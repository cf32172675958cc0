"""Partner systems: registration with a grant, the per-partner feed, and webhooks signed per
Standard Webhooks that are retried until the receiver takes them, in order, and replayed on
request. The receiver is a real HTTP server on loopback; it verifies every signature with
the ``standardwebhooks`` library, as a partner would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from kinetic_infra.stack.processes import free_port

pytestmark = pytest.mark.platform


class Receiver:
    """A partner's webhook endpoint: answers ``status`` and keeps what it verified."""

    def __init__(self) -> None:
        self.port = free_port()
        self.secret = ""
        self.status = 200
        self.delay = 0.0  # seconds before answering
        self.requests = 0  # requests begun
        self.also: list[str] = []  # further secrets every signature must verify with
        self.rejected = 0  # calls whose signature did not verify (answered 401)
        self.received: list[dict[str, Any]] = []  # verified, in arrival order
        self.arrived_at: dict[str, float] = {}  # event id -> when it first arrived verified
        self.answered: list[int] = []
        self.refuse: Any = None  # a predicate: verified events it answers 503 for
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.status
        if status == 200:
            try:
                envelope = Webhook(self.secret).verify(body, headers)
                for other in self.also:
                    Webhook(other).verify(body, headers)
            except WebhookVerificationError:
                self.rejected += 1
                status = 401
            else:
                assert headers["webhook-id"] == envelope["id"]
                if self.refuse is not None and self.refuse(envelope):
                    status = 503
                else:
                    self.received.append(envelope)
                    self.arrived_at.setdefault(envelope["id"], time.time())
        self.answered.append(status)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def start(self) -> None:
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e["type"] == event_type]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    await r.stop()


async def register(api, receiver: Receiver, *patterns: str, name: str = "acme-crm",
                   data_classes: tuple[str, ...] = ("identifiers",)) -> dict:
    response = await api("partners", "POST", "/partners", json={
        "name": name, "webhook_url": receiver.url,
        "grant": {"event_types": list(patterns), "data_classes": list(data_classes)}})
    assert response.status_code == 201, response.text
    receiver.secret = response.json()["secret"]
    assert receiver.secret.startswith("whsec_")
    return response.json()


async def test_a_granted_event_arrives_signed_with_its_original_id_and_others_do_not(
        api, receiver, wait_for, published):
    await receiver.start()
    await register(api, receiver, "kinetic.booking.patient.*")
    location = await api("booking", "POST", "/locations",
                         json={"name": "Partner Clinic", "timezone": "Europe/Berlin"})
    patient = await api("booking", "POST", "/patients", json={
        "given_name": "Ada", "family_name": "Canarysson", "date_of_birth": "1996-04-02",
        "home_location_id": location.json()["id"]})
    [event] = await wait_for(lambda: _some(receiver.of_type(
        "kinetic.booking.patient.registered.v1")))
    assert event["data"]["patient_id"] == patient.json()["id"]
    [on_the_wire] = await wait_for(lambda: published("kinetic.booking.patient.registered.v1"))
    assert event["id"] == on_the_wire["id"]  # partners de-duplicate by the original id
    # Names never leave: the public event has none, and nothing delivered carries one.
    assert "Canarysson" not in json.dumps(receiver.received)
    assert receiver.of_type("kinetic.booking.location.registered.v1") == []


async def _some(items: list[Any]) -> list[Any] | None:
    return items or None


async def test_a_receiver_down_then_failing_then_back_gets_everything_once_in_order(
        api, receiver, wait_for, tenant):
    partner = await register(api, receiver, "kinetic.booking.location.registered.v1")
    names = [f"Clinic {i}" for i in range(4)]
    for name in names:  # published while nobody listens
        await api("booking", "POST", "/locations", json={"name": name,
                                                          "timezone": "Europe/Berlin"})

    async def tried() -> bool:
        log = (await api("partners", "GET", f"/partners/{partner['partner_id']}/deliveries")
               ).json()
        return len(log) == 4 and any(d["attempts"] >= 1 for d in log)

    await wait_for(tried)
    receiver.status = 500
    await receiver.start()
    await wait_for(lambda: _const(500 in receiver.answered))
    receiver.status = 200
    await wait_for(lambda: _const(len(receiver.received) == 4), timeout=60)
    assert [e["data"]["name"] for e in receiver.received] == names
    assert len({e["id"] for e in receiver.received}) == 4
    log = (await api("partners", "GET", f"/partners/{partner['partner_id']}/deliveries")).json()
    assert {d["status"] for d in log} == {"delivered"}
    assert max(d["attempts"] for d in log) >= 2


async def _const(value: Any) -> Any:
    return value


async def test_two_partners_of_one_name_registered_at_once_are_one_partner_and_a_409(api):
    """Registrations queue up on the organization's registry: the second of a name finds
    the first and is refused, never an internal error."""
    answers = await asyncio.gather(*(api("partners", "POST", "/partners", json={
        "name": "twin-ehr", "webhook_url": "https://ehr.example/hooks",
        "grant": {"event_types": ["kinetic.booking.location.registered.v1"]}})
        for _ in range(6)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5, [a.text for a in answers]
    assert {a.json()["type"] for a in answers if a.status_code == 409} == {
        "/problems/partner-exists"}
    listed = await api("partners", "GET", "/partners")
    assert [p["name"] for p in listed.json()].count("twin-ehr") == 1


async def test_replay_from_a_time_sends_exactly_that_range_again(api, receiver, wait_for):
    await receiver.start()
    partner = await register(api, receiver, "kinetic.booking.location.registered.v1")
    await api("booking", "POST", "/locations", json={"name": "Before",
                                                      "timezone": "Europe/Berlin"})
    await wait_for(lambda: _const(len(receiver.received) == 1))
    since = datetime.now(UTC)
    for name in ("After 1", "After 2"):
        await api("booking", "POST", "/locations", json={"name": name,
                                                          "timezone": "Europe/Berlin"})
    await wait_for(lambda: _const(len(receiver.received) == 3))
    replay = await api("partners", "POST", f"/partners/{partner['partner_id']}/replay",
                       json={"since": since.isoformat()})
    assert replay.json() == {"requeued": 2}
    await wait_for(lambda: _const(len(receiver.received) == 5))
    for limit in (-1, 0, 5000):  # the log's page size is bounded, and said so
        log = await api("partners", "GET",
                        f"/partners/{partner['partner_id']}/deliveries?limit={limit}")
        assert log.status_code == 422, (limit, log.text)
    assert [e["data"]["name"] for e in receiver.received[3:]] == ["After 1", "After 2"]


async def test_a_patient_who_withdrew_consent_for_the_partner_stops_flowing_to_it(
        api, receiver, wait_for):
    await receiver.start()
    await register(api, receiver, "kinetic.booking.episode.opened.v1", name="acme-ehr")
    location = await api("booking", "POST", "/locations",
                         json={"name": "Consent Clinic", "timezone": "Europe/Berlin"})
    location_id = location.json()["id"]
    patients = []
    for given in ("Withdrew", "Stayed"):
        created = await api("booking", "POST", "/patients", json={
            "given_name": given, "family_name": "Person", "date_of_birth": "1980-01-01",
            "home_location_id": location_id})
        patients.append(created.json()["id"])
    withdrew, stayed = patients
    consent = await api("booking", "POST", f"/patients/{withdrew}/consents", json={
        "consent": "data_sharing", "partner": "acme-ehr", "granted": False, "version": "1"})
    assert consent.status_code == 204, consent.text
    for patient_id in (withdrew, stayed):
        await api("booking", "POST", "/episodes", json={
            "patient_id": patient_id, "location_id": location_id, "reason": "knee pain",
            "symptom_site": "knee_anterior"})
    [episode] = await wait_for(lambda: _some(receiver.of_type(
        "kinetic.booking.episode.opened.v1")))
    assert episode["data"]["patient_id"] == stayed
    await asyncio.sleep(1.0)  # the feed handles the stream in order: nothing else comes
    assert len(receiver.of_type("kinetic.booking.episode.opened.v1")) == 1


async def test_bad_registrations_are_refused_and_store_nothing(api, receiver, tenant):
    cases = [
        ({"name": "plain-http", "webhook_url": "http://crm.example/hook",
          "grant": {"event_types": ["kinetic.booking.*"]}}, 422, "/problems/insecure-webhook"),
        ({"name": "typo", "webhook_url": "https://crm.example/hook",
          "grant": {"event_types": ["kinetic.boking.*"]}}, 422, "/problems/unknown-event-type"),
        ({"name": "Bad Name!", "webhook_url": "https://crm.example/hook",
          "grant": {"event_types": ["kinetic.booking.*"]}}, 422, None),
        ({"name": "no-grant", "webhook_url": "https://crm.example/hook",
          "grant": {"event_types": []}}, 422, None),
    ]
    for body, code, problem in cases:
        response = await api("partners", "POST", "/partners", json=body)
        assert response.status_code == code, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        if problem:
            assert response.json()["type"] == problem
    first = await register(api, receiver, "kinetic.booking.*", name="twice")
    again = await api("partners", "POST", "/partners", json={
        "name": "twice", "webhook_url": receiver.url,
        "grant": {"event_types": ["kinetic.booking.*"]}})
    assert again.status_code == 409
    assert [p["name"] for p in (await api("partners", "GET", "/partners")).json()] == ["twice"]
    other = uuid.uuid4()
    assert (await api("partners", "GET", f"/partners/{first['partner_id']}",
                      as_tenant=other)).status_code == 404
    assert (await api("partners", "GET", "/partners", as_tenant=other)).json() == []


async def test_the_dispatcher_killed_mid_delivery_loses_nothing(
        platform, api, receiver, wait_for):
    """kill -9 while a webhook is in flight: its attempt was never recorded, so the next
    dispatcher sends it again — same event id, which the partner de-duplicates on."""
    receiver.delay = 3.0
    await receiver.start()
    await register(api, receiver, "kinetic.booking.location.registered.v1")
    names = [f"Killed {i}" for i in range(3)]
    for name in names:
        await api("booking", "POST", "/locations", json={"name": name,
                                                          "timezone": "Europe/Berlin"})
    await wait_for(lambda: _const(len(receiver.answered) == 0 and receiver.received == []
                                  and _in_flight(receiver)))
    [dispatcher] = [p for p in platform.processes
                    if p.name.startswith("partners-dispatcher") and p.alive()]
    os.kill(dispatcher.pid, signal.SIGKILL)
    receiver.delay = 0.0
    definition = next(d for d in platform.services if d.name == "partners")
    platform.start_process(definition, "dispatcher", suffix=f"-{dispatcher.pid}")
    await wait_for(lambda: _const({e["data"]["name"] for e in receiver.received}
                                  == set(names)), timeout=60)
    by_name: dict[str, set[str]] = {}
    for e in receiver.received:
        by_name.setdefault(e["data"]["name"], set()).add(e["id"])
    assert all(len(ids) == 1 for ids in by_name.values())  # a repeat keeps its id
    first_seen = list(dict.fromkeys(e["id"] for e in receiver.received))
    names_by_id = {e["id"]: e["data"]["name"] for e in receiver.received}
    assert [names_by_id[i] for i in first_seen] == names  # in order, de-duplicated by id


def _in_flight(receiver: Receiver) -> bool:
    return receiver.requests > 0


async def test_a_rotated_secret_overlaps_then_only_the_new_one_signs(api, receiver, wait_for):
    await receiver.start()
    partner = await register(api, receiver, "kinetic.booking.location.registered.v1")
    old = receiver.secret
    rotate = f"/partners/{partner['partner_id']}/secret/rotate"
    once = {"Idempotency-Key": str(uuid.uuid4())}
    rotated = await api("partners", "POST", rotate, json={"overlap_hours": 1}, headers=once)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    # The same request again (a retry, a reload) answers the same secret and rotates nothing;
    # another rotation inside the overlap would end the old secret early, so it is refused.
    again = await api("partners", "POST", rotate, json={"overlap_hours": 1}, headers=once)
    assert again.status_code == 200 and again.json()["secret"] == new
    early = await api("partners", "POST", rotate, json={"overlap_hours": 24})
    assert early.status_code == 409, early.text
    assert early.json()["type"] == "/problems/rotation-in-progress"
    assert new != old and "secret" not in (await api(
        "partners", "GET", f"/partners/{partner['partner_id']}")).json()
    receiver.also = [new]  # the receiver still holds the old secret, and checks the new too
    await api("booking", "POST", "/locations", json={"name": "Overlap",
                                                      "timezone": "Europe/Berlin"})
    await wait_for(lambda: _const(len(receiver.received) == 1))
    # No overlap: only the newest secret signs; a receiver that kept the old one refuses,
    # and once it switches, the retried delivery arrives.
    third = (await api("partners", "POST", rotate, json={"overlap_hours": 0})).json()["secret"]
    receiver.also = []
    await api("booking", "POST", "/locations", json={"name": "After",
                                                      "timezone": "Europe/Berlin"})
    await wait_for(lambda: _const(receiver.rejected > 0))
    receiver.secret = third
    await wait_for(lambda: _const(len(receiver.received) == 2), timeout=60)
    assert receiver.received[1]["data"]["name"] == "After"


EXAMPLE = Path(__file__).parents[2] / "contracts" / "examples" / "webhook_receiver.py"


async def test_the_example_receiver_verifies_with_the_contracts_helper(api, wait_for):
    """The receiver partners are given to start from, run as it is: it verifies Kinetic's
    signature with ``kinetic_contracts.webhooks`` and prints the event."""
    port = free_port()
    response = await api("partners", "POST", "/partners", json={
        "name": "example", "webhook_url": f"http://127.0.0.1:{port}/",
        "grant": {"event_types": ["kinetic.booking.location.registered.v1"]}})
    secret = response.json()["secret"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), "--secret", secret, "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert b"listening" in await asyncio.wait_for(process.stderr.readline(), 30)
        location = await api("booking", "POST", "/locations", json={
            "name": "Example Clinic", "timezone": "Europe/Berlin"})
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        printed = json.loads(line)
        assert printed["type"] == "kinetic.booking.location.registered.v1"
        assert printed["data"]["location_id"] == location.json()["id"]
    finally:
        process.terminate()
        await process.wait()


async def test_the_contracts_are_served_as_pages_identical_to_the_committed_files(urls):
    import httpx

    from kinetic_contracts.registry import EVENT_MODELS

    committed = Path(__file__).parents[2] / "contracts"
    async with httpx.AsyncClient(base_url=urls["partners"], timeout=60) as client:
        page = await client.get("/contracts")  # public: no token
        assert page.status_code == 200
        assert all(event_type in page.text for event_type in EVENT_MODELS)
        name = "kinetic.billing.invoice.issued.v1.json"
        schema = await client.get(f"/contracts/schemas/{name}")
        assert schema.text == (committed / "schemas" / name).read_text()
        asyncapi = await client.get("/contracts/asyncapi.json")
        assert asyncapi.text == (committed / "asyncapi.json").read_text()
        missing = await client.get("/contracts/schemas/nothing.json")
        assert missing.status_code == 404
        assert missing.json()["type"] == "/problems/schema-not-found"


# --- the FHIR read API --------------------------------------------------------------------

CONTACT = "kinetic.partners.patient.contact_details_disclosed.v1"
NOTES = "kinetic.partners.evaluation.clinical_notes_disclosed.v1"
ERASE = "kinetic.partners.patient.disclosure_withdrawn.v1"
ADDENDUM = "kinetic.partners.evaluation.addendum_disclosed.v1"


async def test_contact_details_and_clinical_notes_reach_only_a_granted_partner_consented_to(
        api, urls, episode, wait_for):
    """Three partners see the same patient: one granted contact details and clinical free text
    and named in the patient's consent, one consented to but granted identifiers only, one
    granted both classes but never consented to. Only the first receives the name, the
    therapist's rationale and the explanation (webhook and FHIR); a withdrawal then tells it
    to erase them and its EHR reads nothing more of the patient."""
    from tests.e2e.test_evaluations import REASONING, evaluate_the_runner

    richer = ("identifiers", "contact_details", "clinical_free_text")
    granted, plain, unasked = Receiver(), Receiver(), Receiver()
    partners = {}
    for receiver, name, classes in ((granted, "granted-ehr", richer),
                                    (plain, "plain-ehr", ("identifiers",)),
                                    (unasked, "unasked-ehr", richer)):
        await receiver.start()
        partners[name] = await register(
            api, receiver, "kinetic.booking.patient.*", "kinetic.assessment.evaluation.*",
            name=name, data_classes=classes)
    since = datetime.now(UTC)
    try:
        patient = episode["patient_id"]  # registered before any partner existed
        for name in ("granted-ehr", "plain-ehr"):
            consent = await api("booking", "POST", f"/patients/{patient}/consents", json={
                "consent": "data_sharing", "partner": name, "granted": True, "version": "2"})
            assert consent.status_code == 204, consent.text
        # The details recorded at registration are disclosed once the consent names it.
        [details] = await wait_for(lambda: _some(granted.of_type(CONTACT)))
        assert (details["data"]["patient_id"], details["data"]["family_name"]) == (
            patient, "Canarysson")
        assert details["source"] == "/kinetic/partners"

        evaluation = await api("assessment", "POST", "/evaluations",
                               json={"episode_id": episode["episode_id"]})
        evaluation_id = evaluation.json()["id"]
        done = await evaluate_the_runner(api, evaluation_id)
        assert done["status"] == "completed", done
        [notes] = await wait_for(lambda: _some(granted.of_type(NOTES)))
        rationale = REASONING["drivers"][0]["rationale"]
        assert notes["data"]["drivers"][0]["rationale"] == rationale
        assert notes["data"]["explanation"] and notes["data"]["evaluation_id"] == evaluation_id
        assert notes["data"]["working_diagnosis"] == "Patellofemoral pain"
        # A correction reaches it too: the addendum's reason and text, never the others.
        correction = "Hip ER was 9.0 kgf, not 6.0"
        added = await api("assessment", "POST", f"/evaluations/{evaluation_id}/addenda",
                          json={"reason": "Corrected hip ER value", "text": correction})
        assert added.status_code == 201, added.text
        [addendum] = await wait_for(lambda: _some(granted.of_type(ADDENDUM)))
        assert (addendum["data"]["evaluation_id"], addendum["data"]["text"]) == (
            evaluation_id, correction)
        addendum_added = "kinetic.assessment.evaluation.addendum_added.v1"
        await wait_for(lambda: _some(plain.of_type(addendum_added)))

        # The others took the same events' identifiers, and nothing more.
        completed = "kinetic.assessment.evaluation.completed.v1"
        for other in (plain, unasked):
            await wait_for(lambda other=other: _some(other.of_type(completed)))
            seen = json.dumps(other.received)
            assert "Canarysson" not in seen and rationale not in seen
            assert notes["data"]["explanation"] not in seen and correction not in seen
            assert not other.of_type(CONTACT) + other.of_type(NOTES) + other.of_type(ADDENDUM)
        # Nor did any partner receive the restricted events as they are.
        for receiver in (granted, plain, unasked):
            assert not {e["type"] for e in receiver.received} & {
                "kinetic.booking.patient.contact_details_recorded.v1",
                "kinetic.assessment.evaluation.clinical_notes_recorded.v1",
                "kinetic.assessment.evaluation.addendum_text_recorded.v1"}

        # The granted partner's EHR reads the name and the notes; the plain one's does not.
        key = await fhir_key(api, partners["granted-ehr"]["partner_id"])
        status, person = await fhir(urls, key, f"/Patient/{patient}")
        assert status == 200 and person["name"][0]["family"] == "Canarysson", person
        status, impression = await fhir(urls, key, f"/ClinicalImpression/{evaluation_id}")
        assert status == 200 and rationale in json.dumps(impression["note"]), impression
        assert correction in impression["note"][-1]["text"]
        plain_key = await fhir_key(api, partners["plain-ehr"]["partner_id"])
        # (Registered before the partner existed: its EHR has no Patient, and no name.)
        assert (await fhir(urls, plain_key, f"/Patient/{patient}"))[0] == 404
        status, impression = await fhir(urls, plain_key, f"/ClinicalImpression/{evaluation_id}")
        assert status == 200 and "note" not in impression

        # Withdrawn: the partner is told to erase what it holds, and its EHR forgets.
        withdrawn = await api("booking", "POST", f"/patients/{patient}/consents", json={
            "consent": "data_sharing", "partner": "granted-ehr", "granted": False,
            "version": "2"})
        assert withdrawn.status_code == 204, withdrawn.text
        [erase] = await wait_for(lambda: _some(granted.of_type(ERASE)))
        assert erase["data"] == {"patient_id": patient, "erase": list(richer[1:]),
                                 "withdrawn_at": erase["data"]["withdrawn_at"]}
        assert (await fhir(urls, key, f"/Patient/{patient}"))[0] == 404
        assert len(granted.of_type(CONTACT)) == len(granted.of_type(NOTES)) == 1
        assert len(granted.of_type(ADDENDUM)) == 1
        assert not plain.of_type(ERASE)  # it was never granted more than identifiers

        # A replay from before the consent sends the instruction to erase again, and nothing
        # of the patient that the partner was told to erase (nor any other of their events).
        replay = await api("partners", "POST",
                           f"/partners/{partners['granted-ehr']['partner_id']}/replay",
                           json={"since": since.isoformat()})
        assert replay.status_code == 200, replay.text
        seen = len(granted.received)
        await wait_for(lambda: _some(granted.of_type(ERASE)[1:]))
        await asyncio.sleep(1)  # time for anything else the replay sent to arrive
        again = granted.received[seen:]
        assert ERASE in [e["type"] for e in again]
        assert not [e for e in again
                    if e["type"] != ERASE and e["data"].get("patient_id") == patient]
        assert len(granted.of_type(CONTACT)) == len(granted.of_type(NOTES)) == 1
        assert len(granted.of_type(ADDENDUM)) == 1
        assert "Canarysson" not in json.dumps(again)
    finally:
        for receiver in (granted, plain, unasked):
            await receiver.stop()


async def fhir(urls, key: str | None, path: str) -> tuple[int, dict]:
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=f"{urls['partners']}/fhir/R4", timeout=15) as client:
        response = await client.get(path, headers=headers)
    assert response.headers["content-type"].startswith("application/fhir+json"), path
    return response.status_code, response.json()


async def fhir_key(api, partner_id: str) -> str:
    issued = await api("partners", "POST", f"/partners/{partner_id}/fhir-key")
    assert issued.status_code == 200, issued.text
    return issued.json()["fhir_key"]


async def test_fhir_resources_of_the_worked_example_validate_and_reference_each_other(
        api, urls, receiver, wait_for):
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    from partners.domain.fhir import MODELS
    from tests.e2e.test_appointments import hour_from_now
    from tests.e2e.test_plan import evaluated_plan, far_dates

    await receiver.start()
    partner = await register(api, receiver, "kinetic.booking.*", "kinetic.assessment.*",
                             "kinetic.plan.*", name="riverside-ehr")
    key = await fhir_key(api, partner["partner_id"])

    # The runner of CLINICAL.md §5: registered, an episode for anterior knee pain, the initial
    # assessment booked, attended and completed, evaluated, and the drafted plan activated.
    location = (await api("booking", "POST", "/locations", json={
        "name": "Riverside Clinic", "timezone": "Europe/Berlin"})).json()["id"]
    therapist = (await api("booking", "POST", "/therapists",
                           json={"location_ids": [location]})).json()["id"]
    patient = (await api("booking", "POST", "/patients", json={
        "given_name": "Ada", "family_name": "Canarysson", "date_of_birth": "1996-04-02",
        "phone": "+49 30 5550100", "home_location_id": location})).json()["id"]
    episode_id = (await api("booking", "POST", "/episodes", json={
        "patient_id": patient, "location_id": location, "symptom_site": "knee_anterior",
        "reason": "Right knee pain when running, 10 weeks"})).json()["id"]
    booked = await api("booking", "POST", "/appointments", json={
        "patient_id": patient, "therapist_id": therapist, "location_id": location,
        "episode_id": episode_id, "appointment_type": "initial_assessment",
        "starts_at": hour_from_now(0.5).isoformat()})
    assert booked.status_code == 201, booked.text
    appointment = booked.json()["id"]
    for step in ("check-in", "complete"):
        done = await api("booking", "POST", f"/appointments/{appointment}/{step}")
        assert done.status_code == 200, done.text

    async def known() -> bool:
        return (await api("assessment", "GET", f"/episodes/{episode_id}")).status_code == 200

    await wait_for(known)
    episode = {"episode_id": episode_id, "patient_id": patient, "location_id": location}
    plan = await evaluated_plan(api, episode, wait_for)
    base = f"/episodes/{episode_id}/plan"
    assert (await api("plan", "PUT", base, headers={"If-Match": str(plan["version"])},
                      json={"content": far_dates(plan["content"], datetime.now(UTC).date())})
            ).status_code == 200
    assert (await api("plan", "POST", f"{base}/activate")).status_code == 200

    async def searched(kind: str, at_least: int = 1) -> list[dict] | None:
        status, bundle = await fhir(urls, key, f"/{kind}?patient=Patient/{patient}")
        assert status == 200, bundle
        entries = [e["resource"] for e in bundle.get("entry", [])]
        return entries if len(entries) >= at_least else None

    [encounter] = await wait_for(lambda: searched("Encounter"))
    [care_plan] = await wait_for(lambda: searched("CarePlan"))
    [episode_of_care] = await wait_for(lambda: searched("EpisodeOfCare"))
    [impression] = await wait_for(lambda: searched("ClinicalImpression"))
    conditions = await wait_for(lambda: searched("Condition"))
    observations = await wait_for(lambda: searched("Observation"))
    goals = await wait_for(lambda: searched("Goal"))
    [appointment_resource] = await wait_for(lambda: searched("Appointment"))

    # Every resource validates against its R4B model, and carries its version.
    resources = [encounter, care_plan, episode_of_care, impression, appointment_resource,
                 *conditions, *observations, *goals]
    for resource in resources:
        MODELS[resource["resourceType"]].model_validate(resource)
        assert resource["meta"]["versionId"]
    # EpisodeOfCare ← Encounter → Appointment; the episode is the one booking opened.
    assert episode_of_care["id"] == episode_id
    assert [r["reference"] for r in encounter["episodeOfCare"]] == [f"EpisodeOfCare/{episode_id}"]
    assert [r["reference"] for r in encounter["appointment"]] == [f"Appointment/{appointment}"]
    assert appointment_resource["status"] == "fulfilled"
    # CarePlan → Goal: every goal it names reads back as a Goal of the same patient.
    for ref in care_plan.get("goal", []):
        status, goal = await fhir(urls, key, f"/{ref['reference']}")
        assert status == 200 and goal["resourceType"] == "Goal", goal
        assert goal["subject"]["reference"] == f"Patient/{patient}"
    assert care_plan["subject"]["reference"] == f"Patient/{patient}"
    # Identifiers only: the patient's name and phone number never reach the EHR.
    status, patient_resource = await fhir(urls, key, f"/Patient/{patient}")
    assert status == 200
    MODELS["Patient"].model_validate(patient_resource)
    assert not {"name", "telecom", "address"} & patient_resource.keys()
    everything = json.dumps(resources + [patient_resource])
    assert "Canarysson" not in everything and "5550100" not in everything

    # The capability statement is public; everything else needs the partner's own key.
    status, capability = await fhir(urls, None, "/metadata")
    assert status == 200
    CapabilityStatement.model_validate(capability)
    status, denied = await fhir(urls, None, f"/Patient/{patient}")
    assert status == 401 and denied["resourceType"] == "OperationOutcome"
    status, _ = await fhir(urls, key + "x", f"/Patient/{patient}")
    assert status == 401
    # Another organization's partner, with its own valid key, finds none of this patient.
    elsewhere = uuid.uuid4()
    other = await api("partners", "POST", "/partners", as_tenant=elsewhere, json={
        "name": "riverside-ehr", "webhook_url": receiver.url,
        "grant": {"event_types": ["kinetic.booking.*"]}})
    other_key = (await api("partners", "POST", f"/partners/{other.json()['partner_id']}/fhir-key",
                           as_tenant=elsewhere)).json()["fhir_key"]
    assert (await fhir(urls, other_key, f"/Patient/{patient}"))[0] == 404
    status, empty = await fhir(urls, other_key, f"/Encounter?patient=Patient/{patient}")
    assert status == 200 and empty["total"] == 0
    # A new key replaces the old one.
    fresh = await fhir_key(api, partner["partner_id"])
    assert (await fhir(urls, key, f"/Patient/{patient}"))[0] == 401
    assert (await fhir(urls, fresh, f"/Patient/{patient}"))[0] == 200


async def test_under_mixed_load_a_partner_gets_no_name_or_phone_and_nothing_of_another_org(
        api, urls, wait_for, platform):
    """Two organizations busy at once (patients with canary names and phone numbers, episodes,
    bookings, cancellations, reschedules); each has a partner granted everything but contact
    details. A canary scan over everything each receiver verified, everything its NATS
    consumer read and its FHIR resources finds no name or phone number and nothing of the
    other organization."""
    from tests.e2e.test_appointments import hour_from_now
    from tests.e2e.test_partner_nats import PartnerConnection

    orgs = {name: uuid.uuid4() for name in ("a", "b")}
    receivers = {name: Receiver() for name in orgs}
    canaries: dict[str, set[str]] = {name: set() for name in orgs}
    ids: dict[str, set[str]] = {name: set() for name in orgs}
    keys: dict[str, str] = {}
    nats_keys: dict[str, str] = {}
    try:
        for name, org in orgs.items():
            await receivers[name].start()
            registered = await api("partners", "POST", "/partners", as_tenant=org, json={
                "name": f"{name}-crm", "webhook_url": receivers[name].url,
                "grant": {"event_types": ["kinetic.booking.*", "kinetic.assessment.*",
                                          "kinetic.plan.*", "kinetic.billing.*"]}})
            assert registered.status_code == 201, registered.text
            receivers[name].secret = registered.json()["secret"]
            keys[name] = (await api("partners", "POST",
                                    f"/partners/{registered.json()['partner_id']}/fhir-key",
                                    as_tenant=org)).json()["fhir_key"]
            nats_keys[name] = (await api("partners", "POST",
                                         f"/partners/{registered.json()['partner_id']}/nats-key",
                                         as_tenant=org)).json()["nats_key"]

        async def busy(name: str) -> None:
            org = orgs[name]

            async def post(path: str, body: dict | None = None) -> dict:
                response = await api("booking", "POST", path, as_tenant=org, json=body)
                assert response.status_code in (200, 201), response.text
                return response.json()

            location = (await post("/locations", {"name": f"{name} clinic",
                                                  "timezone": "Europe/Berlin"}))["id"]
            therapist = (await post("/therapists", {"location_ids": [location]}))["id"]
            ids[name] |= {location, therapist}
            for i in range(6):
                family, phone = f"Canary{name.upper()}{i}x", f"+49 30 77{i}{ord(name)}99"
                canaries[name] |= {family, phone.replace(" ", ""), phone}
                patient = (await post("/patients", {
                    "given_name": "Zelda", "family_name": family, "date_of_birth": "1990-05-06",
                    "phone": phone, "email": f"{family.lower()}@example.org",
                    "home_location_id": location}))["id"]
                episode = (await post("/episodes", {
                    "patient_id": patient, "location_id": location,
                    "symptom_site": "knee_anterior",
                    "reason": f"{family} hurts running"}))["id"]
                canaries[name].add(f"{family.lower()}@example.org")
                ids[name] |= {patient, episode}
                booked = await post("/appointments", {
                    "patient_id": patient, "therapist_id": therapist, "location_id": location,
                    "episode_id": episode, "appointment_type": "initial_assessment",
                    "starts_at": hour_from_now(30 + 2 * i).isoformat()})
                if i % 3 == 1:
                    await post(f"/appointments/{booked['id']}/cancel")
                elif i % 3 == 2:
                    await post(f"/appointments/{booked['id']}/reschedule",
                               {"starts_at": hour_from_now(80 + 2 * i).isoformat()})

        await asyncio.gather(busy("a"), busy("b"))

        for name in orgs:  # every org's own patients arrive (the scan has something to scan)
            await wait_for(lambda name=name: _const(len(receivers[name].of_type(
                "kinetic.booking.episode.opened.v1")) == 6), timeout=60)
        for name, other in (("a", "b"), ("b", "a")):
            delivered = json.dumps(receivers[name].received)
            fhir_seen = json.dumps([(await fhir(urls, keys[name], f"/{kind}"))[1]
                                    for kind in ("Patient", "EpisodeOfCare", "Appointment")])
            async with PartnerConnection(platform.nats.url, nats_keys[name]) as consumer:
                read = await consumer.read_all(lambda got: len(
                    [e for e in got if e["type"] == "kinetic.booking.episode.opened.v1"]) >= 6)
            for text in (delivered, fhir_seen, json.dumps(read)):
                assert not [c for c in canaries[name] | canaries[other] if c in text]
                assert not [i for i in ids[other] if i in text]
            for events in (receivers[name].received, read):
                assert {e["tenantid"] for e in events} == {str(orgs[name])}
            assert receivers[name].rejected == 0
    finally:
        for r in receivers.values():
            await r.stop()


async def test_one_episode_retried_holds_back_only_its_own_later_events(api, receiver, wait_for):
    """Deliveries keep their order within a patient's episode; another patient's go on."""
    await receiver.start()
    await register(api, receiver, "kinetic.booking.episode.*", "kinetic.booking.appointment.*")
    location = (await api("booking", "POST", "/locations", json={
        "name": "Lane Clinic", "timezone": "Europe/Berlin"})).json()["id"]
    therapist = (await api("booking", "POST", "/therapists",
                           json={"location_ids": [location]})).json()["id"]
    patients = {given: (await api("booking", "POST", "/patients", json={
        "given_name": given, "family_name": "Lane", "date_of_birth": "1985-01-01",
        "home_location_id": location})).json()["id"] for given in ("Held", "Flowing")}
    receiver.refuse = lambda e: e["data"].get("patient_id") == patients["Held"]
    episodes = {given: (patient, (await api("booking", "POST", "/episodes", json={
        "patient_id": patient, "location_id": location, "symptom_site": "knee_anterior",
        "reason": "knee"})).json()["id"]) for given, patient in patients.items()}
    from tests.e2e.test_appointments import hour_from_now

    for i, (given, (patient, episode)) in enumerate(sorted(episodes.items())):
        booked = await api("booking", "POST", "/appointments", json={
            "patient_id": patient, "therapist_id": therapist, "location_id": location,
            "episode_id": episode, "appointment_type": "initial_assessment",
            "starts_at": hour_from_now(40 + 2 * i).isoformat()})
        assert booked.status_code == 201, booked.text
        await api("booking", "POST", f"/appointments/{booked.json()['id']}/cancel")

    def of_patient(given: str) -> list[str]:
        return [e["type"].split(".")[-2] for e in receiver.received
                if e["data"].get("patient_id") == episodes[given][0]]

    in_order = ["opened", "booked", "cancelled"]
    await wait_for(lambda: _const(of_patient("Flowing") == in_order))
    assert of_patient("Held") == []  # still being retried, and nothing of it overtook
    receiver.refuse = None
    await wait_for(lambda: _const(of_patient("Held") == in_order), timeout=60)


async def test_a_partner_registered_after_the_patient_consented_to_it_gets_the_details_at_once(
        api, platform, front_desk, tenant, wait_for):
    """Consents name partners, so a patient may consent to one the clinic connects later:
    its registration discloses the details recorded before, once, and only to a partner
    granted them."""
    import asyncpg

    patient = front_desk["patient_id"]
    for name in ("later-crm", "later-plain"):
        consent = await api("booking", "POST", f"/patients/{patient}/consents", json={
            "consent": "data_sharing", "partner": name, "granted": True, "version": "3"})
        assert consent.status_code == 204, consent.text

    async def partners_know_both() -> bool:  # the consents and the details it keeps
        conn = await asyncpg.connect(platform.maintenance_url("partners"))
        try:
            return await conn.fetchval(
                "SELECT (SELECT count(*) FROM partner_consents WHERE patient_id = $1) = 2 AND "
                "EXISTS (SELECT 1 FROM disclosable WHERE patient_id = $1)", uuid.UUID(patient))
        finally:
            await conn.close()

    await wait_for(partners_know_both)
    late, plain = Receiver(), Receiver()
    try:
        for receiver, name, classes in ((late, "later-crm", ("identifiers", "contact_details")),
                                        (plain, "later-plain", ("identifiers",))):
            await receiver.start()
            await register(api, receiver, "kinetic.booking.patient.*", name=name,
                           data_classes=classes)
        [details] = await wait_for(lambda: _some(late.of_type(CONTACT)))
        assert (details["data"]["patient_id"], details["data"]["family_name"]) == (
            patient, "Canarysson")
        await asyncio.sleep(1)  # what else would come has had the time to
        assert len(late.of_type(CONTACT)) == 1
        assert "Canarysson" not in json.dumps(plain.received)
    finally:
        for receiver in (late, plain):
            await receiver.stop()


async def test_a_consent_and_the_registration_it_names_at_the_same_moment_still_disclose(
        platform, front_desk, tenant, wait_for):
    """The consent's handler looks for the partner and the registration looks for consents:
    run side by side, each could miss what the other has not committed yet. The
    registration waits for the handler instead, then sees its consent: one disclosure."""
    import asyncpg
    from sqlalchemy import insert as sa_insert
    from sqlalchemy.ext.asyncio import create_async_engine

    from kinetic_contracts import CloudEvent
    from kinetic_contracts.booking.v1.events import PatientConsentRecorded
    from kinetic_infra.db.database import sqlalchemy_url
    from partners.adapters import feed

    patient = uuid.UUID(front_desk["patient_id"])

    async def details_kept() -> bool:
        conn = await asyncpg.connect(platform.maintenance_url("partners"))
        try:
            return bool(await conn.fetchval(
                "SELECT count(*) FROM disclosable WHERE patient_id = $1", patient))
        finally:
            await conn.close()

    await wait_for(details_kept)
    now = datetime.now(UTC)
    consent = PatientConsentRecorded(patient_id=patient, consent="data_sharing",
                                     partner="racing-crm", granted=True, version="1",
                                     recorded_at=now)
    consent_event = CloudEvent(id=uuid.uuid4(), source="/kinetic/booking",
                               type=consent.event_type, subject=str(patient), time=now,
                               data=consent.model_dump(mode="json"), tenantid=tenant,
                               sequence=2)
    partner_id = uuid.uuid4()
    row = {"partner_id": partner_id, "tenant_id": tenant, "name": "racing-crm",
           "webhook_url": "http://127.0.0.1:9/unused",
           "event_types": ["kinetic.booking.patient.*"],
           "data_classes": ["identifiers", "contact_details"], "secret": "whsec_x",
           "registered_at": now}
    registered = CloudEvent(id=uuid.uuid4(), source="/kinetic/partners",
                            type="kinetic.partners.partner.registered.v1",
                            subject=str(partner_id), time=now, data={}, tenantid=tenant,
                            sequence=1)
    engine = create_async_engine(sqlalchemy_url(platform.maintenance_url("partners")))
    try:
        async with engine.connect() as handler, engine.connect() as registration:
            await handler.begin()
            await feed._record_consent(handler, consent_event)  # sees no such partner yet
            await registration.begin()
            await registration.execute(sa_insert(feed.partners).values(**row))
            disclosing = asyncio.create_task(
                feed.disclose_to_new_partner(registration, row, registered))
            await asyncio.sleep(1)
            assert not disclosing.done(), "the registration did not wait for the consent"
            await handler.commit()
            assert await asyncio.wait_for(disclosing, 10) == 1
            await registration.rollback()  # a partner of this test only
    finally:
        await engine.dispose()
