"""The payment-provider port and its one adapter: a signed webhook.

A provider (card terminal, online checkout) tells billing that a patient paid an invoice by
calling ``POST /webhooks/payment-provider``. The adapter verifies the signature the provider
computed with the shared secret before anything is read (a deployment without a secret
accepts no webhook at all): header
``Kinetic-Provider-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``
(the scheme Stripe and others use), refused when older than the tolerance so a captured call
cannot be replayed later. The provider's event id names the payment, so a redelivered
webhook records nothing twice. The provider has captured the money already, so the payment
is recorded even when it is more than the invoice asks (the patient paid at the desk and
online): the rest leaves the patient in credit, in the ledger for billing staff to refund,
rather than a refusal the provider would retry until it gave up. A real provider's SDK is
another adapter of the same port.

Body: ``{"id": "<provider event id>", "type": "payment.succeeded", "data": {"tenant_id",
"invoice_id", "amount" (minor units), "currency", "reference"}}``; other types are
acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.application import billing
from billing.domain import invoice
from billing.domain.money import Currency, Money
from billing.settings import billing_settings
from kinetic_contracts.problems import RuleViolationError
from kinetic_infra.commands import run_command
from kinetic_infra.http.auth import UnauthenticatedError
from kinetic_infra.service.definition import Runtime

SIGNATURE_HEADER = "Kinetic-Provider-Signature"


class BadSignatureError(UnauthenticatedError):
    type_slug = "bad-webhook-signature"
    title = "The webhook's signature does not verify"


class WebhookNotConfiguredError(BadSignatureError):
    type_slug = "webhook-not-configured"
    title = "This deployment has no payment-provider secret: it accepts no provider webhook"


class BadWebhookError(RuleViolationError):
    type_slug = "bad-webhook"
    title = "The webhook's body is not a payment this service understands"


class ProviderPayment(BaseModel):
    event_id: str = Field(min_length=1, max_length=200)
    tenant_id: UUID
    invoice_id: UUID
    amount: int = Field(gt=0)
    currency: Currency
    reference: str = Field(default="", max_length=200)


class PaymentProvider(Protocol):
    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime
               ) -> ProviderPayment | None:
        """The payment the verified call reports, or None for an event to ignore; raises
        ``BadSignatureError`` when the call is not the provider's."""


def sign(secret: str, body: bytes, at: int) -> str:
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


class SignedWebhookProvider:
    def __init__(self, secret: str | None, tolerance_seconds: int) -> None:
        self._secret = secret
        self._tolerance = tolerance_seconds

    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime
               ) -> ProviderPayment | None:
        if not self._secret:
            raise WebhookNotConfiguredError("set KINETIC_BILLING_WEBHOOK_SECRET to the "
                                            "provider's signing secret")
        parts = dict(p.split("=", 1) for p in headers.get(SIGNATURE_HEADER, "").split(",")
                     if "=" in p)
        try:
            at = int(parts["t"])
        except (KeyError, ValueError):
            raise BadSignatureError(f"missing or malformed {SIGNATURE_HEADER}") from None
        expected = sign(self._secret, body, at).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            raise BadSignatureError("the signature does not match the body")
        if abs(now.timestamp() - at) > self._tolerance:
            raise BadSignatureError("the signature is too old (a replay?)")
        try:
            event: dict[str, Any] = json.loads(body)
            if event.get("type") != "payment.succeeded":
                return None
            return ProviderPayment.model_validate({**event["data"], "event_id": event["id"]})
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise BadWebhookError(f"unreadable payment event: {exc}") from None


def provider() -> PaymentProvider:
    settings = billing_settings()
    secret = settings.webhook_secret
    return SignedWebhookProvider(secret.get_secret_value() if secret else None,
                                 settings.webhook_tolerance_seconds)


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["payment provider"])
    port = provider()

    @api.post("/webhooks/payment-provider",
              summary="The payment provider reports a payment (signed; no bearer token)",
              responses={401: {"description": "The signature does not verify"}})
    async def provider_webhook(request: Request) -> dict[str, Any]:
        paid = port.verify(request.headers, await request.body(), datetime.now(UTC))
        if paid is None:
            return {"recorded": False}

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            await billing.run(conn, runtime.store, billing.invoice_stream(paid.invoice_id),
                              invoice, invoice.RecordPayment(
                                  invoice_id=paid.invoice_id,
                                  payment_id=uuid.uuid5(uuid.NAMESPACE_URL,
                                                        f"provider:{paid.event_id}"),
                                  amount=Money(amount=paid.amount, currency=paid.currency),
                                  method="provider", reference=paid.reference,
                                  by="payment-provider", now=datetime.now(UTC)),
                              billing.context(paid.tenant_id, uuid.uuid4()))
            return {"recorded": True, "invoice_id": str(paid.invoice_id)}

        return await run_command(runtime.db, work, tenant_id=paid.tenant_id)

    return api
