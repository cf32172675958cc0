"""Every service's HTTP API keeps the promises of its own OpenAPI document.

For each service, Schemathesis reads the running service's ``/openapi.json`` and, for every
operation in it, generates requests that are valid by the schema and requests that are not
(including ones without valid credentials), sent as the operator of an organization that has
a location, a patient and an open episode of care. Every response must

- not be a server error (``not_a_server_error``);
- have a documented status code (``status_code_conformance``);
- have a documented media type (``content_type_conformance``);
- match the schema documented for its status code (``response_schema_conformance``).

Error responses are held to the same checks: every operation documents ``4XX`` and ``5XX`` as
``application/problem+json``, and each operation that takes input documents ``422`` as well,
so a 401, 404 or 422 is checked against the shape the document gives it.

Half of the valid requests carry values the schema cannot describe as valid (the
organization's ids in path parameters and body fields of the same name, a real timezone) so
that they reach stored records and the business rules; the others carry random ones and must
get a documented problem. Generation is derandomized and bounded, so a run is repeatable and
short. Operations are enumerated from the schema, so an endpoint added later is covered
without anyone remembering to add it here.
"""

from __future__ import annotations

import asyncio

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kinetic_infra.auth.principal import Principal, Role

pytestmark = pytest.mark.platform

SERVICES = ("booking", "assessment", "plan", "billing", "partners")
# None of these gives false alarms on problem responses: the services document 4XX and 5XX on
# every operation (not only FastAPI's 422), so a 401, 403 or 404 is a documented status whose
# problem+json body has a documented schema.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES_PER_OPERATION = 20  # for each generation mode (valid and invalid requests)

EXPLORE = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # the same requests on every run
    database=None,  # nothing remembered between runs either
    deadline=None,  # response times are not what this test is about
    phases=[Phase.generate],  # no shrinking: a failing request is reported as it was sent
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
async def known_values(api, front_desk) -> dict[str, str]:
    """Values the schema cannot describe as valid, by field name: the organization's ids (once
    it has an open episode of care) and an IANA timezone."""
    episode = await api("booking", "POST", "/episodes", json={
        "patient_id": front_desk["patient_id"], "location_id": front_desk["location_id"],
        "reason": "Right knee pain when running", "symptom_site": "knee_anterior"})
    assert episode.status_code == 201, episode.text
    return {"location_id": front_desk["location_id"],
            "home_location_id": front_desk["location_id"],
            "patient_id": front_desk["patient_id"],
            "episode_id": episode.json()["id"],
            "timezone": "Europe/Berlin"}


@pytest.mark.timeout(600)  # alone, the test also starts and stops the whole platform
async def test_every_api_conforms_to_its_openapi_document(urls, platform, tenant, known_values):
    """The services are explored at once, each in its own thread: a request's time is mostly
    the service process's, so the others' requests fill the wait (half the suite's time)."""
    operator = Principal(f"operator-{tenant}", "Test operator", tenant,
                         frozenset({Role.OPERATOR}))
    headers = {"Authorization": f"Bearer {platform.mint(operator)}"}

    async def explore(service: str) -> dict[tuple, str]:
        schema = schemathesis.openapi.from_url(f"{urls[service]}/openapi.json",
                                               config=schemathesis.Config())
        await _until_listings_show_the_organization(urls[service], schema, headers)
        return await asyncio.to_thread(_explore, schema, urls[service], headers, known_values)

    found = dict(zip(SERVICES, await asyncio.gather(*(explore(s) for s in SERVICES)),
                     strict=True))
    failures = {service: f for service, f in found.items() if f}
    assert not failures, "\n\n".join(
        f"{service}: {len(f)} distinct failure(s)\n\n" + "\n\n".join(f.values())
        for service, f in failures.items())


def _operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


async def _until_listings_show_the_organization(base: str, schema, headers: dict[str, str],
                                               timeout: float = 30.0) -> None:
    """Events reach the other services asynchronously: wait until every listing of this one
    answers something, or the reads would only exercise their empty answers. The wait is
    bounded but not asserted: an empty listing is no contract violation."""
    listings = [operation.path for operation in _operations(schema)
                if operation.method.upper() == "GET" and not operation.path_parameters]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await asyncio.to_thread(_all_answer_something, base, listings, headers):
            return
        await asyncio.sleep(0.2)


def _all_answer_something(base: str, paths: list[str], headers: dict[str, str]) -> bool:
    for path in paths:
        response = requests.get(f"{base}{path}", headers=headers, timeout=15)
        if response.status_code != 200 or not response.json():
            return False
    return True


def _explore(schema, base: str, headers: dict[str, str], known_values: dict[str, str]
             ) -> dict[tuple, str]:
    """Each distinct failure (operation, status code, kinds of failure) with the first request
    and response that showed it."""
    failures: dict[tuple, str] = {}
    with requests.Session() as session:
        for operation in _operations(schema):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    _explore_operation(operation, mode, base, session, headers, known_values,
                                       failures)
                except hypothesis.errors.Unsatisfiable:
                    # An operation without parameters, body or security (the health probes)
                    # has nothing that can be made invalid.
                    if mode is not GenerationMode.NEGATIVE:
                        raise
    return failures


def _explore_operation(operation, mode: GenerationMode, base: str, session: requests.Session,
                       headers: dict[str, str], known_values: dict[str, str],
                       failures: dict[tuple, str]) -> None:
    use_known = st.booleans() if mode is GenerationMode.POSITIVE else st.just(False)

    @EXPLORE
    @given(case=operation.as_strategy(mode), use_known_values=use_known)
    def send(case: Case, use_known_values: bool) -> None:
        if mode is GenerationMode.POSITIVE:
            _leave_out_null_headers(case)
        if use_known_values:
            _use_known_values(case, known_values)
        response = case.call(base_url=base, session=session, headers=headers, timeout=15)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            kinds = sorted(f"{failure.code} {failure.title}" for failure in group.exceptions)
            failures.setdefault((operation.label, response.status_code, *kinds),
                                f"{operation.label} ({mode.value} request)\n{group.message}")

    send()


def _leave_out_null_headers(case: Case) -> None:
    """An optional header is documented the way FastAPI documents any optional parameter,
    ``anyOf: [..., {type: null}]``; a header cannot be null, so the valid spelling of "no
    idempotency key" is no header, not the text ``null`` the generator would send."""
    for name, value in list((case.headers or {}).items()):
        if value in (None, "null"):
            del case.headers[name]


def _use_known_values(case: Case, known_values: dict[str, str]) -> None:
    for name in case.path_parameters or {}:
        if name in known_values:
            case.path_parameters[name] = known_values[name]
    if isinstance(case.body, dict):
        for name in case.body:
            if name in known_values:
                case.body[name] = known_values[name]
