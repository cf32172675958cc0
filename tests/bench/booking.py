"""Booking over HTTP, Kinetic's booking API beside a bare FastAPI + asyncpg endpoint, and the
availability search.

Kinetic side: the real booking API process (``python -m kinetic_infra.service api``, set up
by ``Platform`` on the benchmark's PostgreSQL and NATS: its own database, migrations, app
role under row-level security, and the development issuer for tokens). Only the API runs:
no relay, consumer or worker, so the two cores serve the requests; outbox rows pile up, as
the relay is not what is measured. Each ``POST /appointments`` checks the JWT, validates
the body, reads the patient's, location's and therapist's streams, decides (opening and
working hours, not in the past), appends the event with its outbox row, applies the inline
projection (whose exclusion constraints are the conflict check) and writes the audit
record, as in a deployment (telemetry included: spans go to the process's log file).

Baseline: ``bare_booking.py``, a separate uvicorn process on the same PostgreSQL (its own
database, an appointments table of the same shape), doing one INSERT per request.

Load: ``httpx.AsyncClient`` in this process, one per simulated client with its own
keep-alive connection; each client sends its next request when the previous one is
answered. Every request books a distinct (therapist, hour, patient) within opening and
working hours, so each should answer 201; anything else is counted as an error. Both sides
book the same sequence of slots, each in its own database. Runs alternate between the
sides (which goes first alternates too), each after a checkpoint and a warm-up that is not
counted.

Availability: ``GET /availability`` for 4 weeks at a location with 10 therapists (three
working patterns) about 70% booked, beside the floor: the raw asyncpg query of the same
appointments (one prepared SELECT on one connection). One client, alternating runs.

CPU: the processes' CPU time over each run (API or bare server, every PostgreSQL process,
this load generator) and the machine's busy time, per successful request, show where the
two cores went, and whether anything else ran meanwhile (the report then says so).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.service.definition import ServiceDefinition
from kinetic_infra.stack.platform import Platform, Ports, discover_services
from kinetic_infra.stack.processes import ChildProcess, free_port, port_open
from kinetic_infra.stack.temporal import EmbeddedTemporal, TemporalSettings
from tests.bench.bare_booking import DDL as BARE_DDL
from tests.bench.latency import LatencyStats
from tests.bench.stack import BenchStack

BARE_DB = "bench_bare"
REPO_ROOT = Path(__file__).resolve().parents[2]
TENANT_ID = UUID("0194f1d2-0000-7000-8000-0000000000b0")
OPERATOR = Principal("bench-operator", "Benchmark operator", TENANT_ID,
                     frozenset({Role.OPERATOR}))
TIMEZONE = "Europe/Berlin"
SETUP_CONCURRENCY = 16
WARMUP_PER_CLIENT = 3  # requests per client before the clock starts

# The booking load's location: open every day 07:00-21:00, its therapists working then too.
LOAD_OPENS, LOAD_CLOSES = 7, 21
LOAD_THERAPISTS, LOAD_PATIENTS = 20, 200

# The searched location: 10 therapists in three working patterns, about 70% booked.
SEARCH_DAYS = 28
SEARCH_PATIENTS = 150
SEARCH_BOOKED_SHARE = 0.7
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hours(days: Sequence[str], *spans: tuple[int, int]) -> dict[str, list[dict[str, str]]]:
    return {d: [{"opens": f"{a:02d}:00", "closes": f"{b:02d}:00"} for a, b in spans]
            for d in days}


SEARCH_OPENING = {**_hours(WEEKDAYS[:5], (8, 19)), **_hours(["sat"], (9, 13))}
SEARCH_PATTERNS = (
    [_hours(WEEKDAYS[:5], (8, 12), (13, 17))] * 6  # full time, lunch break
    + [_hours(["mon", "tue", "thu"], (10, 19))] * 3  # three long days
    + [{**_hours(WEEKDAYS[1:5], (8, 14)), **_hours(["sat"], (9, 13))}]  # mornings, Saturdays
)


# --- measuring -----------------------------------------------------------------------------


def _proc_cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def _machine_cpu() -> float:
    """CPU seconds every core of the machine has spent busy (not idle or waiting for I/O)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu(postmaster: int) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster, its live children and the
    children it has reaped (backends that ended)."""
    own, reaped = _proc_cpu(postmaster)
    total = own + reaped
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat[1]) == postmaster:
            total += _proc_cpu(int(entry.name))[0]
    return total


@dataclass
class CpuMeter:
    """CPU seconds spent by the server under test, PostgreSQL, this process and the whole
    machine (what the others do not account for is everything else running meanwhile)."""

    server_pids: tuple[int, ...]  # the server under test: one process, or its replicas
    postmaster_pid: int

    def read(self) -> Cpu:
        server = sum(_proc_cpu(pid)[0] for pid in self.server_pids)
        return Cpu(server, _postgres_cpu(self.postmaster_pid), time.process_time(),
                   _machine_cpu())


@dataclass(frozen=True)
class Cpu:
    """CPU seconds: the server under test, PostgreSQL, the load generator, the machine."""

    server: float = 0.0
    postgres: float = 0.0
    generator: float = 0.0
    machine: float = 0.0

    @property
    def rest(self) -> float:
        """The machine's CPU that none of the three used (other processes, interrupts)."""
        return max(0.0, self.machine - self.server - self.postgres - self.generator)

    def __add__(self, other: Cpu) -> Cpu:
        return Cpu(self.server + other.server, self.postgres + other.postgres,
                   self.generator + other.generator, self.machine + other.machine)

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.server - other.server, self.postgres - other.postgres,
                   self.generator - other.generator, self.machine - other.machine)

    def per(self, requests: int) -> Cpu:
        """Milliseconds per request."""
        n = max(requests, 1)
        return Cpu(self.server * 1000 / n, self.postgres * 1000 / n,
                   self.generator * 1000 / n, self.machine * 1000 / n)


