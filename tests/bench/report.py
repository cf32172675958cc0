"""The closing table: every measurement beside its baseline, the ratio and the target.

Nothing is measured here. Targets: appends at least 70% of raw asyncpg, relay at least 80%
of raw nats-py publishing, commit-to-effect p99 under 50 ms at the requested rate (which the
writer must also have sustained, and every event must have arrived); booking over HTTP at
least 50% of the bare endpoint's requests per second (p99 under 50 ms at 32 clients, and
every request answered 201); the availability search's p99 under 50 ms; care episodes
through plan's workflow at least 50% of a bare one-activity Temporal workflow's rate (session
cycles per second over bare workflows per second), and no backlog under the operator load
(every log answered and its effect seen, the p99 latency and the tail after the last log
both within ``NO_BACKLOG_SECONDS``). A section whose scenarios did not run is left out.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field

from tests.bench.appends import AppendCase, Throughput
from tests.bench.booking import AvailabilityResult, BookingResult, Run
from tests.bench.latency import KineticLatency, LatencyStats
from tests.bench.partners import PartnersResult
from tests.bench.plan import NO_BACKLOG_SECONDS, PlanResult, Timed
from tests.bench.relay import RelayResult
from tests.bench.replicas import ReplicaResults

APPEND_TARGET = 0.70
RELAY_TARGET = 0.80
P99_TARGET = 0.050  # seconds
RATE_TOLERANCE = 0.95  # the writer must reach this share of the requested rate
BOOKING_TARGET = 0.50  # Kinetic's booking requests per second, of the bare endpoint's
BOOKING_P99_CLIENTS = 32  # the p99 target applies at this many clients
PLAN_TARGET = 0.50  # Kinetic's session cycles per second, of bare workflows per second
BUSY_WARNING = 0.15  # cores busier than this before the run: say so


@dataclass
class Results:
    append_seconds: float
    latency_rate: float
    latency_seconds: float
    low_rate: float
    low_rate_seconds: float
    appends: list[tuple[AppendCase, Throughput, Throughput]] = field(default_factory=list)
    relay: RelayResult | None = None
    kinetic_latency: KineticLatency | None = None
    kinetic_latency_low: KineticLatency | None = None
    raw_jetstream_latency: LatencyStats | None = None
    raw_core_latency: LatencyStats | None = None
    booking: list[BookingResult] = field(default_factory=list)
    availability: AvailabilityResult | None = None
    plan: PlanResult | None = None
    partners: PartnersResult | None = None
    replicas: ReplicaResults | None = None
    errors: list[str] = field(default_factory=list)
    busy_before: float | None = None  # how busy the cores were just before the run (0-1)


def _cores() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    total = os.cpu_count()
    if usable is not None and usable != total:
        return f"{usable} usable of {total}"
    return str(total)


def _verdict(ok: bool) -> str:
    return "meets" if ok else "below target"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [line(header), rule, *(line(r) for r in rows)]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds < 10 else f"{seconds * 1000:.0f}"


def throughput_rows(results: Results) -> list[list[str]]:
    rows = []
    for case, kinetic, raw in results.appends:
        ratio = kinetic.per_second / raw.per_second if raw.per_second else 0.0
        rows.append([f"Append, {case.label}", f"{kinetic.per_second:,.0f} ev/s",
                     f"{raw.per_second:,.0f} ev/s", f"{ratio:.0%}",
                     f">= {APPEND_TARGET:.0%}", _verdict(ratio >= APPEND_TARGET)])
    if results.relay is not None:
        r = results.relay
        ratio = r.kinetic.per_second / r.raw.per_second if r.raw.per_second else 0.0
        complete = r.kinetic_stored == r.kinetic.items and r.raw_stored == r.raw.items
        rows.append([f"Relay, {r.kinetic.items:,} outbox rows ({r.rounds} rounds)",
                     f"{r.kinetic.per_second:,.0f} msg/s", f"{r.raw.per_second:,.0f} msg/s",
                     f"{ratio:.0%}", f">= {RELAY_TARGET:.0%}",
                     _verdict(ratio >= RELAY_TARGET and complete)
                     + ("" if complete else " (messages missing)")])
    return rows


def _latency_row(label: str, stats: LatencyStats, requested: float, target: str,
                 verdict: str) -> list[str]:
    return [label, f"{stats.rate:,.0f} of {requested:,.0f}",
            f"{stats.received:,}/{stats.expected:,}", _ms(stats.p50), _ms(stats.p95),
            _ms(stats.p99), _ms(stats.max), target, verdict]


def _share_row(label: str, stats: LatencyStats) -> list[str]:
    return [label, "", "", _ms(stats.p50), _ms(stats.p95), _ms(stats.p99), _ms(stats.max),
            "", ""]


def _judge(stats: LatencyStats, requested: float) -> str:
    sustained = stats.rate >= RATE_TOLERANCE * requested
    complete = stats.received == stats.expected
    verdict = _verdict(stats.p99 < P99_TARGET and sustained and complete)
    if not sustained:
        verdict += " (rate not sustained)"
    elif not complete:
        verdict += " (events missing)"
    return verdict


def _latency_table(rows: list[list[str]]) -> list[str]:
    """The table of every latency path (built by ``_latency_row``)."""
    return _table(["Path", "Rate/s", "Received", "p50", "p95", "p99", "max", "Target",
                   "Result"], rows, right={1, 2, 3, 4, 5, 6})


def latency_rows(results: Results) -> list[list[str]]:
    rows = []
    rate, low = results.latency_rate, results.low_rate
    target = f"p99 < {P99_TARGET * 1000:.0f} ms"
    if (k := results.kinetic_latency) is not None:
        rows += [
            _latency_row("Kinetic: append commit -> effect commit", k.total, rate, target,
                         _judge(k.total, rate)),
            _share_row("  of which commit -> stored in JetStream", k.to_stream),
            _share_row("  of which stored -> effect commit", k.to_effect),
        ]
    if (r := results.raw_jetstream_latency) is not None:
        rows.append(_latency_row("Raw: JetStream publish -> pull consumer", r, rate,
                                 "baseline", ""))
    if (r := results.raw_core_latency) is not None:
        rows.append(_latency_row("Raw: core NATS publish -> subscriber", r, rate,
                                 "baseline", ""))
    if (k := results.kinetic_latency_low) is not None:
        rows += [
            _latency_row(f"Kinetic at {low:.0f}/s, {results.low_rate_seconds:.0f} s "
                         "(comparison)", k.total, low, "", ""),
            _share_row("  of which commit -> stored in JetStream", k.to_stream),
            _share_row("  of which stored -> effect commit", k.to_effect),
        ]
    return rows


def _errors(run: Run) -> str:
    return f"{run.error_count:,}" if not run.errors else \
        f"{run.error_count:,} ({', '.join(f'{k}: {v}' for k, v in run.errors.most_common(3))})"


def booking_rows(results: Results) -> list[list[str]]:
    rows = []
    for b in results.booking:
        k, r = b.kinetic.stats(), b.bare.stats()
        ratio = b.kinetic.per_second / b.bare.per_second if b.bare.per_second else 0.0
        target = f">= {BOOKING_TARGET:.0%}"
        misses = [] if ratio >= BOOKING_TARGET else ["req/s"]
        if b.clients == BOOKING_P99_CLIENTS:
            target += f", p99 < {P99_TARGET * 1000:.0f} ms"
            if not k.p99 < P99_TARGET:
                misses.append("p99")
        if b.kinetic.error_count:
            misses.append("errors")
        verdict = "meets" if not misses else f"below target ({', '.join(misses)})"
        rows.append([f"{b.clients}", f"{b.kinetic.per_second:,.0f}", _ms(k.p50), _ms(k.p99),
                     _errors(b.kinetic), f"{b.bare.per_second:,.0f}", _ms(r.p50), _ms(r.p99),
                     _errors(b.bare), f"{ratio:.0%}", target, verdict])
    return rows


def replica_rows(results: Results) -> list[list[str]]:
    """Per replica count: booking req/s and p99 beside the bare endpoint's at as many
    processes, the machine's CPU per booking, and commit -> effect latency."""
    r = results.replicas
    if r is None:
        return []
    rows = []
    for n in sorted(set(r.booking) | set(r.latency)):
        row = [f"{n}"]
        if (b := r.booking.get(n)) is not None:
            k = b.kinetic.stats()
            ratio = b.kinetic.per_second / b.bare.per_second if b.bare.per_second else 0.0
            row += [f"{b.kinetic.per_second:,.0f}", _ms(k.p99),
                    f"{b.kinetic.cpu_ms_per_request().machine:.2f}",
                    f"{b.bare.per_second:,.0f}", f"{ratio:.0%}"]
        else:
            row += [""] * 5
        if (lat := r.latency.get(n)) is not None:
            row += [f"{lat.total.rate:,.0f} of {r.rate:,.0f}", _ms(lat.total.p50),
                    _ms(lat.total.p99), f"{lat.total.received:,}/{lat.total.expected:,}"]
        else:
            row += [""] * 4
        rows.append(row)
    return rows


