"""``python -m tests.bench [GROUP ...]``: run the scenarios on one embedded stack and print
the table. Groups: ``appends``, ``relay``, ``booking``, ``plan``, ``latency``, ``partners``,
``replicas``; without one, all of them.

Order: event-store appends (appends.py), outbox relay throughput (relay.py), booking over
HTTP beside a bare endpoint and the availability search (booking.py), care episodes through
plan's workflow beside a bare Temporal workflow and the operator load (plan.py; it starts
the Temporal dev server), then commit-to-effect latency with its two raw baselines
(latency.py; it restarts PostgreSQL with commit timestamps on, so it comes late), partners,
and 1 beside 3 replicas (replicas.py: booking before the restart, latency after). Each
append, relay and latency measurement runs on emptied tables and a re-created stream; plan
empties booking's stream before its consumers start. A scenario that fails is reported and
the others still run; the exit status is non-zero only then, never because a target was
missed.
Every server and child process is stopped on the way out, also on an error or a Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.bench.appends import AppendCase, measure_appends
from tests.bench.booking import BookingBench, measure_availability, measure_booking
from tests.bench.latency import measure_kinetic_latency, measure_raw_latency
from tests.bench.partners import measure_partners
from tests.bench.plan import PlanBench, measure_bare, measure_episodes, measure_load
from tests.bench.relay import measure_relay
from tests.bench.replicas import (
    ReplicaResults,
    measure_replica_booking,
    measure_replica_latency,
)
from tests.bench.report import Results, render
from tests.bench.stack import BenchStack

APPEND_CASES = [AppendCase(1, 1), AppendCase(1, 16), AppendCase(10, 1), AppendCase(10, 16)]
APPEND_SECONDS = 2.0  # per run; each case runs raw, Kinetic, raw, Kinetic
APPEND_ROUNDS = 2
RELAY_ROWS, RELAY_ROUNDS = 10_000, 2  # outbox rows per round
LATENCY_RATE = 500.0
LATENCY_SECONDS = 10.0
LOW_RATE, LOW_RATE_SECONDS = 100.0, 5.0  # the Kinetic path unsaturated, for comparison
BOOKING_CLIENTS = (1, 32)
BOOKING_SECONDS, BOOKING_ROUNDS = 5.0, 2  # per run; runs: bare, Kinetic, Kinetic, bare
AVAILABILITY_CLIENTS = 1
AVAILABILITY_SECONDS, AVAILABILITY_ROUNDS = 4.0, 2
PLAN_EPISODES, PLAN_WARMUP_EPISODES = 60, 4  # timed at once, sessions 2-4 each
BARE_SECONDS = 8.0  # per run; runs: bare, Kinetic episodes, bare
LOAD_LOGS = 10 * 8 * 8  # 10 locations x 8 therapists x 8 sessions a day
LOAD_SECONDS = 60.0  # the target's 10 minutes compressed 10x (10.7 logs/s)
PARTNERS_RATE, PARTNERS_SECONDS = 200.0, 10.0  # the p99 target is at 200 events/s
REPLICA_COUNTS, REPLICA_CLIENTS = (1, 3), 32
REPLICA_LATENCY_SECONDS = 10.0  # at LATENCY_RATE
GROUPS = ("appends", "relay", "booking", "plan", "latency", "partners", "replicas")


def say(message: str) -> None:
    print(message, flush=True)


async def _scenario(results: Results, name: str, run: Callable[[], Awaitable[None]]) -> None:
    started = time.perf_counter()
    say(f"- {name} ...")
    try:
        await run()
    except Exception as exc:  # noqa: BLE001 - report it, run the other scenarios
        traceback.print_exc()
        results.errors.append(f"{name}: {type(exc).__name__}: {exc}")
    say(f"  done in {time.perf_counter() - started:.0f} s")


async def run_all(stack: BenchStack, groups: tuple[str, ...] = GROUPS) -> Results:
    results = Results(APPEND_SECONDS * APPEND_ROUNDS, LATENCY_RATE,
                      LATENCY_SECONDS, LOW_RATE, LOW_RATE_SECONDS)
    await stack.create_schemas()
    if "appends" in groups:
        await run_appends(stack, results)
    if "relay" in groups:
        async def relay() -> None:
            results.relay = await measure_relay(stack, RELAY_ROWS, RELAY_ROUNDS)

        await _scenario(results, f"relay, {RELAY_ROUNDS} x {RELAY_ROWS:,} outbox rows", relay)
    if "booking" in groups:
        await run_booking(stack, results)
    if "plan" in groups:
        await run_plan(stack, results)
    if "replicas" in groups:
        results.replicas = ReplicaResults({}, {}, REPLICA_CLIENTS, LATENCY_RATE)
        await measure_replica_booking(stack, REPLICA_COUNTS, REPLICA_CLIENTS, BOOKING_SECONDS,
                                      BOOKING_ROUNDS, results.replicas,
                                      lambda name, run: _scenario(results, name, run))
    if {"latency", "partners", "replicas"} & set(groups):
        say("- restarting PostgreSQL with commit timestamps on (read by the latency scenarios)")
        stack.enable_commit_timestamps()
    if "latency" in groups:
        await run_latency(stack, results)
    if "partners" in groups:
        async def partners() -> None:
            results.partners = await measure_partners(stack, PARTNERS_RATE, PARTNERS_SECONDS)

        await _scenario(results, f"partners: commit -> verified webhook at "
                                 f"{PARTNERS_RATE:.0f} events/s, and raw JetStream", partners)
    if results.replicas is not None:
        await measure_replica_latency(stack, REPLICA_COUNTS, REPLICA_LATENCY_SECONDS,
                                      results.replicas,
                                      lambda name, run: _scenario(results, name, run))
    return results


async def run_appends(stack: BenchStack, results: Results) -> None:
    for case in APPEND_CASES:
        async def appends(case: AppendCase = case) -> None:
            kinetic, raw = await measure_appends(stack, case, seconds=APPEND_SECONDS,
                                                 rounds=APPEND_ROUNDS)
            results.appends.append((case, kinetic, raw))

        await _scenario(results, f"appends, {case.label}", appends)


async def run_booking(stack: BenchStack, results: Results) -> None:
    bench = BookingBench(stack)
    ready = False

    async def start() -> None:
        nonlocal ready
        await asyncio.to_thread(bench.start_processes)
        await bench.create_data()
        ready = True

    try:
        await _scenario(results, "booking: start the booking API and the bare endpoint, "
                                 "create locations, therapists, patients, bookings", start)
        if not ready:
            return
        for clients in BOOKING_CLIENTS:
            async def booking(clients: int = clients) -> None:
                results.booking.append(await measure_booking(
                    bench, clients, BOOKING_SECONDS, BOOKING_ROUNDS))

            await _scenario(results, f"booking over HTTP, {clients} client"
                                     f"{'s' if clients > 1 else ''}", booking)

        async def availability() -> None:
            results.availability = await measure_availability(
                bench, AVAILABILITY_CLIENTS, AVAILABILITY_SECONDS, AVAILABILITY_ROUNDS)

        await _scenario(results, "availability search, 4 weeks", availability)
    finally:
        bench.stop()


async def run_plan(stack: BenchStack, results: Results) -> None:
    bench = PlanBench(stack)
    results.plan = bench.result
    ready = False

    async def start() -> None:
        nonlocal ready
        # Empty booking's stream first: plan's consumers read it from the start, and the
        # relay scenario left its episode.opened events there.
        await stack.reset_stream()
        await asyncio.to_thread(bench.start_processes)
        await bench.connect()
        await bench.set_up(PLAN_EPISODES, PLAN_WARMUP_EPISODES, LOAD_LOGS)
        ready = True

    async def bare() -> None:
        await measure_bare(bench, PLAN_EPISODES, BARE_SECONDS)

    async def episodes() -> None:
        await measure_episodes(bench)

    async def load() -> None:
        await measure_load(bench, LOAD_SECONDS)

    try:
        await _scenario(results, "plan: start Temporal and plan's processes, set up "
                                 f"{PLAN_WARMUP_EPISODES + PLAN_EPISODES + LOAD_LOGS} episodes "
                                 "(evaluated, drafted, activated)", start)
        if not ready:
            return
        await _scenario(results, f"plan: bare workflow, {PLAN_EPISODES} clients", bare)
        await _scenario(results, f"plan: {PLAN_EPISODES} episodes through sessions 2-4",
                        episodes)
        await _scenario(results, f"plan: bare workflow again, {PLAN_EPISODES} clients", bare)
        await _scenario(results, f"plan: operator load, {LOAD_LOGS} logs in "
                                 f"{LOAD_SECONDS:.0f} s", load)
    finally:
        await bench.close()
        bench.stop()
        stack.stop_temporal()


async def run_latency(stack: BenchStack, results: Results) -> None:
    async def kinetic_latency() -> None:
        results.kinetic_latency = await measure_kinetic_latency(stack, LATENCY_RATE,
                                                                LATENCY_SECONDS)

    async def kinetic_low_rate_latency() -> None:
        results.kinetic_latency_low = await measure_kinetic_latency(stack, LOW_RATE,
                                                                    LOW_RATE_SECONDS)

    async def jetstream_latency() -> None:
        results.raw_jetstream_latency = await measure_raw_latency(
            stack, LATENCY_RATE, LATENCY_SECONDS, jetstream=True)

    async def core_latency() -> None:
        results.raw_core_latency = await measure_raw_latency(
            stack, LATENCY_RATE, LATENCY_SECONDS, jetstream=False)

    await _scenario(results, "latency, Kinetic (writer, relay, consumer)", kinetic_latency)
    await _scenario(results, f"latency, Kinetic at {LOW_RATE:.0f} events/s",
                    kinetic_low_rate_latency)
    await _scenario(results, "latency, raw JetStream", jetstream_latency)
    await _scenario(results, "latency, raw core NATS", core_latency)


def parse_groups(argv: list[str]) -> tuple[str, ...]:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Kinetic's benchmark: each scenario beside a raw baseline, one table.")
    parser.add_argument("groups", nargs="*", metavar="GROUP",
                        help=f"which scenarios to run ({', '.join(GROUPS)}); default: all")
    chosen = parser.parse_args(argv).groups
    if unknown := [g for g in chosen if g not in GROUPS]:
        parser.error(f"unknown group {', '.join(unknown)} (choose from {', '.join(GROUPS)})")
    return tuple(g for g in GROUPS if g in chosen) if chosen else GROUPS


def busy_share(seconds: float = 1.0) -> float | None:
    """How busy the machine's cores are (0-1) over ``seconds``, before anything of ours
    runs: other work on the machine makes every number lower."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle, iowait
        return sum(values) - idle, sum(values)

    try:
        busy1, total1 = sample()
        time.sleep(seconds)
        busy2, total2 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (busy2 - busy1) / (total2 - total1) if total2 > total1 else None


def main(argv: list[str] | None = None) -> int:
    groups = parse_groups(sys.argv[1:] if argv is None else argv)
    busy_before = busy_share()
    started = time.perf_counter()
    say("Kinetic benchmark: starting PostgreSQL and NATS in a temporary directory")
    with BenchStack() as stack:
        results = asyncio.run(run_all(stack, groups))
    results.busy_before = busy_before
    say(render(results, time.perf_counter() - started))
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