@dataclass
class Run:
    """One side's measured requests: successes with their latencies, errors by kind, and
    the CPU seconds each process spent meanwhile."""

    ok: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cpu: Cpu = field(default_factory=Cpu)

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def stats(self) -> LatencyStats:
        return LatencyStats.of(self.latencies, self.ok, self.per_second)

    def cpu_ms_per_request(self) -> Cpu:
        return self.cpu.per(self.ok)

    @classmethod
    def combined(cls, runs: Sequence[Run]) -> Run:
        total = cls()
        for r in runs:
            total.ok += r.ok
            total.seconds += r.seconds
            total.latencies += r.latencies
            total.errors.update(r.errors)
            total.cpu += r.cpu
        return total


Call = Callable[[int], Awaitable[str | None]]  # (client index) -> None, or what went wrong


async def drive(call: Call, clients: int, seconds: float, cpu: CpuMeter,
                warmup: int = WARMUP_PER_CLIENT) -> Run:
    """``clients`` concurrent loops of ``call`` for ``seconds``; a call started in time is
    counted. Each client first makes ``warmup`` calls that are not."""

    async def repeat(client: int) -> None:
        for _ in range(warmup):
            await call(client)

    await asyncio.gather(*(repeat(c) for c in range(clients)))
    run = Run()
    before = cpu.read()
    start = time.perf_counter()
    deadline = start + seconds

    async def loop(client: int) -> None:
        while (sent := time.perf_counter()) < deadline:
            try:
                failure = await call(client)
            except Exception as exc:  # noqa: BLE001 - an error to count, not to stop on
                failure = type(exc).__name__
            if failure is None:
                run.ok += 1
                run.latencies.append(time.perf_counter() - sent)
            else:
                run.errors[failure] += 1

    await asyncio.gather(*(loop(c) for c in range(clients)))
    run.seconds = time.perf_counter() - start
    after = cpu.read()
    run.cpu = after - before
    return run


