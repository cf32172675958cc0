"""The therapist's evaluation page over HTTP, signed in with the admin session cookie: a form
refused (by the page, or by the API) comes back with the refusal's status and what was typed
still in its inputs, and nothing is saved; every input on the page has an accessible name and
each red-flag question names its own radios. The in-memory version of these, covering every
form, is services/assessment/tests/unit/test_evaluation_page_keeps_what_was_typed.py."""

from __future__ import annotations

import httpx
import pytest

from assessment.adapters.admin_pages import MUSCLES
from assessment.domain.history import RED_FLAGS
from services.assessment.tests.unit.test_evaluation_page_keeps_what_was_typed import (
    Page,
    values,
)

pytestmark = pytest.mark.platform


async def opened(api, episode) -> str:
    response = await api("assessment", "POST", "/evaluations",
                         json={"episode_id": episode["episode_id"]})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_findings_refused_for_one_y_balance_side_come_back_422_as_typed_and_save_nothing(
        api, urls, session_of, tenant, episode):
    evaluation_id = await opened(api, episode)
    async with httpx.AsyncClient(base_url=urls["assessment"], cookies=session_of(tenant),
                                 timeout=30) as client:
        page = Page((await client.get(f"/admin/evaluations/{evaluation_id}")).text)
        version = values(page.form("findings"))["version"]
        typed = {"version": version, "involved_side": "right", "unit": "kgf",
                 **{f"{m}_{side}_{n}": f"{10 + i}.{n}" for i, m in enumerate(MUSCLES)
                    for side in ("right", "left") for n in (1, 2, 3)},
                 "sls_right": "poor", "sls_left": "good", "ybal_right": "58", "ybal_left": ""}
        refused = await client.post(f"/admin/evaluations/{evaluation_id}/findings", data=typed)

    assert refused.status_code == 422, refused.text
    assert "Y-balance anterior: enter the reach of both sides" in refused.text
    shown = values(Page(refused.text).form("findings"))
    assert {k: shown[k] for k in typed} == typed
    saved = (await api("assessment", "GET", f"/evaluations/{evaluation_id}")).json()
    assert (saved["findings"], saved["version"]) == (None, int(version)), "nothing saved"


async def test_a_measure_the_api_refuses_comes_back_422_as_typed_and_saves_nothing(
        api, urls, session_of, tenant, episode):
    evaluation_id = await opened(api, episode)
    async with httpx.AsyncClient(base_url=urls["assessment"], cookies=session_of(tenant),
                                 timeout=30) as client:
        page = Page((await client.get(f"/admin/evaluations/{evaluation_id}?measure=nprs")).text)
        typed = {"version": values(page.form("measures"))["version"], "measure": "nprs",
                 "item:nprs_01": "11"}
        refused = await client.post(f"/admin/evaluations/{evaluation_id}/measures", data=typed)

    assert refused.status_code == 422, refused.text
    assert "Not saved:" in refused.text
    shown = values(Page(refused.text).form("measures"))
    assert {k: shown[k] for k in typed} == typed
    saved = (await api("assessment", "GET", f"/evaluations/{evaluation_id}")).json()
    assert saved["measures"] == []


async def test_every_input_on_the_evaluation_page_has_an_accessible_name(
        api, urls, session_of, tenant, episode):
    evaluation_id = await opened(api, episode)
    async with httpx.AsyncClient(base_url=urls["assessment"], cookies=session_of(tenant),
                                 timeout=30) as client:
        response = await client.get(f"/admin/evaluations/{evaluation_id}?measure=psfs")
    assert response.status_code == 200, response.text
    page = Page(response.text)
    controls = [e for e in page.all if e.tag in ("select", "textarea") or (
        e.tag == "input" and e.attrs.get("type") not in ("hidden", "submit", "button"))]

    assert controls
    assert [e.attrs for e in controls if not page.accessible_name(e)] == []
    for radio in (e for e in page.form("red-flags").walk() if e.attrs.get("type") == "radio"):
        group = next(a for a in radio.ancestors() if a.attrs.get("role") == "radiogroup")
        assert page.labelled_by(group) == RED_FLAGS[radio.attrs["name"]]
