"""The FHIR API's rules without a database: strict search parameters, paging values, and
every error under /fhir/R4 answered as an OperationOutcome. The real router and the app's
problem+json handlers answer; the partner's key, the store and the audit trail are stood in
for. (The end-to-end tests in tests/e2e/test_fhir_api.py run the same rules on the platform.)"""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from kinetic_infra.http import audit
from kinetic_infra.http.problems import install_problem_handlers
from partners.adapters import fhir_api, fhir_store
from partners.adapters.fhir_api import (
    MAX_COUNT,
    WITH_IDENTIFIER,
    SearchError,
    capability,
    parse_search,
)
from partners.domain.fhir import MODELS
from services.partners.tests.unit.test_fhir_projection import worked_example

BASE = "http://test/fhir/R4"
A, B = uuid.uuid4(), uuid.uuid4()
TENANT, PARTNER = uuid.uuid4(), uuid.uuid4()


def refused(kind: str, query: list[tuple[str, str]]) -> str:
    with pytest.raises(SearchError) as caught:
        parse_search(kind, query, BASE)
    return str(caught.value)


# -- search parameters -----------------------------------------------------------------------

def test_an_unknown_search_parameter_is_refused_by_name_not_ignored() -> None:
    text = refused("Observation", [("subject", f"Patient/{A}"), ("date", "ge2026"),
                                   ("_sort", "date"), ("patient:missing", "true")])
    assert "'date'" in text and "'_sort'" in text and "'patient:missing'" in text
    assert "'subject'" not in text  # supported on Observation: the same as patient


def test_subject_is_the_patient_where_the_type_has_a_subject() -> None:
    for value in (f"Patient/{A}", str(A), f"{BASE}/Patient/{A}"):
        search = parse_search("Observation", [("subject", value)], BASE)
        assert search.patients == [[A]] and search.used == [("subject", f"Patient/{A}")]
    assert parse_search("Appointment", [("patient", str(A))], BASE).patients == [[A]]
    assert "'subject'" in refused("Appointment", [("subject", str(A))])  # R4 has no subject
    assert "Patient/<id>" in refused("Condition", [("subject", "Practitioner/1")])


def test_identifier_is_refused_on_types_whose_resources_carry_none() -> None:
    for kind in ("Observation", "Condition", "Goal"):
        assert "carry no identifiers" in refused(kind, [("identifier", "x")])
    assert "has no patient" in refused("Patient", [("patient", str(A))])


def test_types_searchable_by_identifier_are_exactly_those_whose_resources_carry_one() -> None:
    story = worked_example()
    carrying = {kind for (kind, _), body in story.store.items() if body.get("identifier")}
    assert carrying == WITH_IDENTIFIER
    assert WITH_IDENTIFIER <= set(MODELS)


def test_an_identifier_token_is_system_and_value_either_left_out() -> None:
    search = parse_search("Invoice", [
        ("identifier", "urn:kinetic:invoice-number|2026-000043,2026-1\\,2"),
        ("identifier", "urn:kinetic:invoice|"), ("identifier", "|2026-000043")], BASE)
    assert search.identifiers == [
        [("urn:kinetic:invoice-number", "2026-000043"), (None, "2026-1,2")],
        [("urn:kinetic:invoice", None)], [("", "2026-000043")]]
    assert "identifier" in refused("Invoice", [("identifier", "|")])


@pytest.mark.parametrize("value", ["²", "-1", "1.5", "", "ten", "١٢"])
def test_count_and_offset_must_be_whole_numbers(value: str) -> None:
    """"²".isdigit() is true, and int("²") raises: that was a 500."""
    assert "_count must be a whole number" in refused("Patient", [("_count", value)])
    assert "_offset must be a whole number" in refused("Patient", [("_offset", value)])


def test_count_is_capped_and_a_huge_number_is_not_an_error() -> None:
    assert parse_search("Patient", [("_count", "9" * 5000)], BASE).count == MAX_COUNT
    assert parse_search("Patient", [("_count", "0")], BASE).count == 0
    assert "more than once" in refused("Patient", [("_count", "1"), ("_count", "2")])


def test_a_nul_or_an_empty_value_is_refused() -> None:
    assert "NUL" in refused("Patient", [("_id", "a\x00b")])
    assert "_id has no value" in refused("Patient", [("_id", "")])
    assert "not a FHIR id" in refused("Patient", [("_id", "a b")])


def test_the_capability_statement_lists_each_types_own_search_parameters() -> None:
    statement = capability(BASE, datetime(2026, 11, 23, tzinfo=UTC))
    CapabilityStatement.model_validate(statement)
    offered = {r["type"]: {p["name"] for p in r["searchParam"]}
               for r in statement["rest"][0]["resource"]}
    assert offered["Patient"] == {"_id", "identifier"}
    assert offered["Observation"] == {"_id", "patient", "subject"}
    assert offered["Appointment"] == {"_id", "identifier", "patient"}
    assert offered["Invoice"] == {"_id", "identifier", "patient", "subject"}
    assert "_offset" in statement["rest"][0]["documentation"]


# -- over HTTP, with stand-ins ---------------------------------------------------------------

