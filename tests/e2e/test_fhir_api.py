"""The FHIR read API's search over HTTP, as an EHR uses it: strict parameters (one it does not
support is refused, never ignored), the real total and paging links, identifiers matched on
system and value, an OperationOutcome for every error, and an audit record for every
patient a search answered about."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.e2e.test_partners import Receiver, fhir_key, register

pytestmark = pytest.mark.platform

FHIR_JSON = "application/fhir+json"


class Ehr:
    """A partner's EHR: its FHIR key and the API's absolute base."""

    def __init__(self, base: str, key: str, partner_id: str) -> None:
        self.base, self.key, self.partner_id = base, key, partner_id

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        async with httpx.AsyncClient(timeout=15) as client:
            url = path if path.startswith("http") else f"{self.base}{path}"
            response = await client.request(method, url, headers=headers, **kwargs)
        assert response.headers["content-type"] == FHIR_JSON, (path, response.text)
        return response

    async def search(self, path: str) -> dict[str, Any]:
        response = await self.call("GET", path)
        assert response.status_code == 200, response.text
        Bundle.model_validate(response.json())
        return response.json()

    async def refused(self, method: str, path: str, status: int = 400, **kwargs: Any
                      ) -> str:
        """The OperationOutcome's diagnostics, all in one text."""
        response = await self.call(method, path, **kwargs)
        assert response.status_code == status, (path, response.text)
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome", outcome
        return " ".join(issue["diagnostics"] for issue in outcome["issue"])


def ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle["link"]}


@pytest.fixture
async def ehr(api, urls, wait_for) -> AsyncIterator[dict[str, Any]]:
    """A partner granted booking's and billing's events, registered before three patients
    (each with an episode of care: an EpisodeOfCare and a Condition) of a fresh
    organization, with their FHIR resources in place."""
    receiver = Receiver()
    await receiver.start()
    try:
        partner = await register(api, receiver, "kinetic.booking.*", "kinetic.billing.*",
                                 name="search-ehr")
        key = await fhir_key(api, partner["partner_id"])
        client = Ehr(f"{urls['partners']}/fhir/R4", key, partner["partner_id"])
        location = (await api("booking", "POST", "/locations", json={
            "name": "Search Clinic", "timezone": "Europe/Berlin"})).json()["id"]
        patients, episodes = [], []
        for given in ("Ana", "Ben", "Cy"):
            patient = (await api("booking", "POST", "/patients", json={
                "given_name": given, "family_name": "Searle", "date_of_birth": "1990-01-01",
                "home_location_id": location})).json()["id"]
            opened = await api("booking", "POST", "/episodes", json={
                "patient_id": patient, "location_id": location,
                "symptom_site": "knee_anterior", "reason": "knee"})
            assert opened.status_code == 201, opened.text
            patients.append(patient)
            episodes.append(opened.json()["id"])

        async def projected() -> bool:
            return all([len((await client.call("GET", f"/{kind}")).json().get("entry", [])) == 3
                        for kind in ("Patient", "EpisodeOfCare", "Condition")])

        await wait_for(projected)
        yield {"client": client, "patients": patients, "episodes": episodes,
               "location_id": location}
    finally:
        await receiver.stop()


async def test_an_unsupported_search_parameter_is_refused_by_name_never_ignored(ehr):
    """``subject`` and ``date`` were dropped, answering every patient's resources."""
    client, [a, *_] = ehr["client"], ehr["patients"]
    text = await client.refused("GET", f"/Condition?subject=Patient/{a}&date=ge2026")
    assert "'date'" in text and "'subject'" not in text
    text = await client.refused("GET", "/Condition?_sort=date&patient:missing=true&_count=2")
    assert "'_sort'" in text and "'patient:missing'" in text
    # Where a type has no such parameter, the same: refused, named.
    assert "'subject'" in await client.refused("GET", f"/EpisodeOfCare?subject={a}")
    assert "'patient'" in await client.refused("GET", f"/Patient?patient={a}")
    # An empty value would otherwise widen the search to everyone.
    assert "has no value" in await client.refused("GET", "/Condition?patient=")