def http_client(base_url: str, token: str, connections: int = 1) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, timeout=30.0,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=connections,
                            max_keepalive_connections=connections))


@asynccontextmanager
async def http_clients(base_url: str, token: str, count: int
                       ) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One ``AsyncClient`` with its own keep-alive connection per simulated client: one
    shared pool of 32 connections costs this process several times the CPU per request
    (httpcore's pool bookkeeping), and the load generator shares the machine's cores."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(http_client(base_url, token))
               for _ in range(count)]


# --- what gets booked ----------------------------------------------------------------------


def tomorrow(zone: ZoneInfo) -> date:
    return datetime.now(zone).date() + timedelta(days=1)


def local(day: date, hour: int, zone: ZoneInfo) -> str:
    return datetime.combine(day, clock(hour), tzinfo=zone).isoformat()


@dataclass
class SlotPlan:
    """An endless sequence of bookable hours at the load location: day after day, hour after
    hour, every therapist in turn. The i-th booking's patient is ``patients[i % P]``, so the
    therapists' bookings of one hour never share a patient (there are more patients than
    therapists)."""

    location_id: UUID
    therapists: Sequence[UUID]
    patients: Sequence[UUID]
    first_day: date
    zone: ZoneInfo
    next_index: int = 0

    def next_body(self) -> bytes:
        i = self.next_index
        self.next_index += 1
        per_hour = len(self.therapists)
        day, rest = divmod(i, (LOAD_CLOSES - LOAD_OPENS) * per_hour)
        hour, therapist = divmod(rest, per_hour)
        return json.dumps({
            "patient_id": str(self.patients[i % len(self.patients)]),
            "therapist_id": str(self.therapists[therapist]),
            "location_id": str(self.location_id),
            "appointment_type": "treatment_session",
            "starts_at": local(self.first_day + timedelta(days=day), LOAD_OPENS + hour,
                               self.zone),
        }).encode()


def search_bookings(location_id: UUID, therapists: Sequence[UUID], patients: Sequence[UUID],
                    first_day: date, zone: ZoneInfo) -> list[dict[str, str]]:
    """About 70% of the searched therapists' working hours over the 4 weeks (seeded, so
    every run books the same); the bookings of one hour never share a patient."""
    rng = random.Random(20_260_301)
    bookings = []
    for d in range(SEARCH_DAYS):
        day = first_day + timedelta(days=d)
        weekday = WEEKDAYS[day.weekday()]
        for t, (therapist, pattern) in enumerate(zip(therapists, SEARCH_PATTERNS, strict=True)):
            for span in pattern.get(weekday, []):
                for hour in range(int(span["opens"][:2]), int(span["closes"][:2])):
                    if rng.random() >= SEARCH_BOOKED_SHARE:
                        continue
                    patient = patients[((d * 24 + hour) * len(therapists) + t) % len(patients)]
                    bookings.append({
                        "patient_id": str(patient), "therapist_id": str(therapist),
                        "location_id": str(location_id), "appointment_type": "treatment_session",
                        "starts_at": local(day, hour, zone)})
    return bookings


# --- the processes and the data ------------------------------------------------------------


def booking_definition() -> ServiceDefinition:
    found = [d for d in discover_services() if d.name == "booking"]
    if not found:
        raise RuntimeError("the booking service is not installed (kinetic.services entry point)")
    return found[0]


