"""Event-store append throughput, Kinetic beside raw asyncpg.

Measures events committed per second through ``EventStore.append`` (SQLAlchemy Core over
asyncpg, a ``Database`` connection pool, one transaction per call) at 1 and 10 events per
transaction, with 1 and 16 concurrent writers. Each writer appends to its own streams with
``Exactly(version)``, so no writer ever conflicts with another. Raw and Kinetic runs
alternate, each on emptied tables, and each side's runs are added up.

Baseline: raw asyncpg, one dedicated connection per writer, running the same SQL shape per
transaction: BEGIN, one multi-row ``INSERT INTO events ... RETURNING``, the outbox rows for
the events' public copies (one ``INSERT INTO outbox``, sent with ``executemany`` for more
than one row, as SQLAlchemy sends them), COMMIT. The raw writer builds the same CloudEvents
JSON by hand with ``json``. The Kinetic side includes all that ``Database`` adds per
transaction, such as its pool's liveness check when a connection is checked out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from kinetic_infra.db.database import Database
from kinetic_infra.event_store.model import Exactly
from kinetic_infra.event_store.store import EventStore
from tests.bench.stack import BenchStack
from tests.bench.workload import (
    CONTEXT,
    EVENT_TYPE,
    SUBJECT,
    TENANT_ID,
    StreamCursor,
    episode_opened,
    new_event_id,
    raw_envelope,
    raw_episode_data,
)

WARMUP_TRANSACTIONS = 5  # per writer, before the clock starts (connections, prepared plans)


@dataclass(frozen=True)
class AppendCase:
    events_per_tx: int
    writers: int

    @property
    def label(self) -> str:
        return (f"{self.events_per_tx} event{'s' if self.events_per_tx > 1 else ''}/tx, "
                f"{self.writers} writer{'s' if self.writers > 1 else ''}")


@dataclass(frozen=True)
class Throughput:
    items: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def combined(cls, parts: Sequence[Throughput]) -> Throughput:
        return cls(sum(p.items for p in parts), sum(p.seconds for p in parts))


class Writer(Protocol):
    async def transaction(self) -> int:
        """Commit one transaction; return how many events it appended."""
        ...


class KineticWriter:
    def __init__(self, db: Database, store: EventStore, events_per_tx: int) -> None:
        self.db, self.store, self.n = db, store, events_per_tx
        self.cursor = StreamCursor()

    async def transaction(self) -> int:
        cursor = self.cursor
        batch = [episode_opened(cursor.episode_id) for _ in range(self.n)]
        async with self.db.transaction() as conn:
            await self.store.append(conn, cursor.stream, batch,
                                    expected=Exactly(cursor.version), context=CONTEXT)
        cursor.advance(self.n)
        return self.n


EVENT_COLUMNS = "event_id, stream_name, version, type, data, metadata, tenant_id"
OUTBOX_SQL = ("INSERT INTO outbox (event_id, stream_name, subject, payload, traceparent) "
              "VALUES ($1, $2, $3, $4, $5)")


def events_sql(rows: int) -> str:
    width = len(EVENT_COLUMNS.split(", "))
    values = ", ".join(
        "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")" for r in range(rows)
    )
    return (f"INSERT INTO events ({EVENT_COLUMNS}) VALUES {values} "
            "RETURNING global_position, recorded_at")


class RawWriter:
    def __init__(self, conn: asyncpg.Connection, events_per_tx: int) -> None:
        self.conn, self.n = conn, events_per_tx
        self.sql = events_sql(events_per_tx)
        self.cursor = StreamCursor()

    async def transaction(self) -> int:
        cursor = self.cursor
        stream = str(cursor.stream)
        ids = [new_event_id() for _ in range(self.n)]
        datas = [raw_episode_data(cursor.episode_id) for _ in range(self.n)]
        params: list[object] = []
        for i, (event_id, data) in enumerate(zip(ids, datas, strict=True)):
            params += [event_id, stream, cursor.version + i + 1, EVENT_TYPE, json.dumps(data),
                       "{}", TENANT_ID]
        async with self.conn.transaction():
            stored = await self.conn.fetch(self.sql, *params)
            outbox_rows = [
                (event_id, stream, SUBJECT,
                 raw_envelope(event_id, cursor.episode_id, cursor.version + i + 1,
                              row["recorded_at"], data), None)
                for i, (event_id, data, row) in enumerate(zip(ids, datas, stored, strict=True))
            ]
            if len(outbox_rows) == 1:  # SQLAlchemy, too, sends one row as a plain execute
                await self.conn.execute(OUTBOX_SQL, *outbox_rows[0])
            else:
                await self.conn.executemany(OUTBOX_SQL, outbox_rows)
        cursor.advance(self.n)
        return self.n


async def drive(writers: Sequence[Writer], *, duration: float | None = None,
                transactions: int | None = None, warmup: int = WARMUP_TRANSACTIONS
                ) -> Throughput:
    """Run every writer concurrently until ``duration`` seconds have passed or
    ``transactions`` transactions were started; one that started in time is counted."""
    if warmup:
        await asyncio.gather(*(_repeat(w, warmup) for w in writers))
    remaining = [transactions if transactions is not None else -1]
    start = time.perf_counter()
    deadline = start + duration if duration is not None else float("inf")

    async def loop(writer: Writer) -> int:
        done = 0
        while time.perf_counter() < deadline and remaining[0] != 0:
            if remaining[0] > 0:
                remaining[0] -= 1
            done += await writer.transaction()
        return done

    counts = await asyncio.gather(*(loop(w) for w in writers))
    return Throughput(sum(counts), time.perf_counter() - start)


async def _repeat(writer: Writer, times: int) -> None:
    for _ in range(times):
        await writer.transaction()


async def kinetic_appends(url: str, case: AppendCase, *, duration: float | None = None,
                          transactions: int | None = None, warmup: int = WARMUP_TRANSACTIONS
                          ) -> Throughput:
    db = Database(url, pool_size=case.writers, max_overflow=0)
    try:
        store = EventStore("booking")
        writers = [KineticWriter(db, store, case.events_per_tx) for _ in range(case.writers)]
        return await drive(writers, duration=duration, transactions=transactions, warmup=warmup)
    finally:
        await db.dispose()


async def raw_appends(url: str, case: AppendCase, *, duration: float) -> Throughput:
    conns: list[asyncpg.Connection] = []
    try:
        for _ in range(case.writers):
            conns.append(await asyncpg.connect(url))
        writers = [RawWriter(c, case.events_per_tx) for c in conns]
        return await drive(writers, duration=duration)
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


async def measure_appends(stack: BenchStack, case: AppendCase, *, seconds: float,
                          rounds: int) -> tuple[Throughput, Throughput]:
    """Kinetic and raw throughput for one case: raw and Kinetic runs alternate, each on
    emptied tables, so a drift in the machine's speed reaches both sides alike."""
    kinetic: list[Throughput] = []
    raw: list[Throughput] = []
    for _ in range(rounds):
        await stack.reset_tables()
        raw.append(await raw_appends(stack.producer_url, case, duration=seconds))
        await stack.reset_tables()
        kinetic.append(await kinetic_appends(stack.producer_url, case, duration=seconds))
    return Throughput.combined(kinetic), Throughput.combined(raw)
