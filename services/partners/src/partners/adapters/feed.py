"""The per-partner feed: every service's events, read through one durable consumer per
source service, become a delivery for each partner of the organization whose grant covers
the event — unless the patient withdrew data sharing with that partner (booking's consent
events, kept here). The delivery row is written in the inbox's transaction, keyed by
(partner, event id): a redelivered event is one delivery, and the original event id travels
with it so partners de-duplicate too.

Each delivery is also republished on the partner's own NATS subjects
(kinetic_contracts.partner_feed) through the service's outbox, in the same transaction, so
the NATS feed and the webhooks carry the same events; the message id is derived from the
partner and the event, and the payload keeps the event's own id.

What a delivery carries is the published CloudEvent: identifiers and codes only (the
contracts keep names, contact details and clinical free text out of every public event), so
the ``identifiers`` data class is what any partner receives today.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.booking.v1.events import PatientConsentRecorded
from kinetic_contracts.partner_feed import feed_subject
from kinetic_contracts.registry import EVENT_MODELS
from kinetic_infra.db.schema import outbox
from kinetic_infra.inbox.consumer import Subscription
from partners.adapters import fhir_store
from partners.domain.partner import Grant, withdrawn

SOURCES = ("booking", "assessment", "plan", "billing")

metadata = MetaData()

partners = Table(
    "partners", metadata,
    Column("partner_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("webhook_url", Text, nullable=False),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("data_classes", ARRAY(Text), nullable=False),
    Column("secret", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    # After a rotation the previous secret signs too, until then (receivers switch over).
    Column("previous_secret", Text),
    Column("previous_until", DateTime(timezone=True)),
    Column("fhir_key_sha256", Text),  # the EHR's key for /fhir/R4 (only its digest)
    Column("nats_key_sha256", Text),  # the key it connects to NATS with (only its digest)
)

consents = Table(
    "partner_consents", metadata,
    Column("patient_id", UUID(as_uuid=True), primary_key=True),
    Column("partner", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("delivery_id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("partner_id", UUID(as_uuid=True), nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("envelope", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("lane", Text, nullable=False),  # the order to keep: see delivery_lane
)

# Only ids, the organization and when each is due (no row-level security): the dispatcher
# finds due work across organizations here before it acts as one of them.
queue = Table(
    "dispatch_queue", metadata,
    Column("delivery_id", BigInteger, primary_key=True),
    Column("org", UUID(as_uuid=True), nullable=False),
    Column("partner_id", UUID(as_uuid=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("lane", Text, nullable=False),
)


def delivery_lane(event: CloudEvent) -> str:
    """Deliveries of one lane go out one at a time, in order; lanes go side by side. A
    patient's events share a lane, so each of their episodes arrives in order (the opening,
    the sessions, the plan, the invoices); an episode's events that name no patient share the
    episode's; events about neither (locations, therapists, price lists) share the
    organization's lane, so they keep their order too."""
    patient = event.data.get("patient_id")
    if patient:
        return f"patient:{patient}"
    return f"episode:{event.episodeid}" if event.episodeid is not None else ""


async def _consents_of(conn: AsyncConnection, patient_id: Any) -> dict[str, bool]:
    if patient_id is None:
        return {}
    rows = await conn.execute(select(consents.c.partner, consents.c.granted)
                              .where(consents.c.patient_id == patient_id))
    return {partner: granted for partner, granted in rows}


async def fan_out(conn: AsyncConnection, event: CloudEvent) -> int:
    """One delivery per partner the event may go to; returns how many."""
    rows = (await conn.execute(select(partners))).mappings().all()
    given = await _consents_of(conn, event.data.get("patient_id"))
    lane = delivery_lane(event)
    made = 0
    for p in rows:
        grant = Grant(event_types=p["event_types"], data_classes=p["data_classes"])
        if not grant.allows(event.type) or withdrawn(given, p["name"]):
            continue
        delivery_id = await conn.scalar(insert(deliveries).values(
            tenant_id=event.tenantid, partner_id=p["partner_id"], event_id=event.id,
            event_type=event.type, envelope=event.model_dump(mode="json"), status="pending",
            attempts=0, next_attempt_at=event.time, created_at=event.time, lane=lane,
        ).on_conflict_do_nothing(index_elements=["partner_id", "event_id"])
            .returning(deliveries.c.delivery_id))
        if delivery_id is not None:  # the first time: what follows happens once per event
            await enqueue(conn, delivery_id, event.tenantid, p["partner_id"], event.time, lane)
            await publish_to_feed(conn, p["partner_id"], event, lane)
            await fhir_store.apply(conn, p["partner_id"], event.tenantid,
                                   event.model_dump(mode="json"))
            made += 1
    return made


async def enqueue(conn: AsyncConnection, delivery_id: int, tenant_id: Any, partner_id: Any,
                  due_at: Any, lane: str) -> None:
    await conn.execute(insert(queue).values(
        delivery_id=delivery_id, org=tenant_id, partner_id=partner_id, due_at=due_at, lane=lane
    ).on_conflict_do_update(index_elements=["delivery_id"], set_={"due_at": due_at}))


async def publish_to_feed(conn: AsyncConnection, partner_id: Any, event: CloudEvent,
                          lane: str) -> None:
    """The event on the partner's NATS subjects, by the outbox relay (at least once, in the
    lane's order: the relay keeps the order of rows of one stream name)."""
    await conn.execute(insert(outbox).values(
        event_id=uuid5(NAMESPACE_URL, f"kinetic:feed:{partner_id}:{event.id}"),
        stream_name=f"feed:{partner_id}:{lane}",
        subject=feed_subject(event.tenantid, partner_id, event.type),
        payload=event.model_dump_json(exclude_none=True).encode()))


def subscriptions() -> list[Subscription]:
    subs = []
    for source in SOURCES:
        sub = Subscription(name=f"partners-feed-{source}", source_service=source)
        for event_type in EVENT_MODELS:
            if event_type.startswith(f"kinetic.{source}."):
                sub.on(event_type)(_handle)
        subs.append(sub)
    return subs


async def _handle(conn: AsyncConnection, event: CloudEvent) -> None:
    if event.type == PatientConsentRecorded.event_type:
        await _record_consent(conn, event)
    await fan_out(conn, event)


async def _record_consent(conn: AsyncConnection, event: CloudEvent) -> None:
    consent = PatientConsentRecorded.model_validate(event.data)
    if consent.consent != "data_sharing" or consent.partner is None:
        return
    if not consent.granted:
        named = (await conn.execute(select(partners.c.partner_id)
                                    .where(partners.c.name == consent.partner))).scalars().all()
        await fhir_store.forget_patient(conn, list(named), consent.patient_id)
    statement = insert(consents).values(
        patient_id=consent.patient_id, partner=consent.partner, tenant_id=event.tenantid,
        granted=consent.granted, recorded_at=consent.recorded_at)
    await conn.execute(statement.on_conflict_do_update(
        index_elements=["patient_id", "partner"],
        set_={"granted": statement.excluded.granted,
              "recorded_at": statement.excluded.recorded_at},
        where=consents.c.recorded_at <= statement.excluded.recorded_at))
