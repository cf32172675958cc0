"""Sign-in, roles, row-level security and the audit trail, on the running platform."""

from __future__ import annotations

import time
import uuid

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.stack.platform import app_role

pytestmark = pytest.mark.platform


def staff(tenant: uuid.UUID, role: Role, *locations: str) -> Principal:
    if role is Role.OPERATOR:
        return Principal(f"{role}-{uuid.uuid4()}", role.value, tenant, frozenset({role}))
    return Principal(f"{role}-{uuid.uuid4()}", role.value, tenant,
                     location_roles={uuid.UUID(loc): frozenset({role}) for loc in locations})


async def get(urls, service: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=urls[service]) as client:
        return await client.get(path, headers=headers)


# -- authentication --------------------------------------------------------------------------

async def test_requests_without_a_valid_token_are_401(platform, urls, front_desk, tenant):
    path = f"/patients/{front_desk['patient_id']}"
    operator = staff(tenant, Role.OPERATOR)
    claims = {**operator.claims(), "iss": platform.issuer_url, "aud": "kinetic",
              "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    key = platform.signing_key()
    expired = jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})
    wrong_audience = jwt.encode({**claims, "aud": "someone-else", "exp": int(time.time()) + 600},
                                key.private_pem, algorithm="RS256", headers={"kid": key.kid})
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({**claims, "exp": int(time.time()) + 600}, stranger_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), algorithm="RS256", headers={"kid": key.kid})
    unsigned = jwt.encode({**claims, "exp": int(time.time()) + 600}, None, algorithm="none")
    for token in (None, "not-a-jwt", expired, wrong_audience, forged, unsigned):
        response = await get(urls, "booking", path, token)
        assert response.status_code == 401, token
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await get(urls, "booking", path, platform.mint(operator))).status_code == 200


async def test_a_role_without_permission_is_403(platform, urls, api, front_desk, tenant):
    billing = staff(tenant, Role.BILLING, front_desk["location_id"])
    therapist = staff(tenant, Role.THERAPIST, front_desk["location_id"])
    episode = await api("booking", "POST", "/episodes", json={
        "patient_id": front_desk["patient_id"], "location_id": front_desk["location_id"],
        "reason": "Shoulder pain lifting", "symptom_site": "shoulder_lateral"})
    # Billing staff never read clinical notes; therapists do not register patients.
    response = await get(urls, "booking", f"/episodes/{episode.json()['id']}",
                         platform.mint(billing))
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/forbidden"
    created = await api("booking", "POST", "/patients", as_staff=therapist, json={
        "given_name": "No", "family_name": "Body", "date_of_birth": "1990-01-01",
        "home_location_id": front_desk["location_id"]})
    assert created.status_code == 403
    assert (await get(urls, "booking", f"/patients/{front_desk['patient_id']}",
                      platform.mint(billing))).status_code == 200


async def test_a_therapist_sees_the_patients_of_their_locations_only(platform, urls, api,
                                                                      front_desk, tenant):
    other = await api("booking", "POST", "/locations",
                      json={"name": "Harbour Clinic", "timezone": "Europe/Berlin"})
    here = staff(tenant, Role.THERAPIST, front_desk["location_id"])
    elsewhere = staff(tenant, Role.THERAPIST, other.json()["id"])
    path = f"/patients/{front_desk['patient_id']}"
    assert (await get(urls, "booking", path, platform.mint(here))).status_code == 200
    hidden = await get(urls, "booking", path, platform.mint(elsewhere))
    assert hidden.status_code == 404  # not 403: existence does not leak


# -- row-level security ----------------------------------------------------------------------

async def test_every_tenant_table_has_forced_row_level_security(platform):
    for service in platform.database_urls:
        conn = await asyncpg.connect(platform.maintenance_url(service))
        try:
            rows = await conn.fetch("""
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
                WHERE n.nspname = 'public' AND c.relkind = 'r'""")
        finally:
            await conn.close()
        assert rows, service
        unprotected = [r["relname"] for r in rows
                       if not (r["relrowsecurity"] and r["relforcerowsecurity"])]
        assert unprotected == [], f"{service}: {unprotected}"