def replica_verdict(results: Results) -> list[str]:
    """Where the limit is: more processes on the same cores either bought throughput or only
    shared the cores (then the machine, not the design, is the limit)."""
    r = results.replicas
    if r is None or not {1, 3} <= set(r.booking):
        return []
    one, three = r.booking[1].kinetic, r.booking[3].kinetic
    gain = three.per_second / one.per_second if one.per_second else 0.0
    busy = [run.cpu.machine / (run.seconds * (os.cpu_count() or 1)) if run.seconds else 0.0
            for run in (one, three)]
    line = (f"3 replicas booked {gain:.2f}x the requests of 1; the machine's cores were "
            f"{busy[0]:.0%} and {busy[1]:.0%} busy during the runs.")
    if busy[1] >= 0.85:
        line += (" With 3 replicas the cores were saturated, so more processes on this machine "
                 "only share them: the machine, not the design, is the limit (the replicas "
                 "share nothing but PostgreSQL and the port; on more cores each adds its own).")
    return [line]


def _cpu_row(label: str, run: Run) -> list[str]:
    cpu = run.cpu_ms_per_request()
    wall = 1000 / run.per_second if run.per_second else 0.0
    return [label, f"{run.ok:,}", f"{cpu.server:.2f}", f"{cpu.postgres:.2f}",
            f"{cpu.generator:.2f}", f"{cpu.rest:.2f}", f"{wall:.2f}"]


