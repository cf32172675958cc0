"""Verifying Kinetic's webhooks on the partner's side.

Kinetic signs every webhook per the Standard Webhooks specification: ``webhook-id`` (the
event's id — de-duplicate on it), ``webhook-timestamp`` and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``; two signatures while a secret rotation
overlaps). ``verify`` checks the signature and the timestamp (five minutes either way, the
library's tolerance) and returns the CloudEvent the body carries.
"""

from __future__ import annotations

from collections.abc import Mapping

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from kinetic_contracts.envelope import CloudEvent

__all__ = ["WebhookVerificationError", "verify"]


def verify(secret: str, body: bytes | str, headers: Mapping[str, str]) -> CloudEvent:
    """The event, if the call is Kinetic's for this secret; raises
    ``WebhookVerificationError`` otherwise (answer it with a 4xx: Kinetic retries)."""
    Webhook(secret).verify(body, dict(headers), json_parse=False)
    event = CloudEvent.model_validate_json(body)
    if str(event.id) != {k.lower(): v for k, v in headers.items()}.get("webhook-id"):
        raise WebhookVerificationError("the webhook-id is not the event's id")
    return event
