"""Telemetry as an operator reads it: one trace across the services, metrics, and logs and
spans that never carry a patient's name."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

pytestmark = pytest.mark.platform

CANARY = "Quintessa-Canary-91bd"


def exported(log_dir: Path) -> list[dict]:
    """Every JSON line the processes wrote: spans, metrics and log records."""
    items = []
    for path in log_dir.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return items


def spans_of(trace_id: str, log_dir: Path) -> list[dict]:
    return [i for i in exported(log_dir)
            if i.get("context", {}).get("trace_id") == f"0x{trace_id}"]


async def test_one_trace_follows_an_episode_from_booking_to_every_service(
        platform, api, front_desk, wait_for):
    trace_id = secrets.token_hex(16)
    response = await api("booking", "POST", "/episodes", headers={
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}, json={
        "patient_id": front_desk["patient_id"], "location_id": front_desk["location_id"],
        "reason": "Hip pain", "symptom_site": "hip_lateral"})
    assert response.status_code == 201

    wanted = {"kinetic-booking", "kinetic-assessment", "kinetic-plan", "kinetic-billing"}

    async def traced_everywhere():
        services = {s["resource"]["attributes"]["service.name"]
                    for s in spans_of(trace_id, platform.log_dir)}
        return services if wanted <= services else None

    await wait_for(traced_everywhere, timeout=60)
    names = {s["name"] for s in spans_of(trace_id, platform.log_dir)}
    assert "event_store.append" in names
    assert "outbox.publish" in names
    assert "consume kinetic.booking.episode.opened.v1" in names
    assert any("EpisodeOfCareWorkflow" in n for n in names)  # into Temporal


async def test_metrics_count_appends_publishes_consumption_and_workflows(platform, api,
                                                                          front_desk, wait_for):
    await api("booking", "POST", "/episodes", json={
        "patient_id": front_desk["patient_id"], "location_id": front_desk["location_id"],
        "reason": "Ankle", "symptom_site": "ankle"})

    async def metric_names():
        names = set()
        for item in exported(platform.log_dir):
            for resource in item.get("resource_metrics", []):
                for scope in resource.get("scope_metrics", []):
                    names |= {m["name"] for m in scope.get("metrics", [])}
        wanted = {"kinetic.events.appended", "kinetic.relay.published", "kinetic.relay.lag",
                  "kinetic.consumer.lag", "kinetic.workflows.started",
                  # the Temporal SDK's own metrics, through the same meter provider
                  "temporal_worker_start", "temporal_workflow_task_execution_latency"}
        return names if wanted <= names else None

    await wait_for(metric_names, timeout=30)


async def test_patient_names_never_reach_logs_or_spans(platform, api, front_desk, wait_for):
    patient = await api("booking", "POST", "/patients", json={
        "given_name": CANARY, "family_name": CANARY, "date_of_birth": "1977-07-07",
        "email": "quintessa.canary@example.org", "home_location_id": front_desk["location_id"]})
    patient_id = patient.json()["id"]
    episode = await api("booking", "POST", "/episodes", json={
        "patient_id": patient_id, "location_id": front_desk["location_id"],
        "reason": f"{CANARY} wrist", "symptom_site": "wrist"})
    assert (await api("booking", "GET", f"/patients/{patient_id}")).status_code == 200
    await api("booking", "POST", "/patients", json={"given_name": CANARY})  # rejected input

    async def downstream():
        return (await api("billing", "GET", f"/accounts/{patient_id}")).status_code == 200

    await wait_for(downstream)
    assert episode.status_code == 201
    logs = list(platform.log_dir.glob("*.log"))
    assert {p.name for p in logs} >= {"booking-api.log", "booking-relay.log", "postgres.log"}
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert CANARY not in text
    assert "quintessa.canary@example.org" not in text