def _http_runs(results: Results) -> list[tuple[str, Run]]:
    runs = []
    for b in results.booking:
        clients = f"{b.clients} client{'s' if b.clients > 1 else ''}"
        runs += [(f"Kinetic booking API, {clients}", b.kinetic),
                 (f"Bare endpoint, {clients}", b.bare)]
    if (a := results.availability) is not None:
        runs += [(f"Kinetic availability search, {a.clients} client", a.kinetic),
                 (f"Raw appointments query, {a.clients} client", a.raw)]
    return runs


def cpu_rows(results: Results) -> list[list[str]]:
    return [_cpu_row(label, run) for label, run in _http_runs(results)]


def disturbed(results: Results) -> list[str]:
    """The runs during which something else took a noticeable share of the machine."""
    cores = os.cpu_count() or 1
    return [f"{label} ({run.cpu.rest / (run.seconds * cores):.0%})"
            for label, run in _http_runs(results)
            if run.seconds and run.cpu.rest / (run.seconds * cores) > BUSY_WARNING]


def availability_rows(results: Results) -> list[list[str]]:
    a = results.availability
    if a is None:
        return []
    k, r = a.kinetic.stats(), a.raw.stats()
    ok = k.p99 < P99_TARGET and not a.kinetic.error_count
    verdict = _verdict(ok) + (" (errors)" if a.kinetic.error_count else "")
    return [
        [f"Kinetic: GET /availability ({a.slots:,} free slots)", f"{a.kinetic.ok:,}",
         _errors(a.kinetic), f"{a.kinetic.per_second:,.0f}", _ms(k.p50), _ms(k.p95),
         _ms(k.p99), _ms(k.max), f"p99 < {P99_TARGET * 1000:.0f} ms", verdict],
        [f"Raw: asyncpg query of the range ({a.rows:,} rows)", f"{a.raw.ok:,}",
         _errors(a.raw), f"{a.raw.per_second:,.0f}", _ms(r.p50), _ms(r.p95), _ms(r.p99),
         _ms(r.max), "baseline", ""],
    ]


