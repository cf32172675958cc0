"""Outbox relay: publishes committed outbox rows to JetStream, at least once, in stream order.

Why not tail ``position``: identity values are taken at INSERT time but become visible at
COMMIT, so under concurrent writers position 11 can commit before position 10. A relay that
remembers "everything up to 11 is done" skips 10 forever.

What we do instead, on every poll:
1. Take the oldest transaction still running anywhere in the cluster,
   ``pg_snapshot_xmin(pg_current_snapshot())``. A row whose ``tx_id`` is below it belongs
   to a transaction that has finished: it is committed and visible, or rolled back and
   gone. Nothing with a lower ``tx_id`` can appear later. Rows at or above it wait.
   A transaction held open therefore holds back later rows (the relay waits for it); a
   rolled-back one simply never shows up and stops holding anything back.
2. Within one stream, a later version can have a lower ``tx_id`` than an earlier one (a
   transaction that took its xid first can commit second). So a row is also held while an
   earlier row of the same stream is still held; order within a stream is preserved.
3. Publish the eligible rows in ``position`` order with ``Nats-Msg-Id`` = event id, wait for
   every JetStream ack (with ``sync_interval: always`` an ack means "on disk"), then delete
   them in one statement.

Durable progress is the outbox itself: a row exists until JetStream has acked it. A crash
(even kill -9) between the ack and the delete re-publishes those rows after restart;
JetStream's duplicate window drops them, and past it the consumers' inbox does. Nothing is
lost, nothing is skipped, and order within a stream is kept because the retry publishes the
same rows in the same order.

One relay per service is active at a time: it holds a PostgreSQL advisory lock on its own
connection (a leader lease that the server releases when that connection dies, so a crashed
leader never stalls its peers). Standby relays wait for the lock.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import nats
from nats.js import JetStreamContext

from kinetic_infra.broker.streams import ensure_stream, service_stream
from kinetic_infra.db.database import asyncpg_dsn
from kinetic_infra.settings import nats_servers
from kinetic_infra.telemetry import context_from, relay_lag, relay_published, tracer

log = logging.getLogger(__name__)

ELIGIBLE_SQL = """
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT o.position, o.event_id, o.subject, o.payload, o.traceparent, o.created_at
FROM outbox o, horizon h
WHERE o.tx_id < h.xmin
  AND NOT EXISTS (
      SELECT 1 FROM outbox p
      WHERE p.stream_name = o.stream_name AND p.position < o.position AND p.tx_id >= h.xmin
  )
ORDER BY o.position
LIMIT $1
"""

PENDING_SQL = "SELECT EXISTS (SELECT 1 FROM outbox)"
DELETE_SQL = "DELETE FROM outbox WHERE position = ANY($1::bigint[])"


@dataclass
class RelaySettings:
    service: str
    database_url: str
    nats_url: str
    batch_size: int = 500
    min_poll: float = 0.002
    max_poll: float = 0.25
    publish_timeout: float = 10.0
    stream_replicas: int = 1


RETRY_AFTER_NATS_ERROR = 0.5  # seconds


def leader_lock_key(service: str) -> int:
    return zlib.crc32(f"kinetic-outbox-relay:{service}".encode())


class OutboxRelay:
    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.published = 0
        self._conn: asyncpg.Connection | None = None
        self._lock_conn: asyncpg.Connection | None = None
        self._nc: nats.NATS | None = None
        self._js: JetStreamContext | None = None

    async def connect(self) -> None:
        dsn = asyncpg_dsn(self.settings.database_url)
        self._nc = await nats.connect(nats_servers(self.settings.nats_url),
                                      max_reconnect_attempts=-1)
        self._js = self._nc.jetstream(publish_async_max_pending=self.settings.batch_size * 2)
        await ensure_stream(self._js, service_stream(self.settings.service,
                                                     self.settings.stream_replicas))
        self._lock_conn = await asyncpg.connect(dsn)
        self._conn = await asyncpg.connect(dsn)

    async def acquire_leadership(self, stop: asyncio.Event) -> bool:
        assert self._lock_conn is not None
        key = leader_lock_key(self.settings.service)
        while not stop.is_set():
            if await self._lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                return True
            await _sleep_or_stop(stop, 1.0)
        return False

    async def relay_once(self) -> int:
        """Publish one batch of eligible rows; return how many were published."""
        assert self._conn is not None and self._js is not None
        rows = await self._conn.fetch(ELIGIBLE_SQL, self.settings.batch_size)
        if not rows:
            return 0
        futures, spans = [], []
        for row in rows:
            headers = {"Nats-Msg-Id": str(row["event_id"]),
                       "Content-Type": "application/cloudevents+json"}
            if row["traceparent"]:
                headers["traceparent"] = row["traceparent"]
                spans.append(tracer.start_span("outbox.publish", context=context_from(
                    row["traceparent"]), attributes={"messaging.destination": row["subject"]}))
            futures.append(await self._js.publish_async(row["subject"], row["payload"],
                                                        headers=headers))
        await asyncio.wait_for(asyncio.gather(*futures), self.settings.publish_timeout)
        for span in spans:
            span.end()
        await self._conn.execute(DELETE_SQL, [r["position"] for r in rows])
        self.published += len(rows)
        now = datetime.now(UTC)
        attributes = {"service": self.settings.service}
        relay_published.add(len(rows), attributes)
        for row in rows:
            relay_lag.record((now - row["created_at"]).total_seconds(), attributes)
        return len(rows)

    async def has_pending(self) -> bool:
        assert self._conn is not None
        return bool(await self._conn.fetchval(PENDING_SQL))

    async def run(self, stop: asyncio.Event) -> None:
        await self.connect()
        try:
            if not await self.acquire_leadership(stop):
                return
            log.info("outbox relay for %s is the leader", self.settings.service)
            poll = self.settings.min_poll
            while not stop.is_set():
                try:
                    published = await self.relay_once()
                except (nats.errors.Error, TimeoutError) as exc:
                    # NATS went away mid-batch (a cluster node died, the leader moved): the
                    # rows are still in the outbox, so the same batch goes out again, under
                    # the same ids, once the client is connected to another node.
                    log.warning("outbox relay for %s: publish failed (%r); retrying",
                                self.settings.service, exc)
                    await _sleep_or_stop(stop, RETRY_AFTER_NATS_ERROR)
                    continue
                if published:
                    poll = self.settings.min_poll
                    continue
                # Rows held behind an open transaction: look again soon. Idle: back off.
                if await self.has_pending():
                    poll = self.settings.min_poll
                else:
                    poll = min(poll * 2, self.settings.max_poll)
                await _sleep_or_stop(stop, poll)
        finally:
            await self.close()

    async def close(self) -> None:
        for conn in (self._conn, self._lock_conn):
            if conn is not None and not conn.is_closed():
                await conn.close()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.drain()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
