"""``python -m tests.bench``: run every scenario on one embedded stack and print the table.

Order: event-store appends (appends.py), outbox relay throughput (relay.py), then
commit-to-effect latency with its two raw baselines (latency.py). Each measurement runs on
emptied tables and a re-created stream. A scenario that fails is reported and the others
still run; the exit status is non-zero only then, never because a target was missed.
Every server and child process is stopped on the way out, also on an error or a Ctrl-C.
"""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections.abc import Awaitable, Callable

from tests.bench.appends import AppendCase, measure_appends
from tests.bench.latency import measure_kinetic_latency, measure_raw_latency
from tests.bench.relay import measure_relay
from tests.bench.report import Results, render
from tests.bench.stack import BenchStack

APPEND_CASES = [AppendCase(1, 1), AppendCase(1, 16), AppendCase(10, 1), AppendCase(10, 16)]
APPEND_SECONDS = 2.0  # per run; each case runs raw, Kinetic, raw, Kinetic
APPEND_ROUNDS = 2
RELAY_ROWS, RELAY_ROUNDS = 10_000, 2  # outbox rows per round
LATENCY_RATE = 500.0
LATENCY_SECONDS = 10.0
LOW_RATE, LOW_RATE_SECONDS = 100.0, 5.0  # the Kinetic path unsaturated, for comparison


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


async def run_all(stack: BenchStack) -> Results:
    results = Results(APPEND_SECONDS * APPEND_ROUNDS, LATENCY_RATE,
                      LATENCY_SECONDS, LOW_RATE, LOW_RATE_SECONDS)
    await stack.create_schemas()

    for case in APPEND_CASES:
        async def appends(case: AppendCase = case) -> None:
            kinetic, raw = await measure_appends(stack, case, seconds=APPEND_SECONDS,
                                                 rounds=APPEND_ROUNDS)
            results.appends.append((case, kinetic, raw))

        await _scenario(results, f"appends, {case.label}", appends)

    async def relay() -> None:
        results.relay = await measure_relay(stack, RELAY_ROWS, RELAY_ROUNDS)

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

    await _scenario(results, f"relay, {RELAY_ROUNDS} x {RELAY_ROWS:,} outbox rows", relay)
    say("- restarting PostgreSQL with commit timestamps on (read by the latency scenario)")
    stack.enable_commit_timestamps()
    await _scenario(results, "latency, Kinetic (writer, relay, consumer)", kinetic_latency)
    await _scenario(results, f"latency, Kinetic at {LOW_RATE:.0f} events/s",
                    kinetic_low_rate_latency)
    await _scenario(results, "latency, raw JetStream", jetstream_latency)
    await _scenario(results, "latency, raw core NATS", core_latency)
    return results


def main() -> int:
    started = time.perf_counter()
    say("Kinetic benchmark: starting PostgreSQL and NATS in a temporary directory")
    with BenchStack() as stack:
        results = asyncio.run(run_all(stack))
    say(render(results, time.perf_counter() - started))
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
