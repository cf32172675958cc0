"""Bad input at every endpoint of every service: a problem+json 4xx (an OperationOutcome on
the FHIR API), and nothing written.

The operations are enumerated from each service's own OpenAPI document, so an endpoint
added later is covered without anyone remembering to add it here."""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg
import httpx
import pytest

pytestmark = pytest.mark.platform

COUNTED = ("events", "outbox", "inbox", "dead_letters")


async def row_counts(platform) -> dict[str, int]:
    counts = {}
    for service in platform.database_urls:
        conn = await asyncpg.connect(platform.maintenance_url(service))
        try:
            for table in COUNTED:
                counts[f"{service}.{table}"] = await conn.fetchval(f"SELECT count(*) FROM {table}")
        finally:
            await conn.close()
    return counts


async def quiet_counts(platform) -> dict[str, int]:
    """Counts once in-flight events from earlier tests have settled."""
    previous = await row_counts(platform)
    for _ in range(100):
        await asyncio.sleep(0.5)
        current = await row_counts(platform)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the platform never went quiet")


def bad_requests(openapi: dict) -> list[tuple[str, str, dict]]:
    """(method, path, request kwargs) for each operation and each kind of bad input."""
    cases = []
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            if path in ("/healthz", "/readyz"):
                continue
            if method == "get" and "security" not in operation:
                continue  # a public document (the contract pages): there is nothing to refuse
            concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
            if "{" in path:
                cases.append((method, re.sub(r"\{[^}]+\}", "not-a-uuid", path), {}))
            if "requestBody" in operation:
                cases.append((method, concrete, {"content": b"{not json"}))
                cases.append((method, concrete, {"json": []}))
                cases.append((method, concrete, {"json": {}}))
                cases.append((method, concrete, {"json": {"unexpected": True}}))
                schema = _body_schema(openapi, operation)
                cases.append((method, concrete, {"json": {
                    name: {"wrong": "type"} for name in schema.get("properties", {})}}))
            cases.append((method, concrete, {"headers": {"Kinetic-Tenant": "not-a-uuid"}}))
    return cases


def _body_schema(openapi: dict, operation: dict) -> dict:
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = openapi["components"]["schemas"][name]
    return schema


async def test_every_endpoint_answers_bad_input_with_problem_json_and_writes_nothing(
        platform, urls):
    before = await quiet_counts(platform)
    checked = 0
    for service, base in urls.items():
        async with httpx.AsyncClient(base_url=base, timeout=15) as client:
            openapi = (await client.get("/openapi.json")).json()
            for method, path, kwargs in bad_requests(openapi):
                headers = {"Kinetic-Tenant": str(uuid.uuid4()), "content-type": "application/json",
                           **kwargs.pop("headers", {})}
                response = await client.request(method.upper(), path, headers=headers, **kwargs)
                label = f"{service} {method.upper()} {path} {kwargs or headers}"
                assert 400 <= response.status_code < 500, label
                if path.startswith("/fhir/"):  # FHIR clients expect an OperationOutcome
                    assert response.headers["content-type"] == "application/fhir+json", label
                    assert response.json()["resourceType"] == "OperationOutcome", label
                    checked += 1
                    continue
                assert response.headers["content-type"] == "application/problem+json", label
                problem = response.json()
                assert {"type", "title", "status"} <= problem.keys(), label
                assert problem["status"] == response.status_code, label
                assert "Traceback" not in response.text and "sqlalchemy" not in response.text
                checked += 1
    assert checked > 20
    assert await row_counts(platform) == before


async def test_rule_violations_are_problem_json_and_write_nothing(platform, api, front_desk):
    before = await quiet_counts(platform)
    cases = [
        ("/patients", {"given_name": "Ada", "family_name": "Canarysson",
                       "date_of_birth": "2999-01-01", "home_location_id": front_desk["location_id"]},
         422, "/problems/date-of-birth-in-future"),
        ("/patients", {"given_name": "Ada", "family_name": "Canarysson",
                       "date_of_birth": "1990-01-01", "home_location_id": str(uuid.uuid4())},
         404, "/problems/location-not-found"),
        ("/episodes", {"patient_id": str(uuid.uuid4()), "location_id": front_desk["location_id"],
                       "reason": "knee", "symptom_site": "knee_anterior"},
         404, "/problems/patient-not-found"),
        ("/locations", {"name": "Nowhere", "timezone": "Mars/Olympus_Mons"},
         422, "/problems/invalid-timezone"),
        # A NUL, which no PostgreSQL text or jsonb column stores, passes the schema.
        ("/patients", {"given_name": "Ada\u0000", "family_name": "Canarysson",
                       "date_of_birth": "1990-01-01", "home_location_id": front_desk["location_id"]},
         422, "/problems/unstorable-text"),
        ("/locations", {"name": "Mitte\u0000", "timezone": "Europe/Berlin"},
         422, "/problems/unstorable-text"),
    ]
    for path, body, status, problem_type in cases:
        response = await api("booking", "POST", path, json=body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == problem_type
    assert await row_counts(platform) == before
