"""``python -m tests.chaos`` (``make chaos``): the whole-episode flow for many patients at once
on three replicas of every service process and a three-node NATS JetStream cluster, while
one NATS node, one replica of every role of every service and one relay of every service are
killed with SIGKILL; then the checks that nothing was lost, nothing happened twice and every
workflow ended.

Faults, while the episodes run (each after the previous, once enough episodes are under way
that the kill lands in the middle of the traffic):
1. one NATS node (the services' connections move to the other two; R3 streams keep going);
2. replica 2 of every role of every service (API, consumer, worker, dispatcher): clients
   whose connection it held send again (flow.py), its pulled messages are redelivered to
   the other consumers, its workflow tasks go to the other workers;
3. relay 1 of every service, the one most likely holding the lease: another takes over.

Checks, once every flow ended:
- every episode reached its end (flow.py's steps, each effect it waited for included);
- the streams hold each expected event exactly once per episode: nothing lost, nothing
  published twice under two ids (per subject, counted by JetStream);
- billing has exactly one invoice per completed appointment, plan one plan per evaluation,
  assessment one evaluation per initial assessment;
- every outbox is empty and every durable consumer has nothing pending or unacknowledged;
- every episode's EpisodeOfCareWorkflow and every appointment's SessionChargeWorkflow
  completed on Temporal.
The exit status is 1 when any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import nats
from temporalio.client import Client, WorkflowExecutionStatus

from kinetic_contracts.naming import stream_name_for_service
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.stack.nats import NatsCluster
from kinetic_infra.stack.platform import Platform, Ports, discover_services
from tests.chaos.flow import (
    Clinic,
    Episode,
    FlowError,
    Staff,
    open_clinic,
    until,
    whole_episode,
)
from tests.e2e.test_billing import tariff

KILL_AFTER = (0.15, 0.35, 0.55)  # share of episodes past their evaluation before each fault
DRAIN_SECONDS = 300.0
WORKFLOW_SECONDS = 180.0  # for the last charges to see their payments
SOURCES = ("booking", "assessment", "plan", "billing")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def expected_events(patients: int) -> dict[str, dict[str, int]]:
    """Per stream, per event (subject's last tokens): how many the episodes publish."""
    each = {
        "booking": {"patient.registered": 1, "episode.opened": 1, "appointment.booked": 2,
                    "appointment.checked_in": 2, "appointment.completed": 2,
                    "episode.closed": 1},
        "assessment": {"evaluation.completed": 1},
        "plan": {"plan.created": 1, "episode.discharged": 1, "session.logged": 1},
        "billing": {"invoice.issued": 2, "payment.recorded": 2},
    }
    return {s: {e: n * patients for e, n in events.items()} for s, events in each.items()}


class Chaos:
    def __init__(self, platform: Platform, episodes: list[Episode]) -> None:
        self.platform = platform
        self.episodes = episodes
        self.faults: list[str] = []

    def evaluated(self) -> float:
        past = {"plan", "treatment session", "discharge", "payment", "done"}
        return sum(e.stage in past for e in self.episodes) / len(self.episodes)

    async def run(self, finished: asyncio.Event) -> None:
        faults: list[Callable[[], str]] = [self.kill_nats_node, self.kill_replicas,
                                           self.kill_relays]
        for share, fault in zip(KILL_AFTER, faults, strict=True):
            while self.evaluated() < share and not finished.is_set():
                await asyncio.sleep(0.5)
            if finished.is_set():
                self.faults.append(f"not run (the episodes ended first): {fault.__name__}")
                return
            what = fault()
            self.faults.append(what)
            say(f"SIGKILL {what}")

    def kill_nats_node(self) -> str:
        cluster = self.platform.nats
        assert isinstance(cluster, NatsCluster)
        node = cluster.nodes[1]
        assert node.process is not None
        node.process.kill()
        return f"NATS node {node.settings.name}"

    def _kill(self, predicate: Callable[[str], bool]) -> list[str]:
        killed = []
        for process in self.platform.processes:
            if predicate(process.name) and process.alive():
                process.kill()
                killed.append(process.name)
        return killed

    def kill_replicas(self) -> str:
        killed = self._kill(lambda name: name.endswith("-2") and "-relay-" not in name)
        return f"{len(killed)} replicas: {', '.join(sorted(killed))}"

    def kill_relays(self) -> str:
        killed = self._kill(lambda name: name.endswith("-relay-1"))
        return f"{len(killed)} relays: {', '.join(sorted(killed))}"


async def run(platform: Platform, patients: int) -> list[str]:
    tenant = uuid4()
    principal = Principal(f"chaos-{tenant}", "Chaos operator", tenant,
                          frozenset({Role.OPERATOR}))
    urls = {d.name: platform.base_url(d.name) for d in platform.services}
    failures: list[str] = []
    async with Staff(urls, platform.mint(principal, ttl_seconds=6 * 3600)) as staff:
        say(f"opening the clinic: {patients} therapists, a price list")
        clinic = await open_clinic(staff, patients, tariff(date(2026, 1, 1)))
        episodes = [Episode() for _ in range(patients)]
        chaos = Chaos(platform, episodes)
        finished = asyncio.Event()
        faults = asyncio.create_task(chaos.run(finished))
        progress = asyncio.create_task(report_progress(episodes, finished))
        say(f"{patients} whole episodes at once")
        started = time.monotonic()
        results = await asyncio.gather(*(whole_episode(staff, clinic, i, episodes[i])
                                         for i in range(patients)), return_exceptions=True)
        finished.set()
        await faults
        await progress
        say(f"episodes ended in {time.monotonic() - started:.0f} s; {staff.retries} requests "
            f"sent again; faults: {'; '.join(chaos.faults)}")
        for i, result in enumerate(results):
            if isinstance(result, BaseException):
                failures.append(f"episode {i} at {episodes[i].stage}: "
                                f"{type(result).__name__}: {result}")
        if len(chaos.faults) < len(KILL_AFTER) or any(f.startswith("not run")
                                                     for f in chaos.faults):
            failures.append(f"not every fault was injected: {chaos.faults}")
        failures += await check(platform, staff, clinic, tenant, episodes)
    return failures


async def report_progress(episodes: list[Episode], finished: asyncio.Event) -> None:
    while not finished.is_set():
        await asyncio.sleep(20)
        stages = Counter(e.stage for e in episodes)
        say("stages: " + ", ".join(f"{stage or 'not started'} {n}"
                                   for stage, n in sorted(stages.items())))


async def check(platform: Platform, staff: Staff, clinic: Clinic, tenant: UUID,
                episodes: list[Episode]) -> list[str]:
    failures: list[str] = []
    done = [e for e in episodes if e.stage == "done"]
    say(f"checks: {len(done)}/{len(episodes)} episodes done")

    async def drained() -> bool:
        return not await outbox_and_consumer_backlog(platform)

    try:
        await until(drained, "outboxes and consumers drained", DRAIN_SECONDS)
    except FlowError as exc:
        failures.append(f"{exc}: {await outbox_and_consumer_backlog(platform)}")

    expected = expected_events(len(done)) if len(done) == len(episodes) else None
    counted = await stream_counts(platform, tenant)
    for service, events in (expected or {}).items():
        for event, want in events.items():
            got = counted.get(service, {}).get(event, 0)
            if got != want:
                failures.append(f"{service} stream: {got} {event}, expected {want}")

    patients = [UUID(e.patient_id) for e in episodes if e.patient_id]
    appointments = [UUID(a) for e in episodes for a in e.appointments]
    rows = await fetch(platform, "billing",
                       "SELECT appointment_id, count(*) AS n FROM invoices "
                       "WHERE patient_id = ANY($1) GROUP BY appointment_id", patients)
    invoices = {r["appointment_id"]: r["n"] for r in rows}
    twice = [a for a, n in invoices.items() if n != 1]
    missing = [a for a in appointments if a not in invoices]
    if twice or missing:
        failures.append(f"invoices: {len(twice)} appointments invoiced more than once, "
                        f"{len(missing)} not invoiced")
    # The plan is drafted from the evaluation (one draft per evaluation, then activated).
    plans = await fetch(platform, "plan",
                        "SELECT stream_name, count(*) AS n FROM events WHERE type = "
                        "'kinetic.plan.plan.drafted.v1' AND tenant_id = $1 GROUP BY 1", tenant)
    if len(plans) != len(done) or any(r["n"] != 1 for r in plans):
        failures.append(f"plans: {len(plans)} episodes with a plan for {len(done)} done, "
                        f"{sum(r['n'] != 1 for r in plans)} with more than one")
    for e in done:
        evaluations = await staff.get("assessment", f"/evaluations?episode_id={e.episode_id}")
        if len(evaluations or []) != 1:
            failures.append(f"episode {e.episode_id}: {len(evaluations or [])} evaluations")

    failures += await workflows_ended(platform, done)
    return failures


async def fetch(platform: Platform, service: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(platform.maintenance_url(service))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def connect_to_cluster(platform: Platform) -> nats.NATS:
    """A client of the nodes still up (the killed one refuses: not worth a traceback)."""
    assert platform.nats is not None

    async def quiet(_error: Exception) -> None:
        return None

    return await nats.connect(platform.nats.url.split(","), error_cb=quiet)


async def outbox_and_consumer_backlog(platform: Platform) -> list[str]:
    pending: list[str] = []
    for d in platform.services:
        rows = await fetch(platform, d.name, "SELECT count(*) AS n FROM outbox")
        if rows[0]["n"]:
            pending.append(f"{d.name} outbox {rows[0]['n']}")
    nc = await connect_to_cluster(platform)
    try:
        js = nc.jetstream()
        for service in (*SOURCES, "partners"):
            stream = stream_name_for_service(service)
            for consumer in await js.consumers_info(stream):
                if consumer.num_pending or consumer.num_ack_pending:
                    pending.append(f"{stream}/{consumer.name} pending {consumer.num_pending}, "
                                   f"unacknowledged {consumer.num_ack_pending}")
    finally:
        await nc.close()
    return pending


async def stream_counts(platform: Platform, tenant: UUID) -> dict[str, dict[str, int]]:
    """Messages per event of the organization, per service stream (JetStream's own count per
    subject: a message published twice under two ids counts twice)."""
    nc = await connect_to_cluster(platform)
    counts: dict[str, dict[str, int]] = {}
    try:
        js = nc.jetstream()
        for service in SOURCES:
            prefix = f"kinetic.{tenant}.{service}."
            info = await js.stream_info(stream_name_for_service(service),
                                        subjects_filter=f"{prefix}>")
            counts[service] = {subject.removeprefix(prefix): n
                               for subject, n in (info.state.subjects or {}).items()}
    finally:
        await nc.close()
    return counts


async def workflows_ended(platform: Platform, done: list[Episode]) -> list[str]:
    assert platform.temporal is not None
    client = await Client.connect(platform.temporal.address)
    ids = [f"episode-of-care-{e.episode_id}" for e in done] + [
        f"session-charge-{a}" for e in done for a in e.appointments]

    async def statuses() -> Counter[str]:
        found: Counter[str] = Counter()
        for workflow_id in ids:
            description = await client.get_workflow_handle(workflow_id).describe()
            status = description.status
            found[status.name if status else "UNKNOWN"] += 1
        return found

    async def all_completed() -> bool:
        return (await statuses())[WorkflowExecutionStatus.COMPLETED.name] == len(ids)

    try:
        await until(all_completed, "every workflow completed", WORKFLOW_SECONDS)
    except FlowError:
        pass  # reported below, with what the workflows are doing instead
    found = await statuses()
    say(f"workflows: {dict(found)} of {len(ids)}")
    if found[WorkflowExecutionStatus.COMPLETED.name] != len(ids):
        return [f"workflows not all completed: {dict(found)}"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--nats-nodes", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args(argv)
    if args.replicas < 2 or args.nats_nodes < 3:
        parser.error("the faults need at least 2 replicas and 3 NATS nodes")
    data_dir = Path(tempfile.mkdtemp(prefix="kinetic-chaos-"))
    services = discover_services()
    platform = Platform(data_dir=data_dir, ports=Ports.free(services), services=services,
                        durable=True, nats_nodes=args.nats_nodes, replicas=args.replicas)
    failures: list[str] = []
    try:
        say(f"starting {args.replicas} replicas of every process and {args.nats_nodes} NATS "
            f"nodes in {data_dir}")
        started = time.monotonic()
        platform.start()
        say(f"platform ready in {time.monotonic() - started:.0f} s "
            f"({len(platform.processes)} processes)")
        failures = asyncio.run(run(platform, args.patients))
    except FlowError as exc:
        failures.append(str(exc))
    finally:
        platform.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    if failures:
        say(f"FAILED ({len(failures)}):")
        for failure in failures[:50]:
            print(f"  {failure}", flush=True)
        return 1
    say(f"passed: {args.patients} episodes, nothing lost, nothing twice, every workflow ended")
    return 0


if __name__ == "__main__":
    sys.exit(main())
