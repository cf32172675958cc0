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

What a delivery carries is the published CloudEvent, for event types of identifiers and
codes that the grant names; the one such event with free text in it, an evaluation's goals,
carries that text only to a partner that may have clinical free text (as_granted), on the
webhook, the NATS feed and in its FHIR Goals alike, since all three are made from the copy. Contact details and clinical free text come from restricted
events no partner receives as they are: the feed keeps the latest of each (``disclosable``)
and delivers the partner's own disclosure (domain/disclosure.py) to a partner granted the
class whom the patient's data-sharing consent names, when the restricted event arrives,
when the consent is given later and when the partner the consent named is registered later;
a withdrawal delivers the instruction to erase. A patient's restricted events and consents
are handled one at a time (a transaction lock on the patient), so a consent and the notes it
covers, arriving at once from two streams, never miss each other; nor do they and a
partner's registration (an organization lock, shared by them, exclusive for it). Every other
event that names a patient takes the same lock shared (such events go side by side, but
never beside the patient's consent): a withdrawal handled at the same time as another
stream's event of the patient either comes first, and the event is not delivered, or after
it, and finds that event's delivery and FHIR resources to drop. A withdrawal drops the
partner's deliveries of the patient not sent yet (status ``withdrawn`` in the delivery log),
all but the instruction to erase.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from sqlalchemy import (
    ARRAY,
    func,
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
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.booking.v1.events import PatientConsentRecorded
from kinetic_contracts.partners.v1.events import DisclosureWithdrawn
from kinetic_contracts.partner_feed import feed_subject
from kinetic_contracts.registry import EVENT_MODELS
from kinetic_infra.db.schema import outbox
from kinetic_infra.inbox.consumer import Subscription
from partners.adapters import fhir_store
from partners.domain.disclosure import as_granted, disclosure, withdrawal
from partners.domain.partner import Grant, may_disclose, withdrawn

SOURCES = ("booking", "assessment", "plan", "billing")

metadata = MetaData()

partners = Table(
    "partners", metadata,
    Column("partner_id", PgUUID(as_uuid=True), primary_key=True),
    Column("tenant_id", PgUUID(as_uuid=True), nullable=False),
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
    Column("rotation_key", PgUUID(as_uuid=True)),  # the latest rotation's Idempotency-Key
)

consents = Table(
    "partner_consents", metadata,
    Column("patient_id", PgUUID(as_uuid=True), primary_key=True),
    Column("partner", Text, primary_key=True),
    Column("tenant_id", PgUUID(as_uuid=True), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

disclosable = Table(
    "disclosable", metadata,
    Column("data_class", Text, primary_key=True),
    Column("subject_id", PgUUID(as_uuid=True), primary_key=True),  # the patient or evaluation
    Column("tenant_id", PgUUID(as_uuid=True), nullable=False),
    Column("patient_id", PgUUID(as_uuid=True), nullable=False),
    Column("envelope", JSONB, nullable=False),  # the restricted event
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("delivery_id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", PgUUID(as_uuid=True), nullable=False),
    Column("partner_id", PgUUID(as_uuid=True), nullable=False),
    Column("event_id", PgUUID(as_uuid=True), nullable=False),
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
    Column("org", PgUUID(as_uuid=True), nullable=False),
    Column("partner_id", PgUUID(as_uuid=True), nullable=False),
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


def _grant(partner: Any) -> Grant:
    return Grant(event_types=partner["event_types"], data_classes=partner["data_classes"])


async def _partners(conn: AsyncConnection) -> list[Any]:
    return list((await conn.execute(select(partners))).mappings().all())


def as_partner_may_have_it(partner: Any, given: dict[str, bool], event: CloudEvent
                           ) -> CloudEvent:
    """The event as this partner may have it under its grant and the patient's consents
    (``given``): the free text only it may receive withheld otherwise (``as_granted``)."""
    return as_granted(event, may_disclose(_grant(partner), given, partner["name"],
                                          "clinical_free_text"))


async def as_partner_may_have_it_now(conn: AsyncConnection, partner: Any, event: CloudEvent
                                     ) -> CloudEvent:
    """As ``as_partner_may_have_it``, under the grant and consents in force now: what a
    replay sends, whatever the partner was sent then."""
    return as_partner_may_have_it(partner, await _consents_of(conn, event.data.get("patient_id")),
                                  event)


async def fan_out(conn: AsyncConnection, event: CloudEvent) -> int:
    """One delivery per partner the event may go to; returns how many. An event that names
    a patient is handled under the patient's lock (shared: beside the patient's other events,
    never beside a consent), so the consents read here stay in force until it commits."""
    patient_id = event.data.get("patient_id")
    if patient_id is not None:
        await _hold_patient(conn, event.tenantid, UUID(str(patient_id)), shared=True)
    given = await _consents_of(conn, patient_id)
    lane = delivery_lane(event)
    made = 0
    for p in await _partners(conn):
        if _grant(p).allows(event.type) and not withdrawn(given, p["name"]):
            made += await deliver(conn, p["partner_id"], as_partner_may_have_it(p, given, event),
                                  lane)
    return made


async def deliver(conn: AsyncConnection, partner_id: Any, event: CloudEvent, lane: str) -> int:
    """The event as one delivery to one partner: 1 the first time, 0 when it exists."""
    delivery_id = await conn.scalar(insert(deliveries).values(
        tenant_id=event.tenantid, partner_id=partner_id, event_id=event.id,
        event_type=event.type, envelope=event.model_dump(mode="json"), status="pending",
        attempts=0, next_attempt_at=event.time, created_at=event.time, lane=lane,
    ).on_conflict_do_nothing(index_elements=["partner_id", "event_id"])
        .returning(deliveries.c.delivery_id))
    if delivery_id is None:
        return 0
    # The first time: what follows happens once per event.
    await enqueue(conn, delivery_id, event.tenantid, partner_id, event.time, lane)
    await publish_to_feed(conn, partner_id, event, lane)
    await fhir_store.apply(conn, partner_id, event.tenantid, event.model_dump(mode="json"))
    return 1


def _registry_lock(tenant_id: Any) -> Any:
    return func.hashtextextended(f"partners:registry:{tenant_id}", 0)


async def hold_registry(conn: AsyncConnection, tenant_id: Any) -> None:
    """The organization's partner registry to this transaction alone: registrations queue up
    (two of one name: the second finds the first), and patients' handlers wait for it."""
    await conn.execute(select(func.pg_advisory_xact_lock(_registry_lock(tenant_id))))


async def _hold_patient(conn: AsyncConnection, tenant_id: Any, patient_id: UUID, *,
                        shared: bool = False) -> None:
    """One at a time per patient (consents and restricted events; ``shared``: the patient's
    other events, which go side by side but never beside those); and never beside a
    partner's registration in the organization (shared here, exclusive there), so the two
    cannot miss each other. Always the organization's lock first, then the patient's."""
    patient_lock = func.hashtextextended(f"partners:patient:{patient_id}", 0)
    await conn.execute(select(
        func.pg_advisory_xact_lock_shared(_registry_lock(tenant_id)),
        (func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock)(
            patient_lock)))


async def disclose_to_new_partner(conn: AsyncConnection, partner: Any,
                                  registered: CloudEvent) -> int:
    """A partner registered after patients consented to share data with it (consents name
    partners, which may come later): what its grant and those consents allow is disclosed
    now, because of its registration. Call in the registration's transaction."""
    await hold_registry(conn, registered.tenantid)
    grant = _grant(partner)
    if not grant.richer:
        return 0
    kept = await conn.execute(
        select(disclosable.c.envelope)
        .join(consents, (consents.c.patient_id == disclosable.c.patient_id)
              & (consents.c.partner == partner["name"]) & consents.c.granted)
        .where(disclosable.c.data_class.in_(grant.richer))
        .order_by(disclosable.c.recorded_at))
    made = 0
    for (envelope,) in kept:
        disclosed = disclosure(partner["partner_id"], CloudEvent.model_validate(envelope),
                               registered)
        made += await deliver(conn, partner["partner_id"], disclosed, delivery_lane(disclosed))
    return made


async def _keep_and_disclose(conn: AsyncConnection, event: CloudEvent) -> None:
    """A restricted event: kept as the latest of its kind, and disclosed to every partner
    that may have it now."""
    data_class = EVENT_MODELS[event.type].data_class
    patient_id = UUID(event.data["patient_id"])
    await _hold_patient(conn, event.tenantid, patient_id)
    statement = insert(disclosable).values(
        data_class=data_class, subject_id=UUID(event.subject), tenant_id=event.tenantid,
        patient_id=patient_id, envelope=event.model_dump(mode="json"), recorded_at=event.time)
    await conn.execute(statement.on_conflict_do_update(
        index_elements=["data_class", "subject_id"],
        set_={"envelope": statement.excluded.envelope,
              "recorded_at": statement.excluded.recorded_at},
        where=disclosable.c.recorded_at <= statement.excluded.recorded_at))
    given = await _consents_of(conn, patient_id)
    for p in await _partners(conn):
        if may_disclose(_grant(p), given, p["name"], data_class):
            disclosed = disclosure(p["partner_id"], event, event)
            await deliver(conn, p["partner_id"], disclosed, delivery_lane(disclosed))


async def _disclose_on_consent(conn: AsyncConnection, consent: PatientConsentRecorded,
                               event: CloudEvent) -> None:
    """The consent now in force for its partner: what it may have now is disclosed, or, on
    withdrawal, a partner granted more than identifiers is told to erase it."""
    named = [p for p in await _partners(conn) if p["name"] == consent.partner]
    kept = (await conn.execute(select(disclosable.c.data_class, disclosable.c.envelope)
                               .where(disclosable.c.patient_id == consent.patient_id)
                               .order_by(disclosable.c.recorded_at))).all()
    for p in named:
        grant = _grant(p)
        if not consent.granted:
            await _drop_unsent(conn, p["partner_id"], consent.patient_id)
            if grant.richer:
                erase = withdrawal(p["partner_id"], event, consent.patient_id, grant.richer)
                await deliver(conn, p["partner_id"], erase, delivery_lane(erase))
            continue
        for data_class, envelope in kept:
            if data_class in grant.data_classes:  # and the consent in force says yes
                disclosed = disclosure(p["partner_id"], CloudEvent.model_validate(envelope),
                                       event)
                await deliver(conn, p["partner_id"], disclosed, delivery_lane(disclosed))


async def _drop_unsent(conn: AsyncConnection, partner_id: Any, patient_id: UUID) -> int:
    """The patient withdrew data sharing with the partner: its deliveries of the patient
    that are not sent yet (pending, or being retried) are not sent, and say so in the
    delivery log (``withdrawn``); an instruction to erase still goes. Their queue rows are
    taken first, as the dispatcher takes them (then the delivery): one being sent right now
    is waited for, and stays delivered if it was taken, or is dropped with the rest if not.
    Returns how many were dropped."""
    unsent = (select(deliveries.c.delivery_id)
              .where(deliveries.c.partner_id == partner_id,
                     deliveries.c.lane == f"patient:{patient_id}",
                     deliveries.c.status.in_(("pending", "retrying")),
                     deliveries.c.event_type != DisclosureWithdrawn.event_type))
    dropped = (await conn.execute(queue.delete().where(queue.c.delivery_id.in_(unsent))
                                  .returning(queue.c.delivery_id))).scalars().all()
    if not dropped:
        return 0
    done = await conn.execute(deliveries.update().where(
        deliveries.c.delivery_id.in_(dropped),
        deliveries.c.status.in_(("pending", "retrying"))).values(status="withdrawn"))
    return done.rowcount


async def enqueue(conn: AsyncConnection, delivery_id: int, tenant_id: Any, partner_id: Any,
                  due_at: Any, lane: str) -> None:
    await conn.execute(insert(queue).values(
        delivery_id=delivery_id, org=tenant_id, partner_id=partner_id, due_at=due_at, lane=lane
    ).on_conflict_do_update(index_elements=["delivery_id"], set_={"due_at": due_at}))


async def publish_to_feed(conn: AsyncConnection, partner_id: Any, event: CloudEvent,
                          lane: str, replay: str = "") -> None:
    """The event on the partner's NATS subjects, by the outbox relay (at least once, in the
    lane's order: the relay keeps the order of rows of one stream name). A ``replay`` is a
    new message (its own message id) with the same event in it."""
    await conn.execute(insert(outbox).values(
        event_id=uuid5(NAMESPACE_URL, f"kinetic:feed:{partner_id}:{event.id}{replay}"),
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
    if EVENT_MODELS[event.type].data_class != "identifiers":
        await _keep_and_disclose(conn, event)  # never delivered as it is
        return
    if event.type == PatientConsentRecorded.event_type:
        await _record_consent(conn, event)
    await fan_out(conn, event)


async def _record_consent(conn: AsyncConnection, event: CloudEvent) -> None:
    consent = PatientConsentRecorded.model_validate(event.data)
    if consent.consent != "data_sharing" or consent.partner is None:
        return
    await _hold_patient(conn, event.tenantid, consent.patient_id)
    statement = insert(consents).values(
        patient_id=consent.patient_id, partner=consent.partner, tenant_id=event.tenantid,
        granted=consent.granted, recorded_at=consent.recorded_at)
    in_force = await conn.scalar(statement.on_conflict_do_update(
        index_elements=["patient_id", "partner"],
        set_={"granted": statement.excluded.granted,
              "recorded_at": statement.excluded.recorded_at},
        where=consents.c.recorded_at <= statement.excluded.recorded_at
    ).returning(consents.c.granted))
    if in_force is None:
        # Overtaken by a later record (a replica or a redelivery applied it first): every
        # side effect of this one, the FHIR resources' erasure above all, is that record's
        # to decide, so a stale withdrawal never undoes a re-consent already in force.
        return
    if in_force is False:
        named = (await conn.execute(select(partners.c.partner_id)
                                    .where(partners.c.name == consent.partner))).scalars().all()
        await fhir_store.forget_patient(conn, list(named), consent.patient_id)
    await _disclose_on_consent(conn, consent, event)
