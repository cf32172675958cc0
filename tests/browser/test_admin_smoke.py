"""The admin page as a person sees it: in a real browser, signed in and not."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import expect

from tests.conftest import operator_of

pytestmark = [pytest.mark.platform, pytest.mark.browser]


async def test_an_operator_sees_booking_admin_with_its_locations(signed_in, api, tenant):
    created = await api("booking", "POST", "/locations",
                        json={"name": "Riverside Clinic", "timezone": "Europe/Berlin"})
    assert created.status_code == 201, created.text

    page = await signed_in("booking", operator_of(tenant))
    response = await page.goto("/admin")

    assert response is not None and response.status == 200
    await expect(page).to_have_title("Admin · Kinetic booking")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Booking — admin")
    await expect(page.locator("header .who")).to_have_text("Test operator · operator")
    locations = page.locator("section", has=page.get_by_role("heading", name="Locations", exact=True))
    await expect(locations.get_by_role("columnheader")).to_have_text(
        ["Name", "Timezone", "Patients"])
    await expect(locations.get_by_role("row").nth(1).get_by_role("cell")).to_have_text(
        ["Riverside Clinic", "Europe/Berlin", "0"])


async def test_without_a_session_admin_sends_the_browser_to_sign_in(signed_out, platform):
    page = await signed_out("booking")
    await page.goto("/admin")

    # Booking answers 303 to the development issuer's sign-in, which comes back to /admin.
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Kinetic")
    url = urlsplit(page.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{platform.issuer_url}/login"
    assert parse_qs(url.query) == {"next": [f"{platform.base_url('booking')}/admin"]}
