"""Plan's HTTP models refuse what is not a number: FastAPI parses JSON's NaN and Infinity, and a
NaN that reached the plan's decision failed there as a 500. Here the real plan router and
problem handlers answer; only the sign-in is stood in for (``current_principal``), and no
database is reachable, so a request that got past validation would fail with a 500."""

from __future__ import annotations

import json
from types import SimpleNamespace
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.http.auth import current_principal
from kinetic_infra.http.problems import install_problem_handlers
from plan.adapters.http_plans import router
from services.plan.tests.unit.test_drafting import draft

OPERATOR = Principal(staff_id="op-1", name="Operator", tenant_id=uuid4(),
                     org_roles=frozenset({Role.OPERATOR}))


def plan_api() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router(SimpleNamespace(db=None, store=None)))  # type: ignore[arg-type]
    app.dependency_overrides[current_principal] = lambda: OPERATOR
    return app


async def send(method: str, path: str, body: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=plan_api(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, content=body,
                                    headers={"content-type": "application/json"})


async def post(path: str, body: str) -> httpx.Response:
    return await send("POST", path, body)


async def put(path: str, body: str) -> httpx.Response:
    return await send("PUT", path, body)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
async def test_a_session_log_with_a_quick_measure_that_is_not_a_number_is_a_422_problem(
        number):
    response = await post(f"/episodes/{uuid4()}/sessions/{uuid4()}/log",
                          f'{{"quick_measures": {{"nprs": {number}}}}}')
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any(e["loc"][-2:] == ["quick_measures", "nprs"]
               for e in response.json()["errors"]), response.text


async def test_a_task_result_that_is_not_a_number_is_a_422_problem():
    response = await post(f"/episodes/{uuid4()}/results",
                          '{"criterion_id": "calm.home_program_adherence_pct", "value": NaN}')
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_plan_edit_with_a_criterion_target_that_is_not_a_number_is_a_422_problem():
    content = draft().model_dump(mode="json")
    content["discharge_criteria"][0]["target"] = float("nan")
    response = await put(f"/episodes/{uuid4()}/plan", json.dumps({"content": content}))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["loc"][-2:] == [0, "target"] and error["input"] == "nan"