def _missing(timed: Timed) -> str:
    missing = timed.expected - timed.done
    if not missing:
        return ""
    why = ", ".join(f"{k}: {v}" for k, v in timed.errors.most_common(2))
    return f" ({missing:,} missing{': ' + why if why else ''})"


def plan_rows(results: Results) -> list[list[str]]:
    p = results.plan
    if p is None or (p.kinetic is None and p.bare is None):
        return []
    k, bare = p.kinetic, p.bare
    kinetic = "not measured" if k is None else (
        f"{k.cycles.per_second:,.1f} cycles/s ({k.episodes.per_second:,.1f} episodes/s)")
    baseline = "not measured" if bare is None else f"{bare.per_second:,.1f} workflows/s"
    ratio = (k.cycles.per_second / bare.per_second
             if k is not None and bare is not None and bare.per_second else 0.0)
    verdict = ""
    if k is not None and bare is not None:
        complete = k.cycles.done == k.cycles.expected
        verdict = _verdict(ratio >= PLAN_TARGET and complete) + _missing(k.cycles)
    label = (f"Episodes through the workflow, {k.concurrency} at once, sessions 2-4"
             if k is not None else "Episodes through the workflow")
    return [[label, kinetic, baseline, f"{ratio:.0%}" if ratio else "",
             f">= {PLAN_TARGET:.0%}", verdict]]


def _plan_latency_row(label: str, timed: Timed) -> list[str]:
    stats = timed.stats()
    return [label, f"{timed.done:,}/{timed.expected:,}", _ms(stats.p50), _ms(stats.p95),
            _ms(stats.p99), _ms(stats.max)]


def plan_latency_rows(results: Results) -> list[list[str]]:
    p = results.plan
    if p is None:
        return []
    rows = []
    if (k := p.kinetic) is not None:
        rows += [
            _plan_latency_row("Kinetic: session 2-3 log -> stall evaluation done (history)",
                              k.evaluations),
            _plan_latency_row("Kinetic: session 4 log -> reassessment.due on JetStream",
                              k.stalls),
            _plan_latency_row("Kinetic: episode, first publish -> reassessment.due",
                              k.episodes),
        ]
    if (bare := p.bare) is not None:
        rows.append(_plan_latency_row("Bare: start -> signal -> activity -> completed", bare))
    return rows


def load_rows(results: Results) -> list[list[str]]:
    p = results.plan
    if p is None or (load := p.load) is None:
        return []
    stats = load.effects.stats()
    verdict = _verdict(load.no_backlog)
    if load.answered.done < load.logs:
        verdict += _missing(load.answered)
    elif load.effects.done < load.logs:
        verdict += _missing(load.effects)
    return [[f"{load.logs:,} session logs (session 4 each)",
             f"{load.sent_rate:,.1f} of {load.requested_rate:,.1f}",
             f"{load.answered.done:,}", f"{load.effects.done:,}",
             _ms(load.answered.stats().p99), _ms(stats.p50), _ms(stats.p99),
             _ms(load.max_lag), _ms(load.tail),
             f"p99, tail <= {NO_BACKLOG_SECONDS:.0f} s", verdict]]


