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

Once running, the relay retries NATS and PostgreSQL failures rather than ending, because
the rows wait in the outbox meanwhile:
- A batch JetStream did not fully ack is published again, under the same ids, after a
  backoff (``retry_backoff_min`` doubling to ``retry_backoff_max``, reset by a clean pass).
  The whole publishing phase, not just the wait for acks, runs under ``publish_timeout``:
  ``publish_async`` itself can block, on its ``publish_async_max_pending`` semaphore. nats-py
  takes a slot before writing the message and never gives it back if the write raises (as it
  does while the client reconnects with a full buffer), so every failed batch would leak a
  slot until the relay hung. Each retry therefore starts from a fresh JetStream context (a
  fresh semaphore) and declares the stream again, in case it was lost.
- A lost working connection to PostgreSQL is reopened, with the same backoff.

One relay per service is active at a time: it holds a PostgreSQL advisory lock on its own
connection (a leader lease that the server releases when that connection dies, so a crashed
leader never stalls its peers). Standby relays wait for the lock. The lease is only as good
as that connection, which otherwise sits idle and can be closed under the leader
(``idle_session_timeout``, a connection reaper, a NAT timeout) while the leader goes on
publishing next to its successor. So every ``leader_check_interval`` the leader runs
``SELECT 1`` on it: success proves the session, and with it the lock, is still there, and
keeps the connection from looking idle. On failure the relay steps down and, after
``leader_poll``, competes for the lock again. Between the loss and the next check both relays may publish the same rows;
they go out under the same ids, and JetStream drops the repeats.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import nats
from nats.js import JetStreamContext

from kinetic_infra.backoff import Backoff, sleep_or_stop
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

# What a failing PostgreSQL connection raises: server errors (an admin shutdown, a
# terminated backend), a connection asyncpg already knows is gone, a query sent between a
# dying session's FATAL message and the socket closing (InternalClientError), and socket
# errors, timeouts included, while reconnecting.
DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                   OSError)


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
    retry_backoff_min: float = 0.5
    retry_backoff_max: float = 10.0
    leader_check_interval: float = 2.0
    leader_check_timeout: float = 5.0
    leader_poll: float = 1.0  # how often a standby tries for the lock


class PublishFailed(Exception):
    """JetStream did not ack a whole batch in time, or the stream could not be declared."""


def leader_lock_key(service: str) -> int:
    return zlib.crc32(f"kinetic-outbox-relay:{service}".encode())


