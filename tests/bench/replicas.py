"""One replica beside three, on the same machine: booking throughput over HTTP and
commit-to-effect latency.

For each replica count n (1, then 3):
- booking: n booking API processes sharing one port (SO_REUSEPORT, as ``make run
  REPLICAS=3`` runs them), beside n bare endpoints sharing theirs, at the same number of
  clients (booking.py's ``measure_booking``: alternating runs, CPU per request);
- commit-to-effect: n outbox relays (one holds the lease and publishes, the others stand by
  to take over) and n consumers sharing one durable JetStream consumer, at a paced event
  rate (latency.py's ``measure_kinetic_latency``).

The report sets both counts side by side with the machine's CPU per request, which says
whether more processes bought throughput or only shared the same cores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tests.bench.booking import BookingBench, BookingResult, measure_booking
from tests.bench.latency import KineticLatency, measure_kinetic_latency
from tests.bench.stack import BenchStack

Step = Callable[[str, Callable[[], Awaitable[None]]], Awaitable[None]]


@dataclass
class ReplicaResults:
    booking: dict[int, BookingResult]
    latency: dict[int, KineticLatency]
    clients: int
    rate: float


async def measure_replica_booking(stack: BenchStack, counts: Sequence[int], clients: int,
                                  seconds: float, rounds: int, results: ReplicaResults,
                                  step: Step) -> None:
    for n in counts:
        bench = BookingBench(stack, replicas=n, label=f"_r{n}")

        async def booking(bench: BookingBench = bench, n: int = n) -> None:
            try:
                await asyncio.to_thread(bench.start_processes)
                await bench.create_data()
                results.booking[n] = await measure_booking(bench, clients, seconds, rounds)
            finally:
                bench.stop()

        await step(f"booking over HTTP, {n} API process{'es' if n > 1 else ''} and "
                   f"{n} bare, {clients} clients", booking)


async def measure_replica_latency(stack: BenchStack, counts: Sequence[int], seconds: float,
                                  results: ReplicaResults, step: Step) -> None:
    """Needs commit timestamps on (``BenchStack.enable_commit_timestamps``)."""
    for n in counts:
        async def latency(n: int = n) -> None:
            results.latency[n] = await measure_kinetic_latency(stack, results.rate, seconds,
                                                               replicas=n)

        await step(f"commit -> effect at {results.rate:.0f} events/s, {n} relay"
                   f"{'s' if n > 1 else ''} and {n} consumer{'s' if n > 1 else ''}", latency)