def plan_lines(results: Results) -> list[str]:
    p = results.plan
    if p is None:
        return []
    lines: list[str] = []
    if rows := plan_rows(results):
        k = p.kinetic
        clients = k.concurrency if k is not None else ""
        lines += [
            "",
            "Care episodes through plan's EpisodeOfCareWorkflow (plan's api, relay, consumer and "
            "worker; each episode: session completed on JetStream -> listed -> logged over HTTP "
            "-> signal -> the workflow's stall evaluation; session 4 ends at reassessment.due) "
            f"beside a bare one-activity Temporal workflow ({clients} clients: start, signal, "
            f"one no-op activity, completion; {len(p.bare_runs)} runs, one before and one "
            "after). Kinetic/bare: session cycles per second over bare workflows per second "
            "(each one signal and one activity)",
        ]
        lines += _table(["Scenario", "Kinetic", "Bare baseline", "Kinetic/bare", "Target",
                         "Result"], rows, right={1, 2, 3})
        lines.append("  a bare workflow is also started and completed each time; a Kinetic "
                     "cycle signals a running one (the dev server's SQLite persistence "
                     "bounds both)")
    if rows := plan_latency_rows(results):
        lines += ["", "Their latencies (ms; log sent -> effect seen by the benchmark)"]
        lines += _table(["Path", "Done", "p50", "p95", "p99", "max"], rows,
                        right={1, 2, 3, 4, 5})
        notes = []
        if (k := p.kinetic) is not None:
            notes.append(f"stall evaluations the workflows ran for the {k.cycles.expected:,} "
                         f"timed logs: {k.activities:,} (one per log unless signals were batched)")
        if p.setup_seconds:
            notes.append(f"set-up: {p.setup_episodes:,} episodes evaluated, drafted, "
                         f"activated and their sessions completed in {p.setup_seconds:.0f} s "
                         f"({p.setup_episodes / p.setup_seconds:.1f}/s, not timed above)")
        lines += [f"  {n}" for n in notes]
    if rows := load_rows(results):
        load = p.load
        assert load is not None
        lines += [
            "",
            "Operator load: 10 locations x 8 therapists x 8 sessions a day = "
            f"{load.logs} logs, the issue's 10 minutes compressed to "
            f"{(load.logs - 1) / load.requested_rate:.0f} s, sent on schedule whatever the "
            "answers; each is session 4 of its own episode, its effect that episode's "
            "reassessment.due (ms; lag: effect - scheduled send; tail: last send -> last "
            "effect)",
        ]
        lines += _table(["Load", "Logs/s", "Answered", "Effects", "Answer p99", "p50", "p99",
                         "Max lag", "Tail", "Target", "Result"], rows,
                        right={1, 2, 3, 4, 5, 6, 7, 8})
    return lines


def partners_rows(results: Results) -> list[list[str]]:
    p = results.partners
    if p is None:
        return []
    kinetic = _latency_row("Kinetic: commit -> relay -> partners feed -> signed webhook, "
                           "verified", p.webhook, p.rate, "p99 at 200/s (measured)",
                           f"{p.delivered_per_second:,.0f} delivered/s, "
                           f"{p.rejected} rejected")
    over_nats = _latency_row("Kinetic: commit -> relay -> partners feed -> relay -> the "
                             "partner's NATS consumer", p.nats, p.rate, "p99 at 200/s (measured)",
                             f"{p.nats_per_second:,.0f} read/s")
    raw = _latency_row("Raw: publish -> JetStream -> pull consumer", p.raw, p.rate,
                       "baseline", "")
    return [kinetic, over_nats, raw]