@dataclass
class BookingBench:
    """The booking API (and the development issuer) and the bare baseline server, on the
    benchmark's PostgreSQL and NATS, with the locations, therapists, patients and existing
    bookings the scenarios use. ``stop()`` ends every process it started, never the
    servers it borrowed."""

    stack: BenchStack
    api_env: dict[str, str] = field(default_factory=dict)  # extra environment for the API
    replicas: int = 1  # API processes, and bare servers, each sharing its side's port
    label: str = ""  # keeps the databases and logs of several benches on one stack apart
    platform: Platform | None = None
    bares: list[ChildProcess] = field(default_factory=list)
    bare_port: int = 0
    token: str = ""
    load_plan: tuple[UUID, list[UUID], list[UUID]] | None = None  # location, therapists, patients
    search_location: UUID | None = None
    search_therapists: list[UUID] = field(default_factory=list)
    search_booked: int = 0
    first_day: date | None = None
    plans: dict[str, SlotPlan] = field(default_factory=dict)  # per side, over every run

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(TIMEZONE)

    @property
    def kinetic_url(self) -> str:
        assert self.platform is not None
        return self.platform.base_url("booking")

    @property
    def bare_url(self) -> str:
        return f"http://127.0.0.1:{self.bare_port}"

    def _meter(self, pids: Sequence[int]) -> CpuMeter:
        assert self.stack.postgres is not None and self.stack.postgres.process is not None
        return CpuMeter(tuple(pids), self.stack.postgres.process.pid)

    def kinetic_cpu(self) -> CpuMeter:
        assert self.platform is not None
        return self._meter([p.pid for p in self.platform.processes
                            if p.name.startswith("booking-api")])

    def bare_cpu(self) -> CpuMeter:
        assert self.bares
        return self._meter([b.pid for b in self.bares])

    def postgres_only_cpu(self) -> CpuMeter:
        return self._meter([])

    def slot_plan(self, side: str) -> SlotPlan:
        """The side's booking sequence, continued from where its previous run stopped."""
        if side not in self.plans:
            assert self.load_plan is not None and self.first_day is not None
            location, therapists, patients = self.load_plan
            self.plans[side] = SlotPlan(location, therapists, patients, self.first_day,
                                        self.zone)
        return self.plans[side]

    # -- start and stop ------------------------------------------------------------------
    def start_processes(self) -> None:
        stack = self.stack
        assert stack.postgres is not None and stack.nats is not None
        definition = booking_definition()
        root = stack.root / f"booking{self.label}"
        platform = Platform(data_dir=root, ports=Ports.free([definition]),
                            services=[definition], durable=True, roles=("api",),
                            extra_env=self.api_env, replicas=self.replicas)
        self.platform = platform
        platform.log_dir.mkdir(parents=True, exist_ok=True)
        # Borrowed: stopped by BenchStack. Temporal is never started (the API does not call
        # it); the settings only give the processes an address.
        platform.postgres, platform.nats = stack.postgres, stack.nats
        platform.temporal = EmbeddedTemporal(TemporalSettings(
            root / "temporal", free_port(), free_port(), free_port(), free_port()))
        platform.start_issuer()
        platform.prepare_databases()
        several = self.replicas > 1
        apis = [platform.start_process(definition, "api", f"-{i + 1}" if several else "")
                for i in range(self.replicas)]
        for api in apis:
            # /healthz, not /readyz: readiness would also ask for the Temporal server.
            api.wait_ready(lambda: _answers(f"{self.kinetic_url}/healthz"), timeout=90,
                           what="booking API")
        self.token = platform.mint(OPERATOR, ttl_seconds=3 * 3600)

        bare_db = f"{BARE_DB}{self.label}"
        stack.postgres.psql(f'CREATE DATABASE "{bare_db}"')
        stack.postgres.psql(BARE_DDL, database=bare_db)
        self.bare_port = free_port()
        for i in range(self.replicas):
            bare = ChildProcess(
                f"bare-booking-{i + 1}",
                [sys.executable, "-m", "tests.bench.bare_booking", "--port", str(self.bare_port),
                 "--dsn", stack.postgres.dsn(bare_db), *(["--reuse-port"] if several else [])],
                platform.log_dir / f"bare-booking-{i + 1}.log", cwd=REPO_ROOT).start()
            self.bares.append(bare)
            bare.wait_ready(lambda: port_open(self.bare_port) and _answers(f"{self.bare_url}/healthz"),
                            timeout=60, what="bare booking server")

    def stop(self) -> None:
        for bare in self.bares:
            bare.stop()
        self.bares = []
        if self.platform is not None:
            platform, self.platform = self.platform, None
            platform.postgres = platform.nats = platform.temporal = None  # not ours to stop
            platform.stop()

    # -- data ----------------------------------------------------------------------------
    async def create_data(self) -> None:
        """Both locations, their therapists with working hours, patients, and the searched
        location's existing bookings, through booking's API."""
        zone = self.zone
        self.first_day = tomorrow(zone)
        async with http_client(self.kinetic_url, self.token, SETUP_CONCURRENCY) as client:
            gate = asyncio.Semaphore(SETUP_CONCURRENCY)

            async def post(path: str, body: dict[str, object], expect: int = 201
                           ) -> dict[str, object]:
                async with gate:
                    response = await client.request("PUT" if expect == 204 else "POST", path,
                                                    json=body)
                if response.status_code != expect:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                return response.json() if response.content else {}

            async def new_id(path: str, body: dict[str, object]) -> UUID:
                return UUID(str((await post(path, body))["id"]))

            async def therapists(location: UUID, hours: Sequence[dict[str, object]], name: str
                                 ) -> list[UUID]:
                ids = await asyncio.gather(*(new_id("/therapists", {
                    "location_ids": [str(location)], "display_name": f"{name} {i:02d}"})
                    for i in range(len(hours))))
                await asyncio.gather(*(post(f"/therapists/{t}/working-hours/{location}",
                                            {"working_hours": h}, expect=204)
                                       for t, h in zip(ids, hours, strict=True)))
                return list(ids)

            async def patients(location: UUID, count: int, family: str) -> list[UUID]:
                return list(await asyncio.gather(*(new_id("/patients", {
                    "given_name": f"Patient{i}", "family_name": family,
                    "date_of_birth": f"{1950 + i % 50}-0{1 + i % 9}-1{i % 10}",
                    "home_location_id": str(location)}) for i in range(count))))

            load_location = await new_id("/locations", {
                "name": "Benchmark load clinic", "timezone": TIMEZONE,
                "opening_hours": _hours(WEEKDAYS, (LOAD_OPENS, LOAD_CLOSES))})
            search_location = await new_id("/locations", {
                "name": "Benchmark search clinic", "timezone": TIMEZONE,
                "opening_hours": SEARCH_OPENING})
            load_hours = [_hours(WEEKDAYS, (LOAD_OPENS, LOAD_CLOSES))] * LOAD_THERAPISTS
            self.load_plan = (load_location,
                              await therapists(load_location, load_hours, "Load therapist"),
                              await patients(load_location, LOAD_PATIENTS, "Loadpatient"))
            self.search_location = search_location
            self.search_therapists = await therapists(search_location, SEARCH_PATTERNS,
                                                      "Search therapist")
            search_patients = await patients(search_location, SEARCH_PATIENTS, "Searchpatient")
            bookings = search_bookings(search_location, self.search_therapists,
                                       search_patients, self.first_day, zone)
            await asyncio.gather(*(post("/appointments", b) for b in bookings))
            self.search_booked = len(bookings)
        conn = await asyncpg.connect(self.maintenance_url)
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()

    @property
    def maintenance_url(self) -> str:
        assert self.platform is not None
        return self.platform.maintenance_url("booking")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# --- the scenarios -------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingResult:
    clients: int
    kinetic: Run
    bare: Run
    rounds: int
    seconds: float  # per run