class Stand:
    """The partner's key, the store and the audit trail, stood in for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.audited: list[Any] = []
        self.rows: list[dict[str, Any]] = []
        self.total = 0
        self.failure: Exception | None = None

        async def holder(_db: Any, key: str) -> tuple[uuid.UUID, uuid.UUID, str] | None:
            return (TENANT, PARTNER, "ehr") if key == "kfk_good" else None

        async def search(_conn: Any, _partner: Any, _kind: str, _conditions: Any,
                         count: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
            if self.failure is not None:
                raise self.failure
            return self.total, self.rows[offset:offset + count]

        async def find(_conn: Any, _partner: Any, kind: str, rid: str) -> Any:
            return next((r for r in self.rows if r["id"] == rid), None)

        async def write(_db: Any, *records: Any) -> None:
            self.audited.extend(records)

        monkeypatch.setattr(fhir_api, "FHIR_KEY", SimpleNamespace(holder=holder))
        monkeypatch.setattr(fhir_store, "search", search)
        monkeypatch.setattr(fhir_store, "find", find)
        monkeypatch.setattr(audit, "write", write)

    def app(self) -> FastAPI:
        @asynccontextmanager
        async def read(_tenant: Any = None) -> Any:
            yield None

        app = FastAPI()
        install_problem_handlers(app)
        app.state.runtime = SimpleNamespace(db=None)
        app.include_router(fhir_api.router(SimpleNamespace(read=read)))  # type: ignore[arg-type]
        return app

    async def send(self, method: str, path: str, key: str | None = "kfk_good",
                   **kwargs: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app(), raise_app_exceptions=False)
        headers = {**({"Authorization": f"Bearer {key}"} if key else {}),
                   **kwargs.pop("headers", {})}
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, f"/fhir/R4{path}", headers=headers, **kwargs)


def patient_row(pid: uuid.UUID, version: int = 1) -> dict[str, Any]:
    return {"id": str(pid), "patient_id": pid, "version_id": version,
            "body": {"resourceType": "Patient", "id": str(pid)}}


@pytest.fixture
def stand(monkeypatch: pytest.MonkeyPatch) -> Stand:
    return Stand(monkeypatch)


def assert_outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/fhir+json", response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"], body
    return body


async def test_every_error_under_the_fhir_prefix_is_an_operation_outcome(stand: Stand) -> None:
    assert_outcome(await stand.send("GET", "/Patient", key=None), 401)
    assert_outcome(await stand.send("GET", "/Patient?_count=²"), 400)
    assert_outcome(await stand.send("GET", "/Nothing/1"), 404)
    assert_outcome(await stand.send("GET", "/Patient/x/_history"), 404)
    assert_outcome(await stand.send("GET", "/Patient/a%00b"), 400)
    assert_outcome(await stand.send("GET", "/Patient/x/_history/1"), 404)
    put = assert_outcome(await stand.send("PUT", "/Patient/x", json={}), 405)
    assert "read-only" in put["issue"][0]["diagnostics"]
    assert_outcome(await stand.send("DELETE", "/Patient/x"), 405)
    assert_outcome(await stand.send("POST", "/Patient/_search", json={"_id": "x"}), 415)
    assert_outcome(await stand.send("POST", "/Patient/_search", content=b"_id=%ff",
                                    headers={"content-type": fhir_api.FORM}), 400)


async def test_an_unexpected_failure_is_a_500_operation_outcome_that_names_no_cause(
        stand: Stand) -> None:
    stand.failure = RuntimeError('relation "fhir_resources" does not exist')
    body = assert_outcome(await stand.send("GET", "/Patient"), 500)
    assert "fhir_resources" not in str(body)
    assert [r.outcome for r in stand.audited] == ["error"]


async def test_vread_answers_the_current_version_and_404_for_another(stand: Stand) -> None:
    stand.rows = [patient_row(A, version=3)]
    current = await stand.send("GET", f"/Patient/{A}/_history/3")
    assert current.status_code == 200 and current.json()["meta"]["versionId"] == "3"
    assert current.headers["etag"] == 'W/"3"'
    assert_outcome(await stand.send("GET", f"/Patient/{A}/_history/2"), 404)


async def test_post_search_takes_the_same_form_encoded_parameters_as_get(stand: Stand) -> None:
    stand.rows, stand.total = [patient_row(A)], 1
    by_post = await stand.send("POST", "/Patient/_search", content=f"_id={A}&_count=5",
                               headers={"content-type": fhir_api.FORM})
    by_get = await stand.send("GET", f"/Patient?_id={A}&_count=5")
    assert by_post.status_code == by_get.status_code == 200, by_post.text
    assert by_post.json() == by_get.json()
    assert_outcome(await stand.send("POST", "/Patient/_search", content="date=ge2026",
                                    headers={"content-type": fhir_api.FORM}), 400)


async def test_a_page_carries_the_real_total_absolute_urls_and_next_and_previous_links(
        stand: Stand) -> None:
    stand.rows = [patient_row(uuid.uuid4()) for _ in range(5)]
    stand.total = 5
    bundle = (await stand.send("GET", "/Patient?_count=2&_offset=2")).json()
    Bundle.model_validate(bundle)
    assert bundle["total"] == 5
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert links == {"self": f"{BASE}/Patient?_count=2&_offset=2",
                     "next": f"{BASE}/Patient?_count=2&_offset=4",
                     "previous": f"{BASE}/Patient?_count=2&_offset=0"}
    assert [e["fullUrl"] for e in bundle["entry"]] == [
        f"{BASE}/Patient/{r['id']}" for r in stand.rows[2:4]]
    only_total = (await stand.send("GET", "/Patient?_count=0")).json()
    assert only_total["total"] == 5 and "entry" not in only_total
    assert [link["relation"] for link in only_total["link"]] == ["self"]


async def test_a_search_is_audited_once_for_each_patient_asked_about_or_returned(
        stand: Stand) -> None:
    stand.rows, stand.total = [patient_row(A), patient_row(B)], 2
    assert (await stand.send("GET", "/Patient")).status_code == 200
    assert [r.patient_id for r in stand.audited] == [A, B]
    assert len({r.request_id for r in stand.audited}) == 1
    stand.audited.clear()
    stand.rows, stand.total = [], 0
    assert (await stand.send("GET", f"/Condition?patient={A}")).status_code == 200
    assert [r.patient_id for r in stand.audited] == [A]
