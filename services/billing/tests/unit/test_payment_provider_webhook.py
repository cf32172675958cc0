"""The payment provider's signed webhook: a deployment with no secret set accepts nothing,
so no well-known development secret can sign a payment anywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from billing.adapters.payment_provider import (
    SIGNATURE_HEADER,
    BadSignatureError,
    WebhookNotConfiguredError,
    provider,
    sign,
)

BODY = json.dumps({"id": "evt_1", "type": "payment.succeeded", "data": {
    "tenant_id": "0194f1d2-0000-7000-8000-000000000001",
    "invoice_id": "0194f1d2-0000-7000-8000-000000000002", "amount": 9500,
    "currency": "EUR"}}).encode()
NOW = datetime.now(UTC)


def signed(secret: str) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(secret, BODY, int(NOW.timestamp()))}


@pytest.mark.parametrize("unset", [None, ""])
def test_without_a_secret_no_webhook_is_accepted(monkeypatch: pytest.MonkeyPatch,
                                                 unset: str | None) -> None:
    monkeypatch.delenv("KINETIC_BILLING_WEBHOOK_SECRET", raising=False)
    if unset is not None:
        monkeypatch.setenv("KINETIC_BILLING_WEBHOOK_SECRET", unset)
    port = provider()
    for secret in ("kinetic-development-webhook-secret", "", "anything"):
        with pytest.raises(WebhookNotConfiguredError):
            port.verify(signed(secret), BODY, NOW)


def test_with_its_secret_only_the_providers_signature_is_accepted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINETIC_BILLING_WEBHOOK_SECRET", "whsec-of-the-provider")
    port = provider()
    paid = port.verify(signed("whsec-of-the-provider"), BODY, NOW)
    assert paid is not None and (paid.event_id, paid.amount) == ("evt_1", 9500)
    with pytest.raises(BadSignatureError):
        port.verify(signed("kinetic-development-webhook-secret"), BODY, NOW)