async def book_run(base_url: str, token: str, plan: SlotPlan, clients: int, seconds: float,
                   cpu: CpuMeter) -> Run:
    async with http_clients(base_url, token, clients) as pool:
        async def call(client: int) -> str | None:
            response = await pool[client].post("/appointments", content=plan.next_body())
            return None if response.status_code == 201 else str(response.status_code)

        return await drive(call, clients, seconds, cpu)


async def measure_booking(bench: BookingBench, clients: int, seconds: float, rounds: int
                          ) -> BookingResult:
    """``rounds`` runs per side, alternating (and alternating which side goes first). Each
    side books its own copy of the same slot sequence, continuing over its runs."""
    plans = {side: bench.slot_plan(side) for side in ("kinetic", "bare")}
    runs: dict[str, list[Run]] = {"kinetic": [], "bare": []}
    for round_ in range(rounds):
        for side in ("bare", "kinetic") if round_ % 2 == 0 else ("kinetic", "bare"):
            await bench.stack.settle()
            if side == "kinetic":
                run = await book_run(bench.kinetic_url, bench.token, plans[side], clients,
                                     seconds, bench.kinetic_cpu())
            else:
                run = await book_run(bench.bare_url, bench.token, plans[side], clients,
                                     seconds, bench.bare_cpu())
            runs[side].append(run)
    return BookingResult(clients, Run.combined(runs["kinetic"]), Run.combined(runs["bare"]),
                         rounds, seconds)


