"""Webhook delivery: the partners service's dispatcher process.

Each pending delivery is POSTed to the partner's webhook, signed per the Standard Webhooks
specification (headers ``webhook-id`` = the original event id, ``webhook-timestamp``,
``webhook-signature`` = ``v1,<base64 HMAC-SHA256>``; the ``standardwebhooks`` library signs
and partners verify with the same library or ``kinetic_contracts.webhooks``). A 2xx answer
delivers it; anything else (a refused connection, a timeout, a 500) tries again after an
exponential backoff with jitter, capped at an hour, for about a day; then the delivery is a
dead letter, which replay sends again. After a secret rotation both secrets sign until the
overlap ends.

Order: a partner's deliveries of one lane (a patient's events; an episode's without a
patient; the organization's others) go out one at a time, oldest first — a later event never
overtakes an earlier one of its lane that is still being retried, so a patient's episode
arrives in order. Different lanes go out side by side (up to ``IN_FLIGHT`` at once), so one
partner's throughput is not one round trip at a time. Every step is a database update, so
delivery state survives a restart, and several dispatchers share the work (row locks,
``SKIP LOCKED``).

``dispatch_queue`` holds only ids, the organization and when each is due: the dispatcher
must find due work across organizations before it acts as one of them; everything it sends
is read under that organization's row-level security.

Withdrawal: when a patient withdraws data sharing with a partner, the feed takes the queue
rows of the partner's unsent deliveries of the patient (all but the instruction to erase)
and marks them ``withdrawn`` (feed._drop_unsent), in the withdrawal's transaction: what is
not sent by then is never sent, and the patient's lane goes on with the instruction to
erase. It takes a queue row before its delivery, as ``_try`` does, so one being sent at that
moment is waited for (and keeps the status its answer gave), never deadlocked on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, text
from standardwebhooks import Webhook

from kinetic_infra.backoff import Backoff, sleep_or_stop
from kinetic_infra.db.database import Database
from kinetic_infra.service.definition import Runtime
from partners.adapters.feed import deliveries, partners, queue

log = logging.getLogger(__name__)

FIRST_RETRY = 1.0  # seconds
MAX_RETRY = 3600.0
MAX_ATTEMPTS = 30  # 1 s, 2 s, 4 s … capped at an hour: about a day in all
TIMEOUT = 10.0
IDLE = 0.3
FAILURE_PAUSE = 0.5  # seconds after a failed round, doubling while failures repeat …
MAX_FAILURE_PAUSE = 30.0  # … up to this

# Deliveries tried at once, across lanes and partners: within the database pool's steady
# connections (10), since a connection opened beyond them is closed again after each use.
IN_FLIGHT = 8

# The oldest delivery of every lane; a lane whose head is not due yet waits as a whole.
HEADS_SQL = text("""
    SELECT * FROM (SELECT DISTINCT ON (partner_id, lane) delivery_id, org, partner_id, due_at
                     FROM dispatch_queue ORDER BY partner_id, lane, delivery_id) heads
     WHERE due_at <= now() ORDER BY due_at LIMIT :limit""")


def backoff(attempts: int) -> float:
    """Seconds before the next try: doubling from a second, capped at an hour, with up to a
    fifth of jitter so partners recovering together are not hit at once."""
    delay = min(MAX_RETRY, FIRST_RETRY * 2 ** max(0, attempts - 1))
    return delay * (1 + random.random() / 5)


def signed_headers(secrets: Sequence[str], event_id: str, at: datetime, body: str
                   ) -> dict[str, str]:
    """One signature per secret in force, space-separated (the Standard Webhooks way to
    rotate: a receiver that knows either secret verifies)."""
    return {"webhook-id": event_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": " ".join(Webhook(s).sign(event_id, at, body) for s in secrets),
            "content-type": "application/cloudevents+json"}


def secrets_in_force(row: Mapping[str, Any], at: datetime) -> list[str]:
    previous, until = row["previous_secret"], row["previous_until"]
    return [row["secret"], *([previous] if previous and until and until > at else [])]


async def dispatch_once(db: Database, client: httpx.AsyncClient) -> int:
    """Try the head of every due lane once (up to ``IN_FLIGHT``); returns how many."""
    async with db.read() as conn:
        heads = list((await conn.execute(HEADS_SQL, {"limit": IN_FLIGHT})).mappings())
    tried = await asyncio.gather(*(_try(db, client, dict(h)) for h in heads),
                                 return_exceptions=True)
    for head, outcome in zip(heads, tried, strict=True):
        if isinstance(outcome, asyncio.CancelledError):
            raise outcome
        if isinstance(outcome, BaseException):
            # One delivery that cannot be tried (its partner's secret unreadable, the
            # database gone mid-way) must not keep the other lanes from going out.
            log.error("delivery %s could not be tried: %r", head["delivery_id"], outcome,
                      exc_info=outcome)
    return sum(t for t in tried if isinstance(t, int))


async def _try(db: Database, client: httpx.AsyncClient, head: dict[str, Any]) -> int:
    async with db.transaction(head["org"]) as conn:
        locked = await conn.scalar(
            select(queue.c.delivery_id).where(queue.c.delivery_id == head["delivery_id"])
            .with_for_update(skip_locked=True))
        if locked is None:
            return 0  # another dispatcher has it
        row = (await conn.execute(
            select(deliveries, partners.c.webhook_url, partners.c.secret,
                   partners.c.previous_secret, partners.c.previous_until)
            .join(partners, partners.c.partner_id == deliveries.c.partner_id)
            .where(deliveries.c.delivery_id == head["delivery_id"]))).mappings().one()
        body = json.dumps(row["envelope"], separators=(",", ":"))
        at = datetime.now(UTC)
        status, error = None, None
        try:
            response = await client.post(row["webhook_url"], content=body, timeout=TIMEOUT,
                                         headers=signed_headers(
                                             secrets_in_force(row, at), str(row["event_id"]),
                                             at, body))
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = row["attempts"] + 1
        done = status is not None and 200 <= status < 300
        dead = not done and attempts >= MAX_ATTEMPTS
        await conn.execute(deliveries.update().where(
            deliveries.c.delivery_id == row["delivery_id"]).values(
            attempts=attempts, last_status=status, last_error=error,
            status="delivered" if done else "dead" if dead else "retrying",
            delivered_at=datetime.now(UTC) if done else None))
        if done or dead:
            await conn.execute(queue.delete().where(queue.c.delivery_id == row["delivery_id"]))
        else:
            await conn.execute(queue.update().where(
                queue.c.delivery_id == row["delivery_id"]).values(
                due_at=at + timedelta(seconds=backoff(attempts))))
        return 1


async def run(runtime: Runtime, stop: asyncio.Event) -> None:
    # Keep-alive for every delivery in flight: a pool that keeps fewer closes and reopens
    # connections to the same receivers all the time.
    limits = httpx.Limits(max_connections=4 * IN_FLIGHT, max_keepalive_connections=4 * IN_FLIGHT)
    backoff = Backoff(FAILURE_PAUSE, MAX_FAILURE_PAUSE)
    async with httpx.AsyncClient(limits=limits) as client:
        while not stop.is_set():
            try:
                tried = await dispatch_once(runtime.db, client)
            except Exception:  # noqa: BLE001 - a dispatcher that stopped would deliver nothing
                # PostgreSQL away, say: every delivery waits in the queue, so nothing is lost.
                pause = backoff.next()
                log.exception("webhook dispatcher: a round failed; going on in %.1f s", pause)
                await sleep_or_stop(stop, pause)
                continue
            backoff.reset()
            if not tried:
                await sleep_or_stop(stop, IDLE)
