"""The partners API (operators): register a partner with its grant, read partners and their
delivery log, and replay deliveries from a time. The webhook secret is shown once, in the
registration's answer; every call is audited."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kinetic_contracts import CloudEvent
from kinetic_contracts.partner_feed import FeedAccess
from kinetic_contracts.registry import GRANTABLE_EVENT_TYPES
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.commands import run_command
from kinetic_infra.event_store.decider import as_new_event, handle
from kinetic_infra.event_store.ids import new_id
from kinetic_infra.event_store.model import EventContext, StreamName
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import Staff
from kinetic_infra.http.headers import IdempotencyKey
from kinetic_infra.service.definition import Runtime
from partners.adapters.feed import (
    as_partner_may_have_it_now,
    consents,
    deliveries,
    disclose_to_new_partner,
    enqueue,
    hold_registry,
    partners,
    publish_to_feed,
)
from partners.adapters.keys import FHIR_KEY, NATS_KEY, KeyKind
from partners.domain import partner
from partners.settings import partners_settings


class PartnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_-]*$",
                      description="As patients' data-sharing consents name the partner")
    webhook_url: str = Field(max_length=2000, examples=["https://crm.example/kinetic"])
    grant: partner.Grant


class PartnerOut(BaseModel):
    partner_id: UUID
    name: str
    webhook_url: str
    event_types: list[str]
    data_classes: list[str]
    registered_at: datetime


class RegisteredOut(PartnerOut):
    secret: str = Field(description="The webhook signing secret (whsec_…): shown only now")


class FhirKeyOut(BaseModel):
    partner_id: UUID
    fhir_key: str = Field(description="The key the partner's EHR reads /fhir/R4 with "
                                      "(kfk_…): shown only now; the previous one stops working")


class NatsKeyOut(BaseModel):
    partner_id: UUID
    nats_key: str = Field(description="The token the partner's NATS client connects with "
                                      "(knk_…): shown only now; the previous one stops working")
    stream: str = Field(description="The JetStream stream of the partner's feed")
    durable: str = Field(description="The partner's durable pull consumer: its position")
    subjects: str = Field(description="The partner's subjects (a wildcard)")
    inbox_prefix: str = Field(description="The inbox prefix the client must use")


class DeliveryOut(BaseModel):
    delivery_id: int
    event_id: UUID
    event_type: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: int = Field(default=24, ge=0, le=168,
                               description="How long the previous secret signs as well")


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="Send again every delivery of events from then on")


class ReplayOut(BaseModel):
    requeued: int = Field(description="Deliveries sent again, each by webhook and as a new "
                                      "message on the partner's NATS feed (with the same "
                                      "event id); none of a patient who has withdrawn data "
                                      "sharing with the partner, but the instruction to erase")


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["partners"], route_class=AuditedRoute)
    db, store = runtime.db, runtime.store
    settings = partners_settings()

    async def visible(conn: AsyncConnection, partner_id: UUID, *, lock: bool = False
                      ) -> dict[str, Any]:
        query = select(partners).where(partners.c.partner_id == partner_id)
        row = (await conn.execute(query.with_for_update() if lock else query)
               ).mappings().one_or_none()
        if row is None:
            raise partner.PartnerNotFoundError(f"no partner {partner_id} in your organization")
        return dict(row)

    @api.post("/partners", response_model=RegisteredOut, status_code=status.HTTP_201_CREATED,
              summary="Register a partner system with its grant (event types, data classes)",
              openapi_extra=audited("register", "partner"))
    async def register(request: Request, body: PartnerIn, principal: Staff(Role.OPERATOR),
                       idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        partner_id = idempotency_key or new_id()
        note(request).resource_id = str(partner_id)

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            await hold_registry(conn, principal.tenant_id)
            existing = (await conn.execute(select(partners).where(
                partners.c.partner_id == partner_id))).mappings().one_or_none()
            if existing is not None:
                return RegisteredOut.model_validate(dict(existing)).model_dump(mode="json")
            if await conn.scalar(select(partners.c.partner_id)
                                 .where(partners.c.name == body.name)):
                raise partner.PartnerExistsError(f"a partner named {body.name!r} exists",
                                                 name=body.name)
            now = datetime.now(UTC)
            context = EventContext(tenant_id=principal.tenant_id, correlation_id=partner_id)
            [registered] = await handle(
                conn, store, StreamName("partner", partner_id), partner,
                partner.RegisterPartner(
                    partner_id=partner_id, name=body.name, webhook_url=body.webhook_url,
                    grant=body.grant, known_event_types=GRANTABLE_EVENT_TYPES,
                    allow_loopback_http=settings.allow_loopback_http, now=now),
                tenant_id=principal.tenant_id, context=context)
            row = {"partner_id": partner_id, "tenant_id": principal.tenant_id,
                   "name": body.name, "webhook_url": body.webhook_url,
                   "event_types": body.grant.event_types,
                   "data_classes": list(body.grant.data_classes), "secret": new_secret(),
                   "registered_at": now}
            await conn.execute(insert(partners).values(**row))
            # Patients may have consented to it by name before it was registered.
            await disclose_to_new_partner(conn, row, store.envelope(
                registered, as_new_event(partner.PartnerRegistered.model_validate(
                    registered.data)), context))
            return RegisteredOut.model_validate(row).model_dump(mode="json")

        return await run_command(db, work, tenant_id=principal.tenant_id)

    @api.get("/partners", response_model=list[PartnerOut],
             summary="Your organization's partners", openapi_extra=audited("list", "partner"))
    async def list_partners(principal: Staff(Role.OPERATOR)) -> list[dict[str, Any]]:
        async with db.read(principal.tenant_id) as conn:
            return [dict(r) for r in (await conn.execute(
                select(partners).order_by(partners.c.registered_at))).mappings()]

    @api.get("/partners/{partner_id}", response_model=PartnerOut,
             summary="One partner and its grant", openapi_extra=audited("read", "partner"))
    async def get_partner(request: Request, partner_id: UUID,
                          principal: Staff(Role.OPERATOR)) -> dict[str, Any]:
        note(request).resource_id = str(partner_id)
        async with db.read(principal.tenant_id) as conn:
            return await visible(conn, partner_id)

    @api.get("/partners/{partner_id}/deliveries", response_model=list[DeliveryOut],
             summary="The partner's delivery log, newest first: status, attempts, the last "
                     "answer", openapi_extra=audited("list", "delivery"))
    async def list_deliveries(request: Request, partner_id: UUID,
                              principal: Staff(Role.OPERATOR),
                              limit: int = Query(default=200, ge=1, le=1000)
                              ) -> list[dict[str, Any]]:
        note(request).resource_id = str(partner_id)
        async with db.read(principal.tenant_id) as conn:
            await visible(conn, partner_id)
            return [dict(r) for r in (await conn.execute(
                select(deliveries).where(deliveries.c.partner_id == partner_id)
                .order_by(deliveries.c.delivery_id.desc()).limit(limit))).mappings()]

    @api.post("/partners/{partner_id}/secret/rotate", response_model=RegisteredOut,
              summary="A new webhook secret (shown only now); the previous one signs too "
                      "until the overlap ends. With an Idempotency-Key a repeat answers the "
                      "same secret; a second rotation inside the overlap is refused (409) "
                      "unless overlap_hours is 0",
              responses={409: {"description": "The previous secret still signs"}},
              openapi_extra=audited("rotate", "partner"))
    async def rotate(request: Request, partner_id: UUID, body: RotateIn,
                     principal: Staff(Role.OPERATOR), idempotency_key: IdempotencyKey = None
                     ) -> dict[str, Any]:
        note(request).resource_id = str(partner_id)

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            current = await visible(conn, partner_id, lock=True)  # rotations queue up here
            if idempotency_key is not None and current["rotation_key"] == idempotency_key:
                return RegisteredOut.model_validate(current).model_dump(mode="json")
            now = datetime.now(UTC)
            partner.may_rotate(current["previous_until"], body.overlap_hours, now)
            changed = {"secret": new_secret(), "previous_secret": current["secret"],
                       "previous_until": now + timedelta(hours=body.overlap_hours),
                       "rotation_key": idempotency_key}
            await conn.execute(partners.update().where(partners.c.partner_id == partner_id)
                               .values(**changed))
            return RegisteredOut.model_validate({**current, **changed}).model_dump(mode="json")

        return await run_command(db, work, tenant_id=principal.tenant_id)

    async def issue_key(request: Request, partner_id: UUID, principal: Principal,
                        kind: KeyKind, answer: Callable[[str], dict[str, Any]]
                        ) -> dict[str, Any]:
        """A new key of ``kind`` for a partner the operator's organization has."""
        note(request).resource_id = str(partner_id)

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            await visible(conn, partner_id)
            key = await kind.issue(conn, principal.tenant_id, partner_id)
            return {"partner_id": partner_id, **answer(key)}

        return await run_command(db, work, tenant_id=principal.tenant_id)

    @api.post("/partners/{partner_id}/fhir-key", response_model=FhirKeyOut,
              summary="A new key for the partner's FHIR reads (shown only now)",
              openapi_extra=audited("issue-key", "partner"))
    async def issue_fhir_key(request: Request, partner_id: UUID,
                             principal: Staff(Role.OPERATOR)) -> dict[str, Any]:
        return await issue_key(request, partner_id, principal, FHIR_KEY,
                               lambda key: {"fhir_key": key})

    @api.post("/partners/{partner_id}/nats-key", response_model=NatsKeyOut,
              summary="A new key for the partner's NATS connection (shown only now), with "
                      "where its feed is",
              openapi_extra=audited("issue-key", "partner"))
    async def issue_nats_key(request: Request, partner_id: UUID,
                             principal: Staff(Role.OPERATOR)) -> dict[str, Any]:
        def answer(key: str) -> dict[str, Any]:
            feed = FeedAccess.from_key(key)
            return {"nats_key": key, "stream": feed.stream, "durable": feed.durable,
                    "subjects": feed.subjects, "inbox_prefix": feed.inbox_prefix}

        return await issue_key(request, partner_id, principal, NATS_KEY, answer)

    @api.post("/partners/{partner_id}/replay", response_model=ReplayOut,
              summary="Send again every delivery of events from a time on (dead letters "
                      "included), in their original order, by webhook and on NATS",
              openapi_extra=audited("replay", "delivery"))
    async def replay(request: Request, partner_id: UUID, body: ReplayIn,
                     principal: Staff(Role.OPERATOR)) -> dict[str, Any]:
        note(request).resource_id = str(partner_id)

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            found = await visible(conn, partner_id)
            named = found["name"]
            withdrawn = {str(p) for p in (await conn.execute(
                select(consents.c.patient_id)
                .where(consents.c.partner == named, consents.c.granted.is_(False))
            )).scalars()}
            rows = (await conn.execute(
                select(deliveries.c.delivery_id, deliveries.c.lane, deliveries.c.envelope)
                .where(deliveries.c.partner_id == partner_id,
                       deliveries.c.created_at >= body.since)
                .order_by(deliveries.c.delivery_id))).all()
            again = [(delivery_id, lane, CloudEvent.model_validate(envelope))
                     for delivery_id, lane, envelope in rows
                     if partner.may_send_again(envelope["type"],
                                               envelope["data"].get("patient_id"), withdrawn)]
            if again:
                await conn.execute(deliveries.update()
                                   .where(deliveries.c.delivery_id.in_([a[0] for a in again]))
                                   .values(status="pending", attempts=0))
            now = datetime.now(UTC)
            for delivery_id, lane, sent in again:
                # As the partner may have it today: a grant narrowed or a consent changed since
                # withholds free text it was sent then (it is never added back: the delivery
                # keeps only what was sent).
                event = await as_partner_may_have_it_now(conn, found, sent)
                if event is not sent:
                    await conn.execute(deliveries.update()
                                       .where(deliveries.c.delivery_id == delivery_id)
                                       .values(envelope=event.model_dump(mode="json")))
                await enqueue(conn, delivery_id, principal.tenant_id, partner_id, now, lane)
                await publish_to_feed(conn, partner_id, event, lane, f":replay:{now.isoformat()}")
            return {"requeued": len(again)}

        return await run_command(db, work, tenant_id=principal.tenant_id)

    return api