async def test_subject_searches_the_patient_like_patient_and_the_self_link_says_so(ehr):
    client, [a, b, _] = ehr["client"], ehr["patients"]
    by_patient = await client.search(f"/Condition?patient=Patient/{a}")
    assert by_patient["total"] == 1
    assert by_patient["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{a}"
    for query in (f"subject=Patient/{a}", f"subject={a}"):
        by_subject = await client.search(f"/Condition?{query}")
        assert ids(by_subject) == ids(by_patient)
        assert links(by_subject)["self"] == (
            f"{client.base}/Condition?subject=Patient%2F{a}&_count=100&_offset=0")
    either = await client.search(f"/Condition?subject={a},{b}")
    assert either["total"] == 2


async def test_total_counts_every_match_and_next_and_previous_links_page_through_them(ehr):
    client, patients = ehr["client"], ehr["patients"]
    first = await client.search("/Patient?_count=2")
    assert first["total"] == 3 and len(first["entry"]) == 2  # not the count after LIMIT
    assert "previous" not in links(first)
    second = await client.search(links(first)["next"])
    assert second["total"] == 3 and len(second["entry"]) == 1
    assert "next" not in links(second)
    assert links(second)["self"] == f"{client.base}/Patient?_count=2&_offset=2"
    assert ids(await client.search(links(second)["previous"])) == ids(first)
    assert sorted(ids(first) + ids(second)) == sorted(patients)
    for entry in first["entry"] + second["entry"]:  # absolute, from the request's base
        assert entry["fullUrl"] == f"{client.base}/Patient/{entry['resource']['id']}"
    # _count=0: the real total, and no entries.
    counted = await client.search("/Patient?_count=0")
    assert counted["total"] == 3 and "entry" not in counted
    # The same parameters by POST, form-encoded, as R4 servers take them.
    posted = await client.call("POST", "/Patient/_search", data={"_count": "2"})
    assert posted.status_code == 200, posted.text
    assert (posted.json()["total"], ids(posted.json())) == (3, ids(first))
    assert links(posted.json())["next"] == links(first)["next"]


async def test_identifier_matches_the_system_and_value_of_the_resources_own_identifiers(
        ehr, api, platform, tenant, wait_for):
    from tests.e2e.test_billing import completed, deliver, priced_at

    client, patients, episodes = ehr["client"], ehr["patients"], ehr["episodes"]
    episode = episodes[1]
    for query in (f"urn:kinetic:episode|{episode}", episode):
        assert ids(await client.search(f"/EpisodeOfCare?identifier={query}")) == [episode]
    for query in (f"urn:kinetic:patient|{episode}", "urn:kinetic:episode|nothing"):
        assert (await client.search(f"/EpisodeOfCare?identifier={query}"))["total"] == 0
    assert (await client.search("/EpisodeOfCare?identifier=urn:kinetic:episode|"))["total"] == 3
    # Types whose resources carry no identifier refuse it (it used to compare the id).
    condition = (await client.search("/Condition?_count=1"))["entry"][0]["resource"]["id"]
    for kind in ("Condition", "Observation", "Goal"):
        assert "'identifier'" in await client.refused("GET", f"/{kind}?identifier={condition}")

    # An invoice by the number billing gave it (system|value), as an EHR would find it.
    therapist = await priced_at(api, wait_for, ehr["location_id"])
    session = completed({"patient_id": patients[0], "therapist_id": therapist,
                         "location_id": ehr["location_id"]})
    await deliver(platform, tenant, session)

    async def invoiced() -> list[dict[str, Any]]:
        return (await api("billing", "GET", "/invoices")).json()

    [invoice] = await wait_for(invoiced, timeout=60)
    number = invoice["number"]

    async def found() -> dict[str, Any] | None:
        bundle = await client.search(
            f"/Invoice?identifier=urn:kinetic:invoice-number|{number}")
        return bundle if bundle["total"] else None

    bundle = await wait_for(found)
    assert ids(bundle) == [str(invoice["invoice_id"])]
    assert ids(await client.search(f"/Invoice?identifier={number}")) == ids(bundle)
    assert (await client.search(f"/Invoice?identifier=urn:kinetic:invoice|{number}")
            )["total"] == 0


async def test_every_error_under_the_fhir_prefix_is_an_operation_outcome(ehr):
    client, [a, *_] = ehr["client"], ehr["patients"]
    assert "_count" in await client.refused("GET", "/Patient?_count=²")  # was a 500
    assert "FHIR id" in await client.refused("GET", "/Patient/a%00b")  # was a 422 problem
    assert "NUL" in await client.refused("GET", "/EpisodeOfCare?identifier=a%00b")
    # vread of the current version; no other version is kept.
    current = await client.call("GET", f"/Patient/{a}")
    version = current.json()["meta"]["versionId"]
    vread = await client.call("GET", f"/Patient/{a}/_history/{version}")
    assert vread.status_code == 200 and vread.json() == current.json()
    await client.refused("GET", f"/Patient/{a}/_history/{int(version) + 1}", 404)
    await client.refused("GET", f"/Patient/{a}/_history", 404)
    await client.refused("GET", "/Nothing/1", 404)
    assert "read-only" in await client.refused("PUT", f"/Patient/{a}", 405, json={})
    await client.refused("DELETE", f"/Patient/{a}", 405)
    await client.refused("POST", "/Patient", 405, json={"resourceType": "Patient"})
    await client.refused("POST", "/Patient/_search", 415, json={"_id": a})
    assert "'date'" in await client.refused("POST", "/Patient/_search",
                                            data={"date": "ge2026"})
    await client.refused("GET", "/Patient", 401, headers={"Authorization": "Bearer kfk_x"})


async def audit_of(platform, tenant: uuid.UUID, partner_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(platform.maintenance_url("partners"))
    try:
        return await conn.fetch(
            "SELECT * FROM audit_log WHERE tenant_id = $1 AND actor = $2 AND action = "
            "'search' ORDER BY id", tenant, f"partner:{partner_id}")
    finally:
        await conn.close()


async def test_a_search_is_audited_for_every_patient_whose_resources_it_returned(
        ehr, platform, tenant):
    client, patients = ehr["client"], ehr["patients"]
    before = len(await audit_of(platform, tenant, client.partner_id))
    request_id = str(uuid.uuid4())
    response = await client.call("GET", "/EpisodeOfCare?_count=2",
                                 headers={"X-Request-Id": request_id})
    returned = [e["resource"]["patient"]["reference"].removeprefix("Patient/")
                for e in response.json()["entry"]]
    records = (await audit_of(platform, tenant, client.partner_id))[before:]
    assert sorted(str(r["patient_id"]) for r in records) == sorted(returned)
    assert {(r["request_id"], r["outcome"]) for r in records} == {(request_id, "success")}
    # Asked about a patient: that patient's record, found or not.
    await client.search(f"/Observation?patient={patients[2]}")
    [record] = (await audit_of(platform, tenant, client.partner_id))[before + 2:]
    assert str(record["patient_id"]) == patients[2]