def render(results: Results, elapsed: float) -> str:
    lines = [
        "",
        "Kinetic benchmark",
        f"machine: {_cores()} CPU cores, {platform.machine()}, Python "
        f"{platform.python_version()}; PostgreSQL fsync on, JetStream sync_interval always",
        f"run time: {elapsed:.0f} s" + (
            "" if results.busy_before is None else
            f"; CPU busy just before it: {results.busy_before:.0%}"
            + (" (other work on the machine: numbers may be low)"
               if results.busy_before > BUSY_WARNING else "")),
    ]
    if rows := throughput_rows(results):
        lines += [
            "",
            f"Throughput (appends: {results.append_seconds:.0f} s per side in alternating "
            "runs, after a warm-up; relay: drain pre-filled outbox rows, alternating sides)",
        ]
        lines += _table(["Scenario", "Kinetic", "Raw baseline", "Kinetic/raw", "Target",
                         "Result"], rows, right={1, 2, 3})
    if rows := latency_rows(results):
        lines += [
            "",
            f"Latency at {results.latency_rate:.0f} events/s for "
            f"{results.latency_seconds:.0f} s (milliseconds; rate: events/s the sender "
            "achieved of those requested)",
        ]
        lines += _latency_table(rows)
    if rows := partners_rows(results):
        p = results.partners
        assert p is not None
        lines += [
            "",
            f"Partners at {p.rate:.0f} events/s for {p.webhook.expected / p.rate:.0f} s "
            "(milliseconds; "
            "rate: events/s the writer achieved of those requested)",
        ]
        lines += _latency_table(rows)
    if rows := booking_rows(results):
        b = results.booking[0]
        lines += [
            "",
            "Booking over HTTP: POST /appointments, Kinetic's booking API (JWT, validation, "
            "schedule, event, outbox, projection, audit) beside a bare FastAPI + asyncpg "
            f"INSERT ({b.rounds} x {b.seconds:.0f} s per side, alternating, after a warm-up; "
            "req/s: answered 201 per second; p50/p99 in ms)",
        ]
        lines += _table(["Clients", "Kinetic req/s", "p50", "p99", "Errors", "Bare req/s",
                         "p50", "p99", "Errors", "Kinetic/bare", "Target", "Result"], rows,
                        right={0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
    if rows := availability_rows(results):
        a = results.availability
        assert a is not None
        lines += [
            "",
            f"Availability search: 4 weeks at a location with {a.therapists} therapists and "
            f"{a.booked:,} existing bookings ({a.clients} client, {a.rounds} x "
            f"{a.seconds:.0f} s per side, alternating; milliseconds)",
        ]
        lines += _table(["Path", "Requests", "Errors", "req/s", "p50", "p95", "p99", "max",
                         "Target", "Result"], rows, right={1, 2, 3, 4, 5, 6, 7})
    lines += plan_lines(results)
    if rows := replica_rows(results):
        r = results.replicas
        assert r is not None
        lines += [
            "",
            f"Replicas on this machine: booking at {r.clients} clients (n API processes "
            "sharing the port beside n bare endpoints sharing theirs), and commit -> effect "
            f"at {r.rate:.0f} events/s (n relays, one publishing under the lease, and n "
            "consumers sharing one durable consumer; milliseconds)",
        ]
        lines += _table(["Replicas", "Kinetic req/s", "p99", "CPU ms/req", "Bare req/s",
                         "Kinetic/bare", "Effect rate/s", "p50", "p99", "Received"], rows,
                        right={0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
        lines += replica_verdict(results)
    if rows := cpu_rows(results):
        lines += [
            "",
            "CPU per answered request, over the measured runs (ms; server: the API or bare "
            "process; load generator: this process; rest: the machine's other busy time, "
            "other processes included; wall: elapsed time per request)",
        ]
        lines += _table(["Run", "Requests", "Server", "PostgreSQL", "Load generator",
                         "Rest", "Wall"], rows, right={1, 2, 3, 4, 5, 6})
        if busy := disturbed(results):
            lines.append("Other work took a share of the machine during: " + "; ".join(busy)
                         + ". Those numbers are lower than the code's own; run again.")
    if results.errors:
        lines += ["", "Scenarios that failed:"] + [f"  {e}" for e in results.errors]
    return "\n".join(lines)