# Booking's availability query of appointments, for the same therapists and range.
RAW_RANGE_SQL = """
SELECT therapist_id, starts_at, ends_at FROM appointments
WHERE therapist_id = ANY($1::uuid[]) AND starts_at < $2 AND ends_at > $3
  AND status = ANY($4::text[])
"""


@dataclass(frozen=True)
class AvailabilityResult:
    kinetic: Run
    raw: Run
    clients: int
    rounds: int
    seconds: float
    therapists: int
    booked: int  # existing bookings in the searched range
    slots: int  # free slots the search answered
    rows: int  # appointment rows the raw query returned


async def measure_availability(bench: BookingBench, clients: int, seconds: float,
                               rounds: int) -> AvailabilityResult:
    assert bench.search_location is not None and bench.first_day is not None
    first, last = bench.first_day, bench.first_day + timedelta(days=SEARCH_DAYS - 1)
    params = {"location_id": str(bench.search_location),
              "appointment_type": "treatment_session",
              "start_date": first.isoformat(), "end_date": last.isoformat()}
    zone = bench.zone
    span_start = datetime.combine(first, clock(), tzinfo=zone)
    span_end = datetime.combine(last + timedelta(days=1), clock(), tzinfo=zone)
    found = {"slots": 0, "rows": 0}

    async def kinetic_run() -> Run:
        async with http_clients(bench.kinetic_url, bench.token, clients) as pool:
            async def call(client: int) -> str | None:
                response = await pool[client].get("/availability", params=params)
                if response.status_code != 200:
                    return str(response.status_code)
                found["slots"] = len(response.json())
                return None

            return await drive(call, clients, seconds, bench.kinetic_cpu())

    async def raw_run() -> Run:
        conns = [await asyncpg.connect(bench.maintenance_url) for _ in range(clients)]
        try:
            statements = [await c.prepare(RAW_RANGE_SQL) for c in conns]

            async def call(client: int) -> str | None:
                rows = await statements[client].fetch(
                    bench.search_therapists, span_end, span_start,
                    ["booked", "checked_in", "completed"])
                found["rows"] = len(rows)
                return None

            return await drive(call, clients, seconds, bench.postgres_only_cpu())
        finally:
            await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)

    runs: dict[str, list[Run]] = {"kinetic": [], "raw": []}
    for round_ in range(rounds):
        for side in ("raw", "kinetic") if round_ % 2 == 0 else ("kinetic", "raw"):
            await bench.stack.settle()
            runs[side].append(await (kinetic_run() if side == "kinetic" else raw_run()))
    return AvailabilityResult(Run.combined(runs["kinetic"]), Run.combined(runs["raw"]),
                              clients, rounds, seconds, len(bench.search_therapists),
                              bench.search_booked, found["slots"], found["rows"])
