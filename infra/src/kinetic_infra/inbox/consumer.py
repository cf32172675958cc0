"""Exactly-once effects on top of at-least-once delivery.

For each delivered message, in ONE transaction: claim ``(consumer, message_id)`` in the
inbox, run the handler's effect, commit; only then ack. Messages fetched together are
applied in order in one transaction (one commit instead of one per message); if any of
them fails, that transaction rolls back and each is applied on its own. A redelivery (after a crash before
the ack, a relay re-publish, or a replay) finds the inbox row and changes nothing.

Failures:
- a ``DomainError`` from the handler is a business rejection: retrying cannot help. The
  rejection is recorded in the inbox (``result.rejected``) and the message is acked.
- ``RetryLater`` says the event needs one that has not been applied yet: replicas of a
  consumer read one stream side by side, so an event can overtake the one it builds on. It
  is redelivered like the failures below, but while the event is younger than the
  subscription's ``retry_later_patience`` (5 minutes) those deliveries do not count toward
  ``max_attempts``: the event it waits for may be with a replica that crashed before its
  ack, and comes back only after ``ack_wait`` (60 s), long after five quick retries. Past
  that it counts like any failure, so an event waiting for one that never comes is parked:
- anything else is treated as transient: the message is nacked with a growing delay and
  redelivered, up to ``max_attempts`` deliveries. Then it is recorded in ``dead_letters``,
  published to ``deadletter.<consumer>`` and acked, so one poison message never blocks the
  messages behind it. The admin page lists dead letters and replays them through this same
  path (so a replay applies at most once, too).
- PostgreSQL, NATS or Temporal out of reach (infrastructure_errors.py) is no fault of the
  message: it is nacked with the same growing delay for as long as that lasts, and such
  deliveries never count toward ``max_attempts``, so a database failover parks nothing.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.problems import DomainError
from kinetic_infra.commands import claim_many
from kinetic_infra.db.database import Database, set_tenant
from kinetic_infra.event_store.sql import driver_connection
from kinetic_infra.db.schema import dead_letters, inbox
from kinetic_infra.infrastructure_errors import is_transient_infrastructure_error
from kinetic_infra.telemetry import consumer_lag, context_from, tracer
from kinetic_infra.telemetry import dead_letters as dead_letters_counter

log = logging.getLogger(__name__)

Handler = Callable[[AsyncConnection, CloudEvent], Awaitable[None]]


class RetryLater(Exception):
    """The event builds on another that this consumer has not applied yet (it is being
    applied by another replica, or is still on its way): redeliver it later."""


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # an event type this consumer does not react to
    REJECTED = "rejected"
    RETRY = "retry"
    DEAD_LETTERED = "dead_lettered"


@dataclass
class Subscription:
    """One durable JetStream consumer: ``name`` reads ``source_service``'s stream."""

    name: str
    source_service: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    max_attempts: int = 5
    # Seconds from the event's time during which RetryLater deliveries are not failures.
    retry_later_patience: float = 300.0

    def on(self, event_type: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.handlers[event_type] = fn
            return fn

        return register


def retry_delay(attempt: int) -> float:
    """Seconds before redelivery: 0.5, 1, 2, 4 … capped at 30."""
    return float(min(30.0, 0.5 * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class Delivery:
    """One delivery of a message: ``attempt`` counts deliveries, starting at 1."""

    message_id: str
    subject: str
    payload: bytes
    attempt: int


# Messages whose outage deliveries are remembered at most (max_ack_pending is 1000).
_OUTAGE_MEMORY = 10_000

DeadLetterPublisher = Callable[[str, bytes, dict[str, str]], Awaitable[None]]


class InboxConsumer:
    def __init__(self, db: Database, subscription: Subscription,
                 publish_dead_letter: DeadLetterPublisher | None = None) -> None:
        self.db = db
        self.subscription = subscription
        self.publish_dead_letter = publish_dead_letter
        # Deliveries of a message that met an outage or waited for an event not applied yet,
        # by message id: JetStream counts them in ``num_delivered``, but only the handler's
        # own failures may park a message. Kept in memory: after a restart they count again,
        # as they did before.
        self._uncounted: dict[str, int] = {}

    async def handle(self, *, message_id: str, subject: str, payload: bytes,
                     attempt: int) -> Outcome:
        return (await self.handle_batch([Delivery(message_id, subject, payload, attempt)]))[0]

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Apply deliveries in order. Several go in ONE transaction (one commit, one fsync,
        instead of one per message); if any of them fails, that transaction rolls back and
        each is applied on its own, so only the failing one is retried or parked."""
        if len(deliveries) > 1:
            try:
                outcomes = await self._apply(deliveries, [self._parse(d) for d in deliveries])
            except Exception:  # noqa: BLE001 - sorted out one by one below
                pass
            else:
                if self._uncounted:
                    for d in deliveries:
                        self._uncounted.pop(d.message_id, None)
                return outcomes
        return [await self._handle_alone(d) for d in deliveries]

    async def _apply(self, deliveries: Sequence[Delivery], events: Sequence[CloudEvent]
                     ) -> list[Outcome]:
        """Claim and apply ``deliveries`` (already parsed as ``events``) in one transaction."""
        handled = [self.subscription.handlers.get(e.type) for e in events]
        async with self.db.transaction() as conn:
            fresh = await claim_many(conn, self.subscription.name, [
                d.message_id for d, h in zip(deliveries, handled, strict=True) if h])
            outcomes = []
            tenant = None
            for d, event, handler in zip(deliveries, events, handled, strict=True):
                if handler is not None and event.tenantid != tenant:
                    # Row-level security follows each message's organization.
                    tenant = event.tenantid
                    await set_tenant(await driver_connection(conn), tenant)
                if handler is None:
                    outcomes.append(Outcome.IGNORED)
                elif d.message_id not in fresh:  # also a second copy within this batch
                    outcomes.append(Outcome.DUPLICATE)
                else:
                    fresh.discard(d.message_id)
                    await self._run(handler, conn, event)
                    outcomes.append(Outcome.APPLIED)
            return outcomes

    @staticmethod
    def _parse(delivery: Delivery) -> CloudEvent:
        return CloudEvent.model_validate_json(delivery.payload)

    async def _run(self, handler: Handler, conn: AsyncConnection, event: CloudEvent) -> None:
        """The effect, in a span that continues the event's trace."""
        attributes = {"messaging.consumer": self.subscription.name, "kinetic.event": event.type}
        with tracer.start_as_current_span(f"consume {event.type}",
                                          context=context_from(event.traceparent),
                                          kind=SpanKind.CONSUMER, attributes=attributes):
            await handler(conn, event)
        consumer_lag.record((datetime.now(UTC) - event.time).total_seconds(),
                            {"consumer": self.subscription.name})

    async def _handle_alone(self, d: Delivery) -> Outcome:
        try:
            outcome = await self._settle(d)
        except Exception as exc:
            if not is_transient_infrastructure_error(exc):
                raise
            # Also when recording a rejection or a dead letter failed: the message is
            # settled on a later delivery, once the platform is back.
            log.warning("consumer %s: infrastructure unavailable on %s (attempt %d), "
                        "retrying: %s", self.subscription.name, d.message_id, d.attempt,
                        type(exc).__name__)
            self._not_counted(d)
            return Outcome.RETRY
        if outcome is not Outcome.RETRY:
            self._uncounted.pop(d.message_id, None)
        return outcome

    def _not_counted(self, d: Delivery) -> None:
        if len(self._uncounted) >= _OUTAGE_MEMORY:
            self._uncounted.clear()  # messages other replicas settled
        self._uncounted[d.message_id] = self._uncounted.get(d.message_id, 0) + 1

    async def _settle(self, d: Delivery) -> Outcome:
        try:
            event = self._parse(d)
        except ValidationError as exc:
            # Not a Kinetic event: no retry can fix it.
            return await self._dead_letter(d.message_id, d.subject, d.payload,
                                           f"invalid envelope: {exc}", d.attempt)
        try:
            return (await self._apply([d], [event]))[0]
        except DomainError as exc:
            await self._record_rejection(d.message_id, exc)
            return Outcome.REJECTED
        except RetryLater as exc:
            waited = (datetime.now(UTC) - event.time).total_seconds()
            if waited < self.subscription.retry_later_patience:
                log.info("consumer %s: %s waits for an event not applied yet (%.0f s "
                         "old): %s", self.subscription.name, d.message_id, waited, exc)
                self._not_counted(d)
                return Outcome.RETRY
            return await self._failed(d, event, exc)
        except Exception as exc:  # noqa: BLE001 - any other failure is retried, then parked
            if is_transient_infrastructure_error(exc):
                raise  # not the message's fault: it must not count toward max_attempts
            return await self._failed(d, event, exc)

    async def _failed(self, d: Delivery, event: CloudEvent, exc: Exception) -> Outcome:
        """A failure of the message's own: retried, then parked at ``max_attempts``."""
        log.warning("consumer %s failed on %s (attempt %d): %s",
                    self.subscription.name, d.message_id, d.attempt, type(exc).__name__)
        failures = d.attempt - self._uncounted.get(d.message_id, 0)
        if failures >= self.subscription.max_attempts:
            return await self._dead_letter(d.message_id, d.subject, d.payload,
                                           f"{type(exc).__name__}: {exc}", d.attempt,
                                           event.tenantid)
        return Outcome.RETRY

    async def _record_rejection(self, message_id: str, exc: DomainError) -> None:
        async with self.db.transaction() as conn:  # the inbox is not tenant-scoped
            await conn.execute(
                pg_insert(inbox)
                .values(consumer=self.subscription.name, message_id=message_id,
                        result={"rejected": exc.type_slug, "detail": exc.detail})
                .on_conflict_do_nothing(index_elements=["consumer", "message_id"])
            )

    async def _dead_letter(self, message_id: str, subject: str, payload: bytes, error: str,
                           attempt: int, tenant_id: UUID | None = None) -> Outcome:
        # A message with no readable tenant is parked without one: only a platform
        # administrator (not any organization's operator) can see it.
        async with self.db.transaction(tenant_id) as conn:
            await conn.execute(
                pg_insert(dead_letters)
                .values(consumer=self.subscription.name, message_id=message_id, subject=subject,
                        payload=payload, error=error[:2000], attempts=attempt,
                        tenant_id=tenant_id)
                .on_conflict_do_nothing(constraint="dead_letters_consumer_message_key")
            )
        dead_letters_counter.add(1, {"consumer": self.subscription.name})
        if self.publish_dead_letter is not None:
            await self.publish_dead_letter(
                self.subscription.name, payload,
                {"Nats-Msg-Id": f"{self.subscription.name}:{message_id}",
                 "Kinetic-Original-Subject": subject, "Kinetic-Error": error[:500]},
            )
        return Outcome.DEAD_LETTERED

    async def replay(self, dead_letter_id: int, tenant_id: UUID | None = None) -> Outcome:
        """Run a parked message through the handler again (once: the inbox guards it).
        ``tenant_id`` limits it to that organization's dead letters (row-level security)."""
        async with self.db.read(tenant_id) as conn:
            row = (await conn.execute(
                select(dead_letters).where(dead_letters.c.id == dead_letter_id,
                                           dead_letters.c.consumer == self.subscription.name)
            )).mappings().one_or_none()
        if row is None:
            raise LookupError(dead_letter_id)
        delivery = Delivery(row["message_id"], row["subject"], row["payload"], row["attempts"] + 1)
        error: str | None = None
        try:
            outcome = (await self._apply([delivery], [self._parse(delivery)]))[0]
        except Exception as exc:  # noqa: BLE001 - the operator sees why it failed again
            error = f"{type(exc).__name__}: {exc}"
            outcome = Outcome.RETRY
        async with self.db.transaction(tenant_id) as conn:
            values: dict[str, Any] = {"replay_error": error}
            if error is None:
                values["replayed_at"] = datetime.now(UTC)
            await conn.execute(update(dead_letters).where(dead_letters.c.id == dead_letter_id)
                               .values(**values))
        return outcome