class OutboxRelay:
    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.published = 0
        self.is_leader = False
        self._dsn = asyncpg_dsn(settings.database_url)
        self._conn: asyncpg.Connection | None = None
        self._lock_conn: asyncpg.Connection | None = None
        self._nc: nats.NATS | None = None
        self._js: JetStreamContext | None = None

    async def connect(self) -> None:
        self._nc = await nats.connect(nats_servers(self.settings.nats_url),
                                      max_reconnect_attempts=-1)
        self._js = self._new_jetstream()
        await ensure_stream(self._js, service_stream(self.settings.service,
                                                     self.settings.stream_replicas))
        self._lock_conn = await asyncpg.connect(self._dsn)
        self._conn = await asyncpg.connect(self._dsn)

    async def acquire_leadership(self, stop: asyncio.Event) -> bool:
        """Wait for the leader lock; False if ``stop`` was set first."""
        key = leader_lock_key(self.settings.service)
        backoff = Backoff(self.settings.retry_backoff_min, self.settings.retry_backoff_max)
        while not stop.is_set():
            try:
                if self._lock_conn is None:
                    self._lock_conn = await asyncpg.connect(self._dsn)
                if await self._lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    return True
                backoff.reset()
                delay = self.settings.leader_poll
            except DATABASE_ERRORS as exc:
                delay = backoff.next()
                log.warning("outbox relay for %s: lock connection failed (%r); reconnecting "
                            "in %.1f s", self.settings.service, exc, delay)
                _discard(self._lock_conn)
                self._lock_conn = None
            await sleep_or_stop(stop, delay)
        return False

    async def still_leader(self) -> bool:
        """Whether the session holding the lock, and so the lock, is still there. If not,
        the connection is dropped, so that the next ``acquire_leadership`` opens a new one."""
        try:
            assert self._lock_conn is not None
            await self._lock_conn.fetchval("SELECT 1",
                                           timeout=self.settings.leader_check_timeout)
            return True
        except DATABASE_ERRORS as exc:
            log.warning("outbox relay for %s: the leader lock's connection failed (%r); "
                        "stepping down", self.settings.service, exc)
            # Closing our end also ends a session that is merely slow, so the server frees
            # the lock instead of keeping it for a relay that no longer publishes.
            _discard(self._lock_conn)
            self._lock_conn = None
            return False

    async def relay_once(self) -> int:
        """Publish one batch of eligible rows; return how many were published. Raises
        ``PublishFailed`` if JetStream did not ack them all (the rows stay in the outbox)."""
        assert self._conn is not None
        rows = await self._conn.fetch(ELIGIBLE_SQL, self.settings.batch_size)
        if not rows:
            return 0
        try:
            await asyncio.wait_for(self._publish(rows), self.settings.publish_timeout)
        except (nats.errors.Error, TimeoutError) as exc:
            raise PublishFailed(repr(exc)) from exc
        await self._conn.execute(DELETE_SQL, [r["position"] for r in rows])
        self.published += len(rows)
        now = datetime.now(UTC)
        attributes = {"service": self.settings.service}
        relay_published.add(len(rows), attributes)
        for row in rows:
            relay_lag.record((now - row["created_at"]).total_seconds(), attributes)
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]) -> None:
        assert self._js is not None
        js = self._js
        futures: list[asyncio.Future[Any]] = []
        spans = []
        try:
            for row in rows:
                headers = {"Nats-Msg-Id": str(row["event_id"]),
                           "Content-Type": "application/cloudevents+json"}
                if row["traceparent"]:
                    headers["traceparent"] = row["traceparent"]
                    spans.append(tracer.start_span("outbox.publish", context=context_from(
                        row["traceparent"]), attributes={"messaging.destination": row["subject"]}))
                futures.append(await js.publish_async(row["subject"], row["payload"],
                                                      headers=headers))
            await asyncio.gather(*futures)
        except BaseException as exc:
            for future in futures:
                if not future.cancel() and not future.cancelled():
                    future.exception()  # retrieved: no "exception was never retrieved"
            for span in spans:
                span.record_exception(exc)
            raise
        finally:
            for span in spans:
                span.end()

    async def has_pending(self) -> bool:
        assert self._conn is not None
        return bool(await self._conn.fetchval(PENDING_SQL))

    async def run(self, stop: asyncio.Event) -> None:
        await self.connect()
        try:
            while await self.acquire_leadership(stop):
                log.info("outbox relay for %s is the leader", self.settings.service)
                self.is_leader = True
                try:
                    await self.lead(stop)
                finally:
                    self.is_leader = False
                # Leadership lost: a standby, whose connection did not just fail, goes first.
                await sleep_or_stop(stop, self.settings.leader_poll)
        finally:
            await self.close()

    async def lead(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set or the leader lock is lost."""
        loop = asyncio.get_running_loop()
        backoff = Backoff(self.settings.retry_backoff_min, self.settings.retry_backoff_max)
        poll = self.settings.min_poll
        check_lock_at = loop.time() + self.settings.leader_check_interval
        renew_jetstream = False
        while not stop.is_set():
            # On the clock rather than per batch: the hot path stays one query per batch.
            if loop.time() >= check_lock_at:
                if not await self.still_leader():
                    return
                check_lock_at = loop.time() + self.settings.leader_check_interval
            try:
                if self._conn is None:
                    self._conn = await asyncpg.connect(self._dsn)
                if renew_jetstream:
                    await self._renew_jetstream()
                    renew_jetstream = False
                published = await self.relay_once()
                # Rows held behind an open transaction: look again soon. Idle: back off.
                pending = bool(published) or await self.has_pending()
            except PublishFailed as exc:
                # NATS went away mid-batch (a cluster node died, the leader moved, the client
                # is reconnecting): the same batch goes out again, under the same ids.
                renew_jetstream = True
                delay = backoff.next()
                log.warning("outbox relay for %s: publish failed (%s); retrying in %.1f s",
                            self.settings.service, exc, delay)
                await sleep_or_stop(stop, delay)
                continue
            except DATABASE_ERRORS as exc:
                delay = backoff.next()
                log.warning("outbox relay for %s: database connection failed (%r); "
                            "reconnecting in %.1f s", self.settings.service, exc, delay)
                _discard(self._conn)
                self._conn = None
                await sleep_or_stop(stop, delay)
                continue
            backoff.reset()
            if published:
                poll = self.settings.min_poll
                continue
            poll = self.settings.min_poll if pending else min(poll * 2, self.settings.max_poll)
            await sleep_or_stop(stop, poll)

    def _new_jetstream(self) -> JetStreamContext:
        assert self._nc is not None
        return self._nc.jetstream(publish_async_max_pending=self.settings.batch_size * 2)

    async def _renew_jetstream(self) -> None:
        """Replace the JetStream context (and with it the slots a failed batch may have
        leaked) and declare the stream again."""
        old, self._js = self._js, self._new_jetstream()
        if old is not None:
            await self._retire(old)
        try:
            await asyncio.wait_for(
                ensure_stream(self._js, service_stream(self.settings.service,
                                                       self.settings.stream_replicas)),
                self.settings.publish_timeout)
        except (nats.errors.Error, TimeoutError) as exc:
            raise PublishFailed(f"declaring the stream: {exc!r}") from exc

    async def _retire(self, js: JetStreamContext) -> None:
        # Each context subscribes to its own ack inbox; left behind, a long outage would
        # accumulate one subscription (and its task) per retry. nats-py has no public way to
        # reach it, hence the private attributes; if they change, this only stops tidying.
        assert self._nc is not None
        prefix = getattr(js, "_async_reply_prefix", None)
        if not prefix:
            return
        subject = bytes(prefix).decode() + "*"
        for sub in list(getattr(self._nc, "_subs", {}).values()):
            if getattr(sub, "subject", None) == subject:
                try:
                    await sub.unsubscribe()
                except nats.errors.Error:
                    pass

    async def close(self) -> None:
        for conn in (self._conn, self._lock_conn):
            if conn is not None and not conn.is_closed():
                try:
                    await conn.close(timeout=5)
                except DATABASE_ERRORS:
                    conn.terminate()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.drain()


def _discard(conn: asyncpg.Connection | None) -> None:
    # terminate(), not close(): a broken connection may never answer a polite goodbye.
    if conn is not None and not conn.is_closed():
        conn.terminate()
