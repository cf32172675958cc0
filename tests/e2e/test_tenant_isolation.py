"""One organization never reaches another's data, through any operation of any service.

Organization B gets a location, a patient with a canary name, and an episode that reaches
every service. Then organization A's operator calls every operation in every service's
OpenAPI document (so an endpoint added later is covered without anyone remembering), with
B's ids in the path and the body. Every call that names one of B's objects answers 404 or
422; no response from any call contains B's canary or B's ids; and not one of B's rows, in
any table of any service, changes."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from kinetic_infra.auth.principal import Principal, Role

pytestmark = pytest.mark.platform

CANARY = "Zebulon-Canary-7f3a"


async def tenant_fingerprint(platform, tenant: uuid.UUID) -> dict[str, str]:
    """A digest of every row of ``tenant`` in every tenant table of every service."""
    digests = {}
    for service in platform.database_urls:
        conn = await asyncpg.connect(platform.maintenance_url(service))
        try:
            tables = await conn.fetch(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = 'tenant_id'")
            for row in tables:
                table = row["table_name"]
                digests[f"{service}.{table}"] = await conn.fetchval(
                    f"SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, ',' "
                    f"ORDER BY t::text)), '') FROM {table} t WHERE tenant_id = $1", tenant)
        finally:
            await conn.close()
    return digests


def example(schema: dict, openapi: dict, ids: dict[str, str], name: str = "") -> Any:
    """A value for ``schema`` that names B's objects wherever an id fits."""
    if "$ref" in schema:
        return example(openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]],
                       openapi, ids, name)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return example(options[0], openapi, ids, name)
    kind = schema.get("type")
    if kind == "object":
        return {prop: example(sub, openapi, ids, prop)
                for prop, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [example(schema.get("items", {}), openapi, ids, name)]
    if schema.get("format") == "uuid":
        return ids.get(name, ids["any"])
    if kind == "string":
        if schema.get("format") == "date":
            return "1990-01-01"
        if schema.get("format") == "email":
            return "probe@example.org"
        return {"timezone": "Europe/Berlin", "symptom_site": "knee_anterior"}.get(name, "probe")
    if kind == "integer":
        return 1
    if kind == "boolean":
        return False
    return None


def calls(openapi: dict, ids: dict[str, str]) -> list[tuple[str, str, Any, bool]]:
    """(method, path, body, names B's object) for every operation."""
    out = []
    for path, operations in openapi["paths"].items():
        if path in ("/healthz", "/readyz"):
            continue
        for method, operation in operations.items():
            concrete = re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), ids["any"]), path)
            body = None
            if "requestBody" in operation:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                body = example(schema, openapi, ids)
            names_b = any(v in concrete or v in str(body) for v in ids.values()
                          if re.fullmatch(r"[0-9a-f-]{36}", v))
            out.append((method.upper(), concrete, body, names_b))
    return out


async def test_another_organization_reaches_none_of_b_through_any_operation(
        platform, urls, api, wait_for):
    b = uuid.uuid4()
    location = (await api("booking", "POST", "/locations", as_tenant=b,
                          json={"name": "B Clinic", "timezone": "Europe/Berlin"})).json()["id"]
    patient = (await api("booking", "POST", "/patients", as_tenant=b, json={
        "given_name": CANARY, "family_name": CANARY, "date_of_birth": "1980-02-03",
        "home_location_id": location})).json()["id"]
    episode = (await api("booking", "POST", "/episodes", as_tenant=b, json={
        "patient_id": patient, "location_id": location, "reason": f"{CANARY} knee",
        "symptom_site": "knee_anterior"})).json()["id"]

    async def everywhere():
        for service, path in (("assessment", f"/episodes/{episode}"),
                              ("plan", f"/episodes/{episode}"),
                              ("billing", f"/accounts/{patient}")):
            if (await api(service, "GET", path, as_tenant=b)).status_code != 200:
                return False
        return True

    await wait_for(everywhere)
    before = await tenant_fingerprint(platform, b)
    ids = {"patient_id": patient, "episode_id": episode, "location_id": location,
           "home_location_id": location, "resource_type": "Patient", "resource_id": patient,
           "any": patient}
    a = Principal("a-operator", "A operator", uuid.uuid4(), frozenset({Role.OPERATOR}))
    # The FHIR API takes a partner's key, not a staff token: A's own EHR partner's.
    a_partner = await api("partners", "POST", "/partners", as_tenant=a.tenant_id, json={
        "name": "a-ehr", "webhook_url": "https://ehr.example/kinetic",
        "grant": {"event_types": ["kinetic.booking.*"]}})
    a_fhir_key = (await api("partners", "POST",
                            f"/partners/{a_partner.json()['partner_id']}/fhir-key",
                            as_tenant=a.tenant_id)).json()["fhir_key"]
    checked = 0
    for service, base in urls.items():
        async with httpx.AsyncClient(base_url=base, timeout=15, headers={
                "Authorization": f"Bearer {platform.mint(a)}"}) as client:
            openapi = (await client.get("/openapi.json")).json()
            for method, path, body, names_b in calls(openapi, ids):
                fhir = {"Authorization": f"Bearer {a_fhir_key}"} if path.startswith("/fhir/") \
                    else {}
                response = await client.request(method, path, json=body, headers=fhir)
                label = f"{service} {method} {path} {body}"
                if names_b:
                    assert response.status_code in (404, 422), label
                assert response.status_code < 500, label
                assert CANARY not in response.text, label
                assert not any(v in response.text for v in (patient, episode, location)) \
                    or response.status_code in (404, 422), label
                checked += 1
    assert checked >= 10
    assert await tenant_fingerprint(platform, b) == before
