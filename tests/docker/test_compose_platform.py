"""The compose tier (``make test-docker``): the whole platform from deploy/compose.yaml on a
Docker engine, with the upstream PostgreSQL, NATS and Temporal images and the five service
images built from deploy/Dockerfile, started by pytest-docker. Every API answers ready (its
database, NATS and, where it has workflows, Temporal reachable), serves its OpenAPI document,
and every relay has created its service's stream on the NATS server.

Without a Docker engine the tier does not run and says so; `make test` does not collect it,
so a run without Docker never counts it as passed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import nkeys
import pytest

from kinetic_infra.stack.platform import discover_services

DEPLOY = Path(__file__).parents[2] / "deploy"


def _engine_answers() -> bool:
    docker = shutil.which("docker")
    return docker is not None and subprocess.run(
        [docker, "info"], capture_output=True, timeout=30).returncode == 0


if not _engine_answers():
    pytest.skip("no Docker engine here: the compose tier did not run", allow_module_level=True)


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(DEPLOY / "compose.yaml")


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_ACCOUNT)
    os.environ["KINETIC_NATS_AUTH_CALLOUT_SEED"] = seed.decode()
    os.environ["KINETIC_NATS_CALLOUT_ISSUER"] = nkeys.from_seed(seed).public_key.decode()
    return ["up --build --wait"]


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_every_service_of_the_compose_platform_is_ready_and_has_its_stream(docker_services):
    services = discover_services()
    for i, d in enumerate(services):
        base = f"http://localhost:{8101 + i}"
        docker_services.wait_until_responsive(check=lambda base=base: _ready(f"{base}/readyz"),
                                              timeout=300, pause=2)
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == f"Kinetic {d.name}"
    streams = httpx.get("http://localhost:8222/jsz?streams=true").json()
    names = {s["name"] for account in streams.get("account_details", [])
             for s in account.get("stream_detail", [])}
    assert {d.name.upper() for d in services} <= names
