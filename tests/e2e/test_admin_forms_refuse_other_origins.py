"""The admin session on the running stack: a form another origin posts with the session
cookie (another service's port is another origin, though the same site) is refused and
runs nothing; the page's own forms still work; pages refuse framing; Sign out at the issuer
ends the session on every service."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.platform


async def test_an_admin_form_posted_from_another_origin_is_refused_and_runs_nothing(
        urls, session_of, tenant):
    billing, partners = urls["billing"], urls["partners"]
    patient, pack = uuid.uuid4(), uuid.uuid4()
    refund = f"/admin/accounts/{patient}/packs/{pack}/refund"
    async with httpx.AsyncClient(base_url=billing, cookies=session_of(tenant)) as browser:
        forged = await browser.post(refund, headers={"Origin": partners,
                                                     "Sec-Fetch-Site": "same-site"})
        forged_replay = await browser.post("/admin/dead-letters/1/replay",
                                           headers={"Origin": partners})
        forged_api = await browser.post(f"/packs/{pack}/refund", headers={"Origin": partners})
        own = await browser.post("/admin/dead-letters/1/replay", headers={
            "Origin": billing, "Sec-Fetch-Site": "same-origin"})
    assert (forged.status_code, forged_replay.status_code) == (403, 403)
    assert "another site or service" in forged.text
    assert forged_api.status_code == 403
    assert forged_api.json()["type"] == "/problems/forbidden"
    # The page's own form runs (no such dead letter in this organization: it says so).
    assert own.status_code == 303 and "Unknown+dead+letter" in own.headers["location"]


async def test_admin_pages_refuse_framing_and_sign_out_ends_the_session_everywhere(
        platform, urls, tenant):
    from kinetic_infra.auth.dev_issuer import save_staff
    from kinetic_infra.auth.principal import Principal, Role

    operator = Principal("olga.operator", "Olga (operator)", tenant,
                         frozenset({Role.OPERATOR}))
    save_staff(platform.data_dir, [operator])
    admin = f"{urls['billing']}/admin"
    async with httpx.AsyncClient() as browser:
        await browser.post(f"{platform.issuer_url}/login",
                           data={"staff_id": "olga.operator", "next": admin})
        page = await browser.get(admin)
        assert page.status_code == 200
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
        logout = f"{platform.issuer_url}/logout"
        assert f'<form method="post" action="{logout}"' in page.text
        out = await browser.post(logout, data={"next": admin})
        assert out.status_code == 303 and out.headers["location"] == admin
        assert "kinetic_token" not in browser.cookies
        for service in ("billing", "plan"):  # one cookie for the host: signed out of all
            again = await browser.get(f"{urls[service]}/admin")
            assert again.status_code == 303
            assert again.headers["location"].startswith(f"{platform.issuer_url}/login?next=")