async def test_the_application_role_is_powerless_beyond_its_grants(platform):
    for service in platform.database_urls:
        conn = await asyncpg.connect(platform.maintenance_url(service))
        try:
            role = await conn.fetchrow(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
                "WHERE rolname = $1", app_role(service))
            owned = await conn.fetchval(
                "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                "WHERE r.rolname = $1", app_role(service))
        finally:
            await conn.close()
        assert dict(role) == {"rolsuper": False, "rolbypassrls": False,
                              "rolcreaterole": False, "rolcreatedb": False}
        assert owned == 0


async def test_a_pooled_connection_never_carries_a_tenant_into_the_next_transaction(
        platform, front_desk, tenant):
    from kinetic_infra.db.database import Database

    db = Database(platform.database_urls["booking"], pool_size=1, max_overflow=0)
    try:
        from sqlalchemy import text

        async with db.read(tenant) as conn:
            assert await conn.scalar(text("SELECT count(*) FROM patients")) == 1
        async with db.read() as conn:  # the same, only pooled connection, no tenant set
            assert await conn.scalar(text("SELECT count(*) FROM patients")) == 0
            assert await conn.scalar(
                text("SELECT current_setting('kinetic.tenant_id', true)")) in (None, "")
        async with db.read(uuid.uuid4()) as conn:
            assert await conn.scalar(text("SELECT count(*) FROM patients")) == 0
    finally:
        await db.dispose()


# -- audit trail -----------------------------------------------------------------------------

async def audit_rows(platform, service: str, tenant: uuid.UUID) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(platform.maintenance_url(service))
    try:
        return await conn.fetch("SELECT * FROM audit_log WHERE tenant_id = $1 ORDER BY id",
                                tenant)
    finally:
        await conn.close()


async def test_every_patient_data_call_writes_exactly_one_audit_record(platform, urls, api,
                                                                        front_desk, tenant):
    before = len(await audit_rows(platform, "booking", tenant))
    patient = front_desk["patient_id"]
    billing = staff(tenant, Role.BILLING, front_desk["location_id"])
    ok = await api("booking", "GET", f"/patients/{patient}")
    missing = await api("booking", "GET", f"/patients/{uuid.uuid4()}")
    invalid = await api("booking", "POST", "/patients", json={"given_name": ""})
    episode = await api("booking", "POST", "/episodes", json={
        "patient_id": patient, "location_id": front_desk["location_id"],
        "reason": "Knee", "symptom_site": "knee_anterior"})
    denied = await api("booking", "GET", f"/episodes/{episode.json()['id']}", as_staff=billing)
    assert [r.status_code for r in (ok, missing, invalid, episode, denied)] == [
        200, 404, 422, 201, 403]
    rows = (await audit_rows(platform, "booking", tenant))[before:]
    assert [(r["action"], r["resource_type"], r["outcome"]) for r in rows] == [
        ("read", "patient", "success"), ("read", "patient", "denied"),
        ("create", "patient", "error"), ("create", "episode", "success"),
        ("read", "episode", "denied")]
    assert str(rows[0]["patient_id"]) == patient
    assert str(rows[3]["patient_id"]) == patient
    assert rows[4]["actor"] == billing.staff_id and rows[4]["role"] == "billing"


async def test_the_application_role_cannot_change_or_delete_audit_records(platform, api,
                                                                           front_desk, tenant):
    await api("booking", "GET", f"/patients/{front_desk['patient_id']}")
    conn = await asyncpg.connect(platform.database_urls["booking"])
    try:
        await conn.execute("SELECT set_config('kinetic.tenant_id', $1, false)", str(tenant))
        for statement in ("UPDATE audit_log SET outcome = 'success'", "DELETE FROM audit_log",
                          "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_a_tampered_audit_record_breaks_the_chain(platform, api, front_desk, tenant):
    from kinetic_infra.audit.trail import verify_chain
    from kinetic_infra.db.database import Database

    for _ in range(3):
        await api("booking", "GET", f"/patients/{front_desk['patient_id']}")
    db = Database(platform.maintenance_url("booking"))
    try:
        assert (await verify_chain(db, tenant)).intact
        rows = await audit_rows(platform, "booking", tenant)
        # A superuser edits history: the trigger must be bypassed to even try.
        conn = await asyncpg.connect(platform.maintenance_url("booking"))
        try:
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
            await conn.execute("UPDATE audit_log SET actor = 'someone-else' WHERE id = $1",
                               rows[1]["id"])
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update")
        finally:
            await conn.close()
        check = await verify_chain(db, tenant)
        assert not check.intact and check.first_broken_id == rows[1]["id"]
    finally:
        await db.dispose()


async def test_the_operator_searches_and_exports_the_audit_trail(platform, urls, api, front_desk,
                                                                 tenant, session_of):
    await api("booking", "GET", f"/patients/{front_desk['patient_id']}")
    async with httpx.AsyncClient(base_url=urls["booking"], cookies=session_of(tenant)) as client:
        page = await client.get("/admin/audit", params={"patient": front_desk["patient_id"]})
        export = await client.get("/admin/audit.csv", params={"outcome": "success"})
    assert page.status_code == 200 and "Hash chain intact" in page.text
    assert front_desk["patient_id"] in page.text
    assert export.headers["content-type"].startswith("text/csv")
    assert front_desk["patient_id"] in export.text
    therapist = staff(tenant, Role.THERAPIST, front_desk["location_id"])
    async with httpx.AsyncClient(base_url=urls["booking"], cookies={
            "kinetic_token": platform.mint(therapist)}) as client:
        assert (await client.get("/admin/audit")).status_code == 403
    # A filter it cannot read is said so, not an error page or a dropped connection.
    async with httpx.AsyncClient(base_url=urls["booking"], cookies=session_of(tenant)) as client:
        for params in ({"since": "yesterday"}, {"until": "31/01/2026"}, {"patient": "nope"}):
            page = await client.get("/admin/audit", params=params)
            assert page.status_code == 400 and "is not understood" in page.text, params
            export = await client.get("/admin/audit.csv", params=params)
            assert export.status_code == 400 and "is not understood" in export.text, params


async def test_the_admin_summary_is_for_the_organizations_operators_only(platform, urls,
                                                                         episode, tenant):
    """/admin's summary tables list patients' names, invoices and partners' settings of
    every location: an operator's overview. Front desk, therapists and billing staff see
    none of it there (their own pages ask the API, as them)."""
    here = episode["location_id"]
    for principal, shown in ((staff(tenant, Role.OPERATOR), True),
                             (staff(tenant, Role.FRONT_DESK, here), False),
                             (staff(tenant, Role.THERAPIST, here), False),
                             (staff(tenant, Role.BILLING, here), False)):
        async with httpx.AsyncClient(base_url=urls["booking"], cookies={
                "kinetic_token": platform.mint(principal)}) as client:
            page = await client.get("/admin")
        assert page.status_code == 200, page.text
        assert ("Canarysson" in page.text) is shown, principal.role_label()
    # What the operator read is in the audit trail, as any read of patient data is.
    summaries = [r for r in await audit_rows(platform, "booking", tenant)
                 if r["resource_type"] == "admin-summary"]
    assert [(r["action"], r["role"]) for r in summaries] == [("read", "operator")]




async def test_staff_sign_in_to_the_admin_pages_through_the_development_issuer(
        platform, urls, tenant):
    from kinetic_infra.auth.dev_issuer import save_staff

    operator = Principal("olga.operator", "Olga (operator)", tenant, frozenset({Role.OPERATOR}))
    save_staff(platform.data_dir, [operator])
    admin = f"{urls['plan']}/admin"
    async with httpx.AsyncClient() as browser:
        first = await browser.get(admin)
        assert first.status_code == 303
        login = first.headers["location"]
        assert login.startswith(f"{platform.issuer_url}/login?next=")
        page = await browser.get(login)
        assert "Olga (operator)" in page.text
        signed_in = await browser.post(f"{platform.issuer_url}/login",
                                       data={"staff_id": "olga.operator", "next": admin})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == admin
        assert "kinetic_token" in signed_in.cookies
        # Cookies ignore ports: one sign-in on the issuer reaches every service's pages.
        back = await browser.get(admin)
        assert back.status_code == 200
        assert "Olga (operator)" in back.text and 'href="/admin/audit"' in back.text
        assert (await browser.get(f"{urls['billing']}/admin")).status_code == 200
        assert (await browser.get(f"{urls['plan']}/episodes")).status_code == 200
    async with httpx.AsyncClient() as stranger:
        refused = await stranger.post(f"{platform.issuer_url}/login",
                                      data={"staff_id": "nobody", "next": admin})
        assert "kinetic_token" not in refused.cookies
        assert (await stranger.get(admin)).status_code == 303
